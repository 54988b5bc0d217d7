"""Signed catalog updates: bytes an agent downloads per update, and the time to publish and apply.

A server catalog of `--entries` synthetic entries (seeded MD5, SHA-1 and PDQ each, one set) is
published as version 1 through the server's TUF repository (vigil.server.publish) and served over
loopback HTTP; an agent (vigil.updates.client.CatalogUpdater, the real TUF client) takes the
whole catalog. Then two changes, each published and taken by the agent as a delta:
- `replace`: a new release of the list with `--change` entries replaced (as many removed and
  added; the set is re-imported whole, as `vigil hashset import` does);
- `add`: a new set of `--change` entries.
For each: the time to import it (a re-import changes only the entries that differ), bytes
downloaded (metadata + bundle), the whole bundle's size for comparison, the time to publish (the
delta from the catalog's change record, signed: what agents wait for; the first version is
bundled whole at once), the time to bundle the whole catalog afterwards (what the server's
publisher does in the background) and to verify and apply on the agent.

    python -m benchmarks.bench_catalog_update --entries 1000000 --change 1000
"""

from __future__ import annotations

import argparse
import functools
import http.server
import random
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from vigil.catalog.store import Catalog
from vigil.hashsets.entry import Entry, ParseReport
from vigil.server.publish import FULL_TARGET, Repository
from vigil.updates.client import CatalogUpdater, save_root


def entries(n: int, seed: int) -> Iterator[Entry]:
    rnd = random.Random(seed)
    for i in range(n):
        yield Entry(
            {
                "md5": rnd.randbytes(16).hex(),
                "sha1": rnd.randbytes(20).hex(),
                "pdq": rnd.randbytes(32).hex(),
            },
            id=f"{seed}-{i}",
            category="1",
        )


def put(catalog: Catalog, name: str, items: Iterator[Entry]) -> None:
    report = ParseReport(format="csv")
    catalog.import_entries(name, items, report, source="bench", version=str(time.time()))


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


def serve(directory: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    """The home's files over loopback HTTP (the repository is static files)."""
    handler = functools.partial(_Quiet, directory=str(directory))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, f"http://127.0.0.1:{httpd.server_address[1]}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--entries", type=int, default=1_000_000)
    ap.add_argument("--change", type=int, default=1_000)
    args = ap.parse_args()
    n, k = args.entries, args.change
    with tempfile.TemporaryDirectory() as tmp:
        home, agent_home = Path(tmp, "server"), Path(tmp, "agent")
        home.mkdir()
        agent_home.mkdir()
        catalog = Catalog.open(home)
        t = time.perf_counter()
        put(catalog, "list", entries(n, 1))
        imported = time.perf_counter() - t
        print(f"imported {n:,} entries in {imported:.1f} s")
        repo = Repository(home)
        repo.create()
        httpd, url = serve(home)
        save_root(agent_home, repo.root_json())
        updater = CatalogUpdater(agent_home, url, "unused")
        rows = []

        def step(label: str, imported: float) -> None:
            t0 = time.perf_counter()
            version = repo.publish(catalog)
            published = time.perf_counter() - t0
            updater.downloads.clear()
            t0 = time.perf_counter()
            result = updater.update()
            applied = time.perf_counter() - t0
            assert result.version == version, (result, version)
            meta = sum(b for u, b in updater.downloads if "/metadata/" in u)
            bundle = sum(b for u, b in updater.downloads if "/targets/" in u)
            t0 = time.perf_counter()
            repo.build_full(catalog)
            whole = time.perf_counter() - t0 if repo.state()["full"] == version else 0.0
            full = repo._read("targets").signed.targets[FULL_TARGET].length
            rows.append((label, imported, meta, bundle, full, published, whole, applied))

        step(f"first sync ({n:,} entries)", imported)
        # A new release of the list: k entries replaced, the rest as before.
        replaced = (
            e if i >= k else next(entries(1, 10_000_000 + i)) for i, e in enumerate(entries(n, 1))
        )
        t = time.perf_counter()
        put(catalog, "list", replaced)
        step(f"{k:,} of {n:,} entries replaced (the list re-imported)", time.perf_counter() - t)
        t = time.perf_counter()
        put(catalog, "new-list", entries(k, 2))
        step(f"a new set of {k:,} entries", time.perf_counter() - t)
        httpd.shutdown()
        catalog.close()
    print()
    print(
        "| update | import s | metadata bytes | bundle bytes | total downloaded | whole bundle | "
        "publish s | whole bundle later s | verify + apply s |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for label, imported, meta, bundle, full, published, whole, applied in rows:
        print(
            f"| {label} | {imported:.1f} | {meta:,} | {bundle:,} | {meta + bundle:,} | {full:,} | "
            f"{published:.1f} | {whole:.1f} | {applied:.1f} |"
        )


if __name__ == "__main__":
    main()
