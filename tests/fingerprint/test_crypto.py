"""MD5 / SHA-1 / SHA-256 from one read agree with the forensic standard tool, hashdeep."""

from __future__ import annotations

import csv
import os
import subprocess
from pathlib import Path

from vigil.fingerprint.crypto import Digests, digest_bytes
from vigil.limits import Limits
from vigil.scan.worker import fingerprint_file


def hashdeep(paths: list[Path]) -> dict[str, tuple[str, str, str]]:
    out = subprocess.run(
        ["hashdeep", "-c", "md5,sha1,sha256", *map(str, paths)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rows = [
        r for r in csv.reader(line for line in out.splitlines() if not line.startswith(("%", "#")))
    ]
    return {r[4]: (r[1], r[2], r[3]) for r in rows}


def test_digests_agree_with_hashdeep(tmp_path: Path) -> None:
    sizes = [0, 1, 63, 64, 65, 1 << 20, (3 << 20) + 17]
    paths = []
    for n in sizes:
        p = tmp_path / f"f{n}.bin"
        p.write_bytes(os.urandom(n))
        paths.append(p)
    ref = hashdeep(paths)
    for p in paths:
        [item] = fingerprint_file(str(p), Limits()).items
        fp = item.fingerprints
        assert (fp.md5, fp.sha1, fp.sha256) == ref[str(p)], p
        assert fp.size == p.stat().st_size


def test_chunked_feeding_equals_one_buffer() -> None:
    data = os.urandom(100_003)
    d = Digests()
    for i in range(0, len(data), 4096):
        d.update(memoryview(data)[i : i + 4096])
    assert d.hexdigests() == digest_bytes(data)
    assert d.size == len(data)
