"""The fuzz targets: one function per parser family, `target(data)`.

A target returns when Vigil handled the input as its contract says (a result, or the named
error of that reader), and raises `ContractViolation` (or lets any other exception through)
when it did not. Time and memory are the runner's business (`fuzz.isolate`, libFuzzer's
-timeout and -rss_limit_mb); the limits below keep a well-behaved reader well inside them.
"""

from __future__ import annotations

import io
import os
import re
import tempfile
from collections.abc import Callable

from vigil.errors import HashListError, LimitExceeded, UnreadableItem
from vigil.limits import Limits, MiB

# Limits for fuzzing: small enough that any input a reader accepts is cheap to finish, so a
# slow or large run is the reader ignoring a limit, not a big input.
LIMITS = Limits(
    max_file_size=16 * MiB,
    max_archive_bytes=64 * MiB,
    max_archive_depth=4,
    max_archive_members=2_000,
    max_image_pixels=4_000_000,
    item_seconds=20.0,
    max_image_file_size=16 * MiB,
    max_buffered_archive=16 * MiB,
    max_video_seconds=600.0,
    max_video_frames=1_000,
    max_video_decode_seconds=20.0,
    max_buffered_video=16 * MiB,
)

# Hash-list formats a `hashlist` input may name in its first byte (index 0: detection).
HASHLIST_FORMATS: tuple[str, ...] = (
    "auto",
    "vics",
    "ncmec",
    "csv",
    "md5sum",
    "sha1sum",
    "sha256sum",
    "pdq",
    "nsrl",
    "hashkeeper",
    "vpdq",
    "vpdq-csv",
)

_HEX = re.compile(r"[0-9a-f]*\Z")
_HEX_LENGTHS = {"md5": 32, "sha1": 40, "sha256": 64, "pdq": 64}


class ContractViolation(AssertionError):
    """The reader returned something its contract rules out (a malformed entry, a bad item)."""


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ContractViolation(message)


def _scratch_file(data: bytes, name: str) -> str:
    """`data` written to a fresh file named `name` in a private directory (removed by caller)."""
    directory = tempfile.mkdtemp(prefix="vigil-fuzz-")
    path = os.path.join(directory, name)
    with open(path, "wb") as f:
        f.write(data)
    return path


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    finally:
        os.rmdir(os.path.dirname(path))


def hashlist_input(fmt: str, content: bytes) -> bytes:
    """The `hashlist` target's input for a file `content` read as format `fmt`."""
    return bytes([HASHLIST_FORMATS.index(fmt)]) + content


def hashlist(data: bytes) -> None:
    """read_hashlist over the file (first byte: the format, see HASHLIST_FORMATS), consumed."""
    from vigil.hashsets.entry import ParseReport
    from vigil.hashsets.reader import read_hashlist

    if not data:
        return
    fmt = HASHLIST_FORMATS[data[0] % len(HASHLIST_FORMATS)]
    path = _scratch_file(data[1:], "list.txt")
    try:
        entries, report = read_hashlist(path, fmt)  # type: ignore[arg-type]
        _check(isinstance(report, ParseReport), "no ParseReport")
        for entry in entries:
            _check_entry(entry)
    except HashListError:
        pass
    finally:
        _remove(path)


def _check_entry(entry: object) -> None:
    from vigil.hashsets.entry import Entry

    _check(isinstance(entry, Entry), f"not an Entry: {entry!r:.200}")
    assert isinstance(entry, Entry)
    _check(bool(entry.hashes) or bool(entry.vpdq), f"an entry without hashes: {entry!r:.200}")
    for kind, value in entry.hashes.items():
        _check(
            kind in _HEX_LENGTHS
            and isinstance(value, str)
            and len(value) == _HEX_LENGTHS[kind]
            and _HEX.match(value) is not None,
            f"malformed {kind} hash {value!r:.100}",
        )
    for frame in entry.vpdq:
        _check(
            len(frame.hash) == 64 and _HEX.match(frame.hash) is not None,
            f"malformed vPDQ frame hash {frame.hash!r:.100}",
        )
        _check(0 <= frame.quality <= 100, f"vPDQ frame quality {frame.quality}")
    _check(entry.id is None or isinstance(entry.id, str), f"id {entry.id!r:.100} not a string")
    _check(
        entry.category is None or isinstance(entry.category, str),
        f"category {entry.category!r:.100} not a string",
    )


