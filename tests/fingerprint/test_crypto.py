"""MD5 / SHA-1 / SHA-256 from one read agree with the forensic standard tool, hashdeep."""

from __future__ import annotations

import csv
import hashlib
import itertools
import os
import platform
import subprocess
import threading
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vigil.fingerprint import crypto
from vigil.fingerprint.crypto import Digests, digest_bytes
from vigil.limits import Limits
from vigil.scan.worker import fingerprint_file


def hashdeep(paths: list[Path]) -> dict[str, tuple[str, str, str]]:
    out = subprocess.run(
        ["hashdeep", "-c", "md5,sha1,sha256", *map(str, paths)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rows = [
        r for r in csv.reader(line for line in out.splitlines() if not line.startswith(("%", "#")))
    ]
    return {r[4]: (r[1], r[2], r[3]) for r in rows}


def test_digests_agree_with_hashdeep(tmp_path: Path) -> None:
    sizes = [0, 1, 63, 64, 65, 1 << 20, (3 << 20) + 17]
    paths = []
    for n in sizes:
        p = tmp_path / f"f{n}.bin"
        p.write_bytes(os.urandom(n))
        paths.append(p)
    ref = hashdeep(paths)
    for p in paths:
        [item] = fingerprint_file(str(p), Limits()).items
        fp = item.fingerprints
        assert (fp.md5, fp.sha1, fp.sha256) == ref[str(p)], p
        assert fp.size == p.stat().st_size


def test_chunked_feeding_equals_one_buffer() -> None:
    data = os.urandom(100_003)
    d = Digests()
    for i in range(0, len(data), 4096):
        d.update(memoryview(data)[i : i + 4096])
    assert d.hexdigests() == digest_bytes(data)
    assert d.size == len(data)


# --- the compiled one-pass digests ---------------------------------------------------------


def _cpu_has_sha_extensions() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return platform.machine() in ("x86_64", "AMD64") and " sha_ni" in flags


def test_the_one_pass_digests_are_used_where_the_cpu_has_the_sha_extensions() -> None:
    # A build that silently failed would leave every scan on the slower path.
    assert crypto.ACCELERATED == _cpu_has_sha_extensions()
    if crypto.ACCELERATED:
        assert crypto.Digests is _digests_module().Digests


def _digests_module() -> ModuleType:
    from vigil.fingerprint import _digests

    if not _digests.ACCELERATED:
        pytest.skip("this CPU has no SHA extensions: hashlib is used (checked above)")
    return _digests


def _hashlib(data: bytes) -> tuple[str, str, str]:
    return (
        hashlib.md5(data).hexdigest(),
        hashlib.sha1(data).hexdigest(),
        hashlib.sha256(data).hexdigest(),
    )


@pytest.mark.parametrize("n", [*range(0, 200), 1000, 4095, 4096, 4097, 65536, (1 << 20) + 1])
def test_one_pass_digests_equal_hashlib_at_every_padding_boundary(n: int) -> None:
    data = os.urandom(n)
    d = _digests_module().Digests()
    d.update(data)
    assert d.hexdigests() == _hashlib(data)
    assert d.size == n


@settings(max_examples=300, deadline=None)
@given(
    data=st.binary(max_size=20_000),
    cuts=st.lists(st.integers(min_value=0, max_value=20_000), max_size=12),
    peeks=st.booleans(),
)
def test_one_pass_digests_equal_hashlib_however_the_stream_is_cut(
    data: bytes, cuts: list[int], peeks: bool
) -> None:
    d = _digests_module().Digests()
    edges = sorted({0, len(data), *(c for c in cuts if c <= len(data))})
    for a, b in itertools.pairwise(edges):
        d.update(memoryview(data)[a:b])
        if peeks:  # reading the digests midway leaves the stream as it was
            assert d.hexdigests() == _hashlib(data[:b])
    assert d.hexdigests() == _hashlib(data)
    assert d.size == len(data)


def test_one_pass_digests_take_any_contiguous_buffer_and_refuse_others() -> None:
    data = os.urandom(10_000)
    d = _digests_module().Digests()
    d.update(bytearray(data[:5000]))
    d.update(np.frombuffer(data[5000:], dtype=np.uint8))
    assert d.hexdigests() == _hashlib(data)
    with pytest.raises(BufferError):
        d.update(memoryview(data)[::2])
    with pytest.raises(TypeError):
        d.update("text")  # type: ignore[arg-type]
    assert d.hexdigests() == _hashlib(data)  # the refused updates changed nothing


def test_a_large_file_hashed_while_another_thread_works_gets_the_same_digests() -> None:
    # Updates of 4 KiB and more run without the GIL: other threads go on meanwhile.
    data = os.urandom(8 << 20)
    results: list[tuple[str, str, str]] = []

    def hash_it() -> None:
        d = _digests_module().Digests()
        for i in range(0, len(data), 1 << 20):
            d.update(memoryview(data)[i : i + (1 << 20)])
        results.append(d.hexdigests())

    threads = [threading.Thread(target=hash_it) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [_hashlib(data)] * 3


def test_an_implementation_that_disagrees_with_hashlib_is_not_trusted() -> None:
    class OffByOne(crypto.HashlibDigests):
        def update(self, data: bytes | bytearray | memoryview, /) -> None:
            super().update(bytes(data)[:-1] if len(data) == 56 else data)

    assert crypto._known_answers_hold(crypto.HashlibDigests)
    assert not crypto._known_answers_hold(OffByOne)
