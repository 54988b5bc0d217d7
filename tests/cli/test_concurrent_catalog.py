"""`vigil scan` while hash sets are imported and removed in a loop (a server publishing lists
while agents scan): every scan completes, and reports the sets of exactly one catalog state."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

# Real processes over loopback: run in the suite's process-parallel group (scripts/test).
pytestmark = pytest.mark.e2e

VIGIL = [sys.executable, "-m", "vigil.cli"]

# The loop below walks these catalog states, in order, again and again ("a" is replaced by a
# list of other files halfway). Every state keeps "base", so no scan finds the catalog empty.
LISTS = {"base": ["f0"], "a1": ["f1", "f2"], "b": ["f3"], "a2": ["f4"]}
STATES = [
    {"base": "base"},
    {"base": "base", "a": "a1"},
    {"base": "base", "a": "a1", "b": "b"},
    {"base": "base", "b": "b"},
    {"base": "base", "b": "b", "a": "a2"},
    {"base": "base", "a": "a2"},
]

LOOP = r"""
import sys, time
from pathlib import Path
from vigil.catalog.store import Catalog
home, lists, stop = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
catalog = Catalog.open(home)
changes = 0
deadline = time.monotonic() + 120  # bounded even if the test dies
while not stop.exists() and time.monotonic() < deadline:
    for step in (("import", "a", "a1"), ("import", "b", "b"), ("remove", "a", None),
                 ("import", "a", "a2"), ("remove", "b", None), ("remove", "a", None)):
        if step[0] == "import":
            catalog.import_file(lists / f"{step[2]}.md5", name=step[1])
        else:
            catalog.remove(step[1])
        changes += 1
        time.sleep(0.05)
print(changes)
"""


def expected(state: dict[str, str], tree: Path) -> set[tuple[str, str]]:
    return {(str(tree / f), name) for name, lst in state.items() for f in LISTS[lst]}


def test_scans_during_imports_and_removals_see_one_catalog_state(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    for i in range(6):
        (tree / f"f{i}").write_bytes(f"file {i}\n".encode() * (i + 1))
    lists = tmp_path / "lists"
    lists.mkdir()
    for name, files in LISTS.items():
        lines = [f"{hashlib.md5((tree / f).read_bytes()).hexdigest()}  {f}\n" for f in files]
        (lists / f"{name}.md5").write_text("".join(lines))
    home = tmp_path / "home"
    env = {**os.environ, "VIGIL_HOME": str(home)}
    subprocess.run(
        [*VIGIL, "hashset", "import", str(lists / "base.md5"), "--name", "base"],
        env=env,
        check=True,
        capture_output=True,
    )
    valid = [expected(s, tree) for s in STATES]
    stop = tmp_path / "stop"
    loop = subprocess.Popen(
        [sys.executable, "-c", LOOP, str(home), str(lists), str(stop)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    results: list[tuple[int, str, str]] = []
    try:
        # Two scans at a time, 12 in all (bounded: each scan of six small files takes ~1 s).
        for _ in range(6):
            scans = [
                subprocess.Popen(
                    [*VIGIL, "scan", str(tree), "--json", "--workers", "1"],
                    env=env,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
                for _ in range(2)
            ]
            for p in scans:
                out, err = p.communicate(timeout=300)
                results.append((p.returncode, out, err))
    finally:
        stop.touch()
        loop_out, loop_err = loop.communicate(timeout=300)
    assert loop.returncode == 0, loop_err
    changes = int(loop_out)
    seen_states = set()
    for rc, out, err in results:
        assert "Traceback" not in err, err
        assert rc in (0, 1), err  # nothing here is unreadable: a 2 would be a catalog race
        found = {(m["path"], m["hashset"]) for m in map(json.loads, out.splitlines())}
        assert found in valid, f"a mix of catalog states: {sorted(found)}"
        seen_states.add(valid.index(found))
    # The loop really ran during the scans, and the scans saw more than one state.
    assert changes >= 12 and len(seen_states) >= 2, (changes, seen_states)
