"""Test archives built at test time, in memory: zip, tar(.gz/.bz2/.xz), 7z, encrypted zip, bombs."""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import lzma
import random
import struct
import tarfile
import zipfile
import zlib

import libarchive
from PIL import Image


def image_bytes(seed: int, fmt: str = "PNG", size: tuple[int, int] = (48, 32)) -> bytes:
    """A small real image, different for every seed."""
    rnd = random.Random(seed)
    img = Image.new("RGB", size)
    img.frombytes(rnd.randbytes(size[0] * size[1] * 3))
    out = io.BytesIO()
    img.save(out, format=fmt)
    return out.getvalue()


def digests(data: bytes) -> tuple[str, str, str]:
    """(md5, sha1, sha256) by hashlib, to compare with what the reader computed."""
    return (
        hashlib.md5(data).hexdigest(),
        hashlib.sha1(data).hexdigest(),
        hashlib.sha256(data).hexdigest(),
    )


def make_zip(members: dict[str, bytes], *, stored: bool = False, streamed: bool = False) -> bytes:
    """A zip; `streamed` writes it as to a pipe (sizes in data descriptors after the data)."""
    method = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
    if not streamed:
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", compression=method) as zf:
            for name, data in members.items():
                zf.writestr(name, data)
        return out.getvalue()
    pipe = _Pipe()
    with zipfile.ZipFile(pipe, "w", compression=method) as zf:
        for name, data in members.items():
            with zf.open(name, "w") as w:
                w.write(data)
    return bytes(pipe.data)


class _Pipe(io.RawIOBase):
    """A write-only, non-seekable stream."""

    def __init__(self) -> None:
        self.data = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, b: bytes) -> int:  # type: ignore[override]
        self.data += b
        return len(b)


def make_tar(members: dict[str, bytes], compression: str = "", *, extras: bool = False) -> bytes:
    """A tar, compressed with '', 'gz', 'bz2' or 'xz'; `extras` adds a dir, a symlink, a hardlink,
    a fifo and a device, which are not items."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode=f"w:{compression}" if compression else "w") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        if extras:
            first = next(iter(members))
            for name, kind in [
                ("somedir", tarfile.DIRTYPE),
                ("symlink", tarfile.SYMTYPE),
                ("hardlink", tarfile.LNKTYPE),
                ("fifo", tarfile.FIFOTYPE),
                ("chardev", tarfile.CHRTYPE),
            ]:
                info = tarfile.TarInfo(name)
                info.type = kind
                if kind in (tarfile.SYMTYPE, tarfile.LNKTYPE):
                    info.linkname = first
                tf.addfile(info)
    return out.getvalue()


def compress(data: bytes, kind: str) -> bytes:
    """A single-file .gz, .bz2 or .xz of `data`."""
    return {"gz": gzip.compress, "bz2": bz2.compress, "xz": lzma.compress}[kind](data)


def _libarchive_write(fmt: str, members: dict[str, bytes], **kw: str) -> bytes:
    out = bytearray()

    def write(chunk: bytes) -> int:
        out.extend(chunk)
        return len(chunk)

    with libarchive.custom_writer(write, fmt, **kw) as archive:
        for name, data in members.items():
            archive.add_file_from_memory(name, len(data), data)
    return bytes(out)


def make_7z(members: dict[str, bytes]) -> bytes:
    """A 7z archive (libarchive's writer)."""
    return _libarchive_write("7zip", members)


def make_encrypted_zip(members: dict[str, bytes], encryption: str = "zipcrypt") -> bytes:
    """A zip whose members are encrypted ('zipcrypt', 'aes128' or 'aes256'), passphrase 'secret'."""
    return _libarchive_write(
        "zip", members, options=f"zip:encryption={encryption}", passphrase="secret"
    )


def zip_bomb(size: int, name: str = "zeros.bin") -> bytes:
    """A zip of one deflated member of `size` zero bytes (size a multiple of 1 MiB, < 4 GiB).

    Built without compressing `size` bytes: after a full flush deflate starts afresh, so the
    compressed form of each further MiB of zeros is the same bytes, repeated.
    """
    mib = 1024 * 1024
    assert size % mib == 0 and 0 < size < 1 << 32
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    first = comp.compress(bytes(mib)) + comp.flush(zlib.Z_FULL_FLUSH)
    again = comp.compress(bytes(mib)) + comp.flush(zlib.Z_FULL_FLUSH)
    tail = comp.flush(zlib.Z_FINISH)
    repeats = size // mib - 1
    body = first + again * repeats + tail
    crc = 0
    zero_mib = bytes(mib)
    for _ in range(size // mib):
        crc = zlib.crc32(zero_mib, crc)
    raw_name = name.encode()
    local = struct.pack(
        "<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, 0, 0, crc, len(body), size, len(raw_name), 0
    )
    central = struct.pack(
        "<IHHHHHHIIIHHHHHII",
        0x02014B50,
        20,
        20,
        0,
        8,
        0,
        0,
        crc,
        len(body),
        size,
        len(raw_name),
        0,
        0,
        0,
        0,
        0,
        0,
    )
    cd_offset = len(local) + len(raw_name) + len(body)
    cd = central + raw_name
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 1, 1, len(cd), cd_offset, 0)
    return local + raw_name + body + cd + end


def nested_zips(depth: int, payload: bytes, name: str = "payload.bin") -> bytes:
    """A zip in a zip in a zip ... `depth` levels: level k holds 'lk.zip' (the innermost holds
    `payload`). The file itself is level 1."""
    data = make_zip({name: payload})
    for level in range(depth, 1, -1):
        data = make_zip({f"l{level}.zip": data})
    return data
