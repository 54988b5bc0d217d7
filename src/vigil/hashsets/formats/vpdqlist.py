"""vPDQ of one video as Meta's `vpdq-hash-video` writes it: `frame,quality,pdq,timestamp` lines.

One file is one known video: its entry's id is the file's name without extension (the reference
tools name the output after the video). The Python binding's README prints `frame,pdq,quality,
timestamp`; either order is read (the 64-hex field is the hash). `vigil hash --vpdq-out DIR`
writes this format.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import BinaryIO

from vigil.fingerprint.fingerprints import VPDQFrame
from vigil.hashsets.entry import Entry, ParseReport
from vigil.hashsets.formats import text_stream

_NUMBER = r"[0-9]+(?:\.[0-9]*)?"
_HEX = r"[0-9A-Fa-f]{64}"
LINE = re.compile(
    rf"\s*(?P<frame>[0-9]+)\s*,\s*(?:(?P<q1>[0-9]+)\s*,\s*(?P<h1>{_HEX})|(?P<h2>{_HEX})\s*,\s*"
    rf"(?P<q2>[0-9]+))\s*,\s*(?P<time>{_NUMBER})\s*"
)


def parse_frame(line: str) -> VPDQFrame | None:
    """One `frame,quality,pdq,timestamp` line as a frame, or None if it is not one."""
    found = LINE.fullmatch(line)
    if found is None:
        return None
    try:
        quality = int(found["q1"] or found["q2"])
        index = int(found["frame"])
    except ValueError:  # more digits than int() converts (sys.get_int_max_str_digits)
        return None
    if quality > 100:
        return None
    return VPDQFrame(index, float(found["time"]), quality, (found["h1"] or found["h2"]).lower())


def parse(stream: BinaryIO, report: ParseReport, name: str = "video") -> Iterator[Entry]:
    """The one entry of a per-video vPDQ file named `name`."""
    frames: list[VPDQFrame] = []
    for number, raw in enumerate(text_stream(stream), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        frame = parse_frame(line)
        if frame is None:
            report.problem(number, f"not a 'frame,quality,pdq,timestamp' line: {line[:80]!r}")
            continue
        frames.append(frame)
    if frames:
        yield Entry(hashes={}, id=name, vpdq=frames, meta={"vpdq_file": name})
