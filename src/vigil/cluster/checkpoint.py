"""Checkpoints: finished shards on disk, so an interrupted scan resumes where it stopped.

    DIR/scan.json             what scan this is (roots, builds, settings): another scan is refused
    DIR/shards/<name>.json    one finished shard's result, written to a temporary name, fsynced,
                              then renamed: present means complete
    DIR/manifest.jsonl        one line per committed shard (name, files, matches, worker), appended
                              after the rename: the list an operator reads, never trusted alone

Shard names are digests of their files (vigil.cluster.shards), so a resumed scan cuts the same
shards and skips those already committed; a shard that a lost worker's retry delivers again is
committed once (its name is taken).
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

from vigil.cluster.results import ShardResult
from vigil.errors import VigilError

SCAN_FILE = "scan.json"
SHARDS_DIR = "shards"
MANIFEST = "manifest.jsonl"


class Checkpoint:
    """A checkpoint directory of one scan."""

    def __init__(self, root: str | Path, scan: dict[str, Any]) -> None:
        self.root = Path(root)
        self.shards = self.root / SHARDS_DIR
        self.shards.mkdir(parents=True, exist_ok=True)
        described = self.root / SCAN_FILE
        text = json.dumps(scan, sort_keys=True)
        if described.is_file():
            if json.loads(described.read_text()) != json.loads(text):
                raise VigilError(
                    f"the checkpoint {self.root} belongs to another scan (other paths, hash sets "
                    "or settings): give another --checkpoint directory, or remove this one"
                )
        else:
            _write_atomically(described, text.encode())

    def done(self) -> set[str]:
        """Names of the shards committed so far."""
        return {p.name[: -len(".json")] for p in self.shards.glob("*.json")}

    def load(self, name: str) -> ShardResult:
        """A committed shard's result."""
        return ShardResult.from_json((self.shards / f"{name}.json").read_bytes())

    def commit(self, result: ShardResult) -> bool:
        """Write a finished shard under its name; False if it was committed already."""
        final = self.shards / f"{result.name}.json"
        if final.exists():
            return False
        _write_atomically(final, result.to_json())
        line = {
            "shard": result.name,
            "files": result.counts.get("files", 0),
            "matches": len(result.matches),
            "errors": len(result.errors),
            "worker": result.worker,
        }
        with open(self.root / MANIFEST, "a", encoding="utf-8") as f:
            f.write(json.dumps(line) + "\n")
        return True


def _write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
