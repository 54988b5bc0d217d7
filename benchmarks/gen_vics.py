"""Write a synthetic VICS 2.0 Media list of N records with random hashes, streaming.

Usage: python benchmarks/gen_vics.py N OUT [--seed S] [--cases K]
(OUT ending in .gz is gzip-compressed; --cases K writes a #Cases document of K cases instead of
a flat #Media list, which takes the reader's general event-by-event path.)

The records look like real exports (uppercase MD5/SHA1, string booleans, SHA-256 and PDQ as
AlternativeHashes, one MediaFiles item) so that parsing them costs what parsing a real list does.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import sys
from typing import TextIO

CONTEXT = "http://github.com/VICSDATAMODEL/ProjectVic/DataModels/2.0.xml/US/$metadata#{}"


def media(rng: random.Random, media_id: int) -> dict[str, object]:
    """One synthetic Media record."""
    md5 = rng.randbytes(16).hex().upper()
    return {
        "MediaID": media_id,
        "Category": rng.choice((0, 1, 1, 2, 3, None)),
        "MD5": md5,
        "SHA1": rng.randbytes(20).hex().upper(),
        "MediaSize": rng.randrange(1_000, 5_000_000),
        "DateUpdated": "2026-01-01T00:00:00Z",
        "MimeType": "image/jpeg",
        "IsPrecategorized": "true",
        "VictimIdentified": "false",
        "OffenderIdentified": "false",
        "IsDistributed": rng.choice(("true", "false")),
        "SelfGenerated": "false",
        "Series": "",
        "Tags": "",
        "AlternativeHashes": [
            {"MD5": md5, "HashName": "SHA256", "HashValue": rng.randbytes(32).hex()},
            {"MD5": md5, "HashName": "PDQ", "HashValue": rng.randbytes(32).hex()},
        ],
        "MediaFiles": [{"MD5": md5, "FileName": f"{media_id}.jpg", "FilePath": "C:\\case\\"}],
        "Comments": "synthetic",
    }


def write(
    count: int,
    out: TextIO,
    seed: int = 1,
    cases: int = 0,
    replace: int = 0,
    md5s: tuple[str, ...] = (),
) -> None:
    """Write `count` Media as one VICS 2.0 document, one record at a time. `replace` > 0: the
    next release of the same list, its first `replace` records new ones (new ids, new hashes;
    the first of them with the MD5s `md5s`), the rest as before."""
    rng = random.Random(seed)
    fresh = random.Random(f"{seed}-release")
    context = CONTEXT.format("Cases" if cases else "Media")
    out.write('{\n  "@odata.context": ' + json.dumps(context) + ',\n  "value": [\n')
    per_case = -(-count // cases) if cases else count
    for i in range(count):
        if cases and i % per_case == 0:
            if i:
                out.write("\n  ]},\n")
            case = {"CaseID": f"00000000-0000-4000-8000-{i // per_case:012d}", "CaseNumber": str(i)}
            out.write(json.dumps(case)[:-1] + ', "Media": [\n')
        elif i:
            out.write(",\n")
        record = media(rng, i + 1)
        if i < replace:
            record = media(fresh, count + i + 1)
            if i < len(md5s):
                record["MD5"] = md5s[i].upper()
        out.write(json.dumps(record, separators=(",", ":")))
    out.write("\n  ]}\n  ]\n}\n" if cases and count else "\n  ]\n}\n")


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("count", type=int)
    parser.add_argument("out")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--cases", type=int, default=0, help="write K Cases holding the Media")
    args = parser.parse_args(argv)
    if args.out.endswith(".gz"):
        with gzip.open(args.out, "wt", encoding="utf-8", compresslevel=6) as out:
            write(args.count, out, args.seed, args.cases)
    else:
        with open(args.out, "w", encoding="utf-8", buffering=1 << 20) as out:
            write(args.count, out, args.seed, args.cases)
    return 0


if __name__ == "__main__":
    sys.exit(main())