def archive(data: bytes) -> None:
    """read_file over the file (archives nested or not), every item and error consumed."""
    from vigil.scan.reader import RawItem, read_file
    from vigil.scan.results import ScanError

    path = _scratch_file(data, "input.bin")
    try:
        out = list(read_file(path, LIMITS, lambda media_type: True))
    finally:
        _remove(path)
    for item in out:
        _check(isinstance(item, RawItem | ScanError), f"read_file yielded {item!r:.200}")
        if isinstance(item, ScanError):
            _check(bool(item.reason) and isinstance(item.message, str), f"bad error {item}")
        else:
            _check(item.size >= 0 and len(item.sha256) == 64, f"bad item {item!r:.200}")
            _check(item.size <= LIMITS.max_file_size, f"item over max_file_size: {item.size}")
    _check(bool(out), "read_file yielded nothing")
    last = out[-1]
    _check(last.member is None, f"the file itself does not come last: {last!r:.200}")


def image(data: bytes) -> None:
    """pdq_from_bytes, full and fast decode."""
    from vigil.fingerprint.pdq import pdq_from_bytes

    for fast in (False, True):
        try:
            found = pdq_from_bytes(data, max_pixels=LIMITS.max_image_pixels, fast=fast)
        except (UnreadableItem, LimitExceeded):
            continue
        _check(
            len(found.hash) == 64 and _HEX.match(found.hash) is not None,
            f"malformed PDQ {found.hash!r:.100}",
        )
        _check(0 <= found.quality <= 100, f"PDQ quality {found.quality}")


def _check_video(found: object) -> None:
    from vigil.fingerprint.video import VideoHash

    _check(isinstance(found, VideoHash), f"not a VideoHash: {found!r:.200}")
    assert isinstance(found, VideoHash)
    _check(len(found.frames) <= LIMITS.max_video_frames, f"{len(found.frames)} frames")
    for frame in found.frames:
        _check(len(frame.hash) == 64, f"malformed frame hash {frame.hash!r:.100}")
        _check(0 <= frame.quality <= 100, f"frame quality {frame.quality}")


def video(data: bytes) -> None:
    """vpdq_of_video over the bytes as a stream (an archive member's path through the scan)."""
    from vigil.fingerprint.video import vpdq_of_video

    try:
        found = vpdq_of_video(io.BytesIO(data), limits=LIMITS)
    except (UnreadableItem, LimitExceeded):
        return
    _check_video(found)


def video_file(data: bytes) -> None:
    """vpdq_of_video over the bytes as a file on disk (FFmpeg reads the path)."""
    from vigil.fingerprint.video import vpdq_of_video

    path = _scratch_file(data, "input.mp4")
    try:
        found = vpdq_of_video(path, limits=LIMITS)
    except (UnreadableItem, LimitExceeded):
        return
    finally:
        _remove(path)
    _check_video(found)


def animation(data: bytes) -> None:
    """vpdq_of_animation (animated GIF and WebP through Pillow)."""
    from vigil.fingerprint.video import vpdq_of_animation

    try:
        found = vpdq_of_animation(data, limits=LIMITS)
    except (UnreadableItem, LimitExceeded):
        return
    if found is not None:
        _check_video(found)


TARGETS: dict[str, Callable[[bytes], None]] = {
    "hashlist": hashlist,
    "archive": archive,
    "image": image,
    "video": video,
    "video-file": video_file,
    "animation": animation,
}


def warm() -> None:
    """Import what the targets use now (a child process does this before its first input)."""
    import vigil.fingerprint.pdq
    import vigil.fingerprint.video
    import vigil.hashsets.reader
    import vigil.scan.reader  # noqa: F401

    vigil.fingerprint.pdq.warm()


def _selftest_crash(data: bytes) -> None:
    import ctypes

    ctypes.string_at(0)  # a null-pointer read: SIGSEGV


def _selftest_abort(data: bytes) -> None:
    os.abort()  # what a C library's failed assertion does: SIGABRT


def _selftest_hang(data: bytes) -> None:
    while True:
        pass


def _selftest_memory(data: bytes) -> None:
    bytearray(1 << 40)


# Targets that misbehave on purpose, to prove the runner catches each way of failing.
SELF_TESTS: dict[str, Callable[[bytes], None]] = {
    "selftest-crash": _selftest_crash,
    "selftest-abort": _selftest_abort,
    "selftest-hang": _selftest_hang,
    "selftest-memory": _selftest_memory,
}
