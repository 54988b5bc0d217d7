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
from vigil.hashsets.listformat import Detector, ListFormat, Reading

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


# -- declaration ---------------------------------------------------------------------------------


def _parse(stream: BinaryIO, report: ParseReport, reading: Reading) -> Iterator[Entry]:
    # One file is one video, named after the file (as the reference tool names it).
    path = reading.path
    name = path.name.removesuffix(".gz").rsplit(".", 1)[0] or path.name
    return parse(stream, report, name)


_FRAMES = (
    "0,100,f8f8f0cce0f4e84d0e370a22028f67f0b36e2ed596623e1d33e6339c4e9c9b22,0.000",
    "1,98,b0a10efd71cc3f429413d48d0ffffe12e34e0e17ada952a9d29684210aa9e5af,1.000",
)

LIST_FORMATS = (
    ListFormat(
        name="vpdq",
        parse=_parse,
        detect=(Detector(400, lambda sample: LINE.fullmatch(sample.first) is not None),),
        example="".join(f"{line}\n" for line in _FRAMES),
        malformed_example="".join(
            f"{line}\n" for line in (_FRAMES[0], "2,100,xyz,2.000", _FRAMES[1])
        ),
    ),
)
