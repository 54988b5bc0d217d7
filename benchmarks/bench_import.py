"""Importing a large VICS list into the catalog: time, entries per second, peak memory.

    python -m benchmarks.bench_import [--entries 5000000]

Generates a synthetic VICS 2.0 list (benchmarks/gen_vics.py: MD5, SHA-1, SHA-256 and PDQ per
Media), runs `vigil hashset import` on it in a fresh $VIGIL_HOME under /usr/bin/time, then
compiles the matcher (`vigil scan` of an empty folder), and prints the figures.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.corpus import DATA


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, int]:
    """(seconds, peak RSS in KiB) of a command."""
    t = time.perf_counter()
    proc = subprocess.run(["/usr/bin/time", "-v", *cmd], env=env, capture_output=True, text=True)
    secs = time.perf_counter() - t
    if proc.returncode not in (0, 1):
        sys.exit(f"{cmd} failed:\n{proc.stderr[-2000:]}")
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr).group(1))
    return secs, rss


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--entries", type=int, default=5_000_000)
    args = ap.parse_args()
    DATA.mkdir(parents=True, exist_ok=True)
    listing = DATA / f"vics-{args.entries}.json"
    if not listing.exists():
        subprocess.run(
            [sys.executable, "benchmarks/gen_vics.py", str(args.entries), str(listing)], check=True
        )
    size_mb = listing.stat().st_size / 1e6
    with tempfile.TemporaryDirectory(dir=DATA) as home:
        env = {**os.environ, "VIGIL_HOME": home}
        vigil = [sys.executable, "-m", "vigil.cli"]
        t_import, rss_import = timed(
            [*vigil, "hashset", "import", str(listing), "--name", "big"], env
        )
        empty = Path(home) / "empty"
        empty.mkdir()
        t_compile, rss_compile = timed([*vigil, "scan", str(empty), "-q", "--no-cache"], env)
        t_start, rss_start = timed([*vigil, "scan", str(empty), "-q", "--no-cache"], env)
        db_mb = (Path(home) / "catalog.sqlite").stat().st_size / 1e6
    print(f"VICS 2.0 list: {args.entries:,} Media ({4 * args.entries:,} hashes), {size_mb:,.0f} MB")
    print(
        f"import:  {t_import:7.1f} s  {args.entries / t_import:9,.0f} entries/s  peak RSS {rss_import / 1024:6.0f} MiB  catalog {db_mb:,.0f} MB"
    )
    print(
        f"compile: {t_compile:7.1f} s  (first scan after the import)   peak RSS {rss_compile / 1024:6.0f} MiB"
    )
    print(
        f"start:   {t_start:7.1f} s  (a scan with the compiled matcher) peak RSS {rss_start / 1024:6.0f} MiB"
    )


if __name__ == "__main__":
    main()
