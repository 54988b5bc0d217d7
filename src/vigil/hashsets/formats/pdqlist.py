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

PDQ_LINE = re.compile(r"(?i:pdq)[ \t,]+(?P<hash>[0-9A-Fa-f]+)(?:[ \t,]+(?P<rest>.*))?")
BARE_LINE = re.compile(r"(?P<hash>[0-9A-Fa-f]+)(?:[ \t,]+(?P<rest>.*))?")


def parse(stream: BinaryIO, report: ParseReport, bare: bool = False) -> Iterator[Entry]:
    """Entries of a PDQ list; `bare` accepts lines holding only the hash."""
    seen_record = False
    for number, raw in enumerate(text_stream(stream), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if not seen_record and type_line(line) == "pdq":
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
        yield Entry(hashes={"pdq": value}, meta={"labels": rest.strip()} if rest else {})
