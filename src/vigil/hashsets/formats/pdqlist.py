"""PDQ lists in the ThreatExchange convention: one `pdq <64 hex>` per line.

Text after the hash (ThreatExchange tools may add labels) is kept in meta. A bare 64-hex line is
accepted only when the caller named the format or the first line says `PDQ`: on its own a
64-hex value could as well be a SHA-256.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import BinaryIO

from vigil.hashsets.entry import Entry, ParseReport
from vigil.hashsets.formats import text_stream
from vigil.hashsets.formats.sums import type_line
from vigil.hashsets.listformat import Detector, ListFormat, Reading, declares
from vigil.kinds import PDQ

PDQ_LINE = re.compile(r"(?i:pdq)[ \t,]+(?P<hash>[0-9A-Fa-f]+)(?:[ \t,]+(?P<rest>.*))?")
BARE_LINE = re.compile(r"(?P<hash>[0-9A-Fa-f]+)(?:[ \t,]+(?P<rest>.*))?")


def parse(stream: BinaryIO, report: ParseReport, bare: bool = False) -> Iterator[Entry]:
    """Entries of a PDQ list; `bare` accepts lines holding only the hash."""
    seen_record = False
    for number, raw in enumerate(text_stream(stream), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if not seen_record and type_line(line) == PDQ.name:
            bare = True
            continue
        seen_record = True
        found = PDQ_LINE.fullmatch(line) or (BARE_LINE.fullmatch(line) if bare else None)
        if found is None:
            signal = line.split(None, 1)[0][:40]
            if not bare and BARE_LINE.fullmatch(line):
                report.problem(number, "a bare hash without 'pdq' in front (use --format pdq)")
            else:
                report.problem(number, f"not a 'pdq <64 hex>' line (starts with {signal!r})")
            continue
        value = found["hash"].lower()
        if len(value) != 64:
            report.problem(number, f"PDQ has {len(value)} hex characters, expected 64")
            continue
        rest = found["rest"]
        yield Entry(hashes={PDQ.name: value}, meta={"labels": rest.strip()} if rest else {})


# -- declaration ---------------------------------------------------------------------------------


def _parse(stream: BinaryIO, report: ParseReport, reading: Reading) -> Iterator[Entry]:
    # A caller who names the format vouches for bare 64-hex lines.
    return parse(stream, report, bare=reading.explicit)


LIST_FORMATS = (
    ListFormat(
        name="pdq",
        parse=_parse,
        # A first line `PDQ`, or `pdq <hex>` lines (after the CSV formats: `pdq,...` is a header).
        detect=(
            Detector(300, declares(PDQ.name)),
            Detector(700, lambda sample: PDQ_LINE.fullmatch(sample.first) is not None),
        ),
        example="pdq f8f8f0cce0f4e84d0e370a22028f67f0b36e2ed596623e1d33e6339c4e9c9b22\n"
        "pdq b0a10efd71cc3f429413d48d0ffffe12e34e0e17ada952a9d29684210aa9e5af label\n",
        malformed_example="pdq f8f8f0cce0f4e84d0e370a22028f67f0b36e2ed596623e1d33e6339c4e9c9b22\n"
        "pdq f8f8f0cce0f4e84d\n"
        "pdq b0a10efd71cc3f429413d48d0ffffe12e34e0e17ada952a9d29684210aa9e5af label\n",
    ),
)
