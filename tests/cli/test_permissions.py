"""Files and directories the scanning user may not read: each one error line, the scan goes on.

Root reads everything whatever the mode, so when the suite runs as root the scan runs without
the capabilities that let root ignore file modes (util-linux's `setpriv` drops CAP_DAC_OVERRIDE
and CAP_DAC_READ_SEARCH): a real refusal by the kernel, not a simulated one.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

WITHOUT_DAC = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search"]


@pytest.fixture
def world_dir() -> Iterator[Path]:
    # pytest's tmp_path is private to its user; this one must be reachable by `nobody`.
    d = Path(tempfile.mkdtemp(prefix="vigil-perm-"))
    d.chmod(0o755)
    yield d
    for p in d.rglob("*"):
        p.chmod(0o755) if p.is_dir() else p.chmod(0o644)
    shutil.rmtree(d)


def test_unreadable_file_and_directory_are_reported(world_dir: Path) -> None:
    root = world_dir / "scan"
    (root / "ok").mkdir(parents=True)
    (root / "ok" / "a.txt").write_text("fine")
    (root / "secret.txt").write_text("no")
    (root / "locked").mkdir()
    (root / "locked" / "f.txt").write_text("hidden")
    for d in (root, root / "ok"):
        d.chmod(0o755)
    (root / "ok" / "a.txt").chmod(0o644)
    (root / "secret.txt").chmod(0)
    (root / "locked").chmod(0)
    home = world_dir / "home"
    home.mkdir()
    home.chmod(0o777)
    listing = world_dir / "list.md5"
    listing.write_text("00" * 16 + "\n")
    listing.chmod(0o644)
    prefix = WITHOUT_DAC if os.geteuid() == 0 else []
    env = {**os.environ, "VIGIL_HOME": str(home)}
    proc = subprocess.run(
        [
            *prefix,
            sys.executable,
            "-m",
            "vigil.cli",
            "scan",
            str(root),
            "-q",
            "--hashset",
            str(listing),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    lines = sorted(line for line in proc.stderr.splitlines() if line.startswith("vigil: error:"))
    assert len(lines) == 2, proc.stderr
    assert f"{root / 'locked'}: permission" in lines[0]
    assert f"{root / 'secret.txt'}: permission" in lines[1]
