"""Parse a hash-list file and print entries per second and peak memory (RSS).

Usage: python benchmarks/bench_hashset_parse.py FILE [--format FORMAT]

Entries are counted and dropped, as an import does batch by batch, so the peak RSS shows what
the parser itself holds: it must stay flat however long the list.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

from vigil.hashsets.reader import read_hashlist


def peak_rss_mib() -> float:
    """Peak resident set size of this process so far, in MiB (Linux reports KiB)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024 if sys.platform != "darwin" else peak / (1024 * 1024)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", type=Path)
    parser.add_argument("--format", default="auto")
    args = parser.parse_args(argv)
    size = os.path.getsize(args.file)
    rss_before = peak_rss_mib()
    start = time.perf_counter()
    entries, report = read_hashlist(args.file, args.format)
    count = 0
    for _ in entries:
        count += 1
    seconds = time.perf_counter() - start
    print(f"file: {args.file} ({size / 1e6:.1f} MB), format {report.format}")
    print(f"entries: {count:,}  malformed: {report.malformed:,}")
    rate = count / seconds
    print(f"time: {seconds:.1f} s  rate: {rate:,.0f} entries/s  ({size / 1e6 / seconds:.1f} MB/s)")
    print(f"peak RSS: {peak_rss_mib():.1f} MiB (after imports: {rss_before:.1f} MiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
