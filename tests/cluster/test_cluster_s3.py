"""`s3://bucket/prefix` on an S3-compatible store run here on loopback (moto's server): the same
results as the files on disk, credentials and endpoint from the AWS SDK's environment only, and a
repeat scan of the unchanged bucket answered from the cluster cache."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.cluster import Planted, json_matches, match_key, vigil
from support.server import free_port

# Real processes over loopback: run in the suite's process-parallel group (scripts/test).
pytestmark = pytest.mark.e2e

BUCKET = "evidence"


@pytest.fixture(scope="module")
def s3(tree: Planted) -> Iterator[dict[str, str]]:
    """A moto S3 server on 127.0.0.1 holding the planted tree under `case-7/tree/`; the
    environment a scan needs to reach it."""
    import boto3
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    env = {
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    try:
        client = boto3.client(
            "s3",
            endpoint_url=env["AWS_ENDPOINT_URL"],
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            region_name="us-east-1",
        )
        client.create_bucket(Bucket=BUCKET)
        for path in sorted(tree.root.rglob("*")):
            if path.is_file():
                key = f"case-7/tree/{path.relative_to(tree.root)}"
                client.put_object(Bucket=BUCKET, Key=key, Body=path.read_bytes())
        client.put_object(Bucket=BUCKET, Key="case-8/other.txt", Body=b"not in the prefix")
        yield env
    finally:
        server.stop()


def _errors(stderr: str, root: str) -> list[str]:
    out = []
    for line in stderr.splitlines():
        if line.startswith("vigil: error:"):
            where, reason = line.split(": ")[2:4]
            out.append((where[len(root) :].lstrip("/"), reason))
    return sorted(out)


def test_a_bucket_prefix_gives_the_results_of_the_files_on_disk(
    tree: Planted, s3: dict[str, str], tmp_path: Path
) -> None:
    url = f"s3://{BUCKET}/case-7/tree"
    home = tmp_path / "home"
    # The same catalog as the local scan's (a copy of its home).
    import shutil

    shutil.copytree(tree.home, home)
    proc = vigil(
        "scan", "--cluster", "local:2", "--json", "--shard-files", "6", url, home=home, env=s3
    )
    assert proc.returncode == tree.local_status, proc.stderr
    found = json_matches(proc.stdout)
    assert sorted(match_key(m, url) for m in found) == sorted(
        match_key(m, str(tree.root)) for m in tree.local
    )
    local = vigil("scan", "--json", "--no-cache", str(tree.root), home=tree.home)
    assert _errors(proc.stderr, url) == _errors(local.stderr, str(tree.root))
    files = sum(1 for p in tree.root.rglob("*") if p.is_file())
    assert f"{files:,} files" in proc.stderr or f"{files} files" in proc.stderr
    # Again, unchanged: every object read cleanly comes from the cache (none is read).
    again = vigil("scan", "--cluster", "local:1", "--json", url, home=home, env=s3)
    assert again.returncode == tree.local_status, again.stderr
    assert sorted(match_key(m, url) for m in json_matches(again.stdout)) == sorted(
        match_key(m, url) for m in found
    )
    cached = re.search(r"([\d,]+) from cache", again.stderr)
    assert cached is not None, again.stderr
    unclean = len({e[0] for e in _errors(proc.stderr, url)})
    assert int(cached.group(1).replace(",", "")) == files - unclean


def test_a_missing_prefix_is_an_error(tree: Planted, s3: dict[str, str]) -> None:
    proc = vigil(
        "scan", "--cluster", "local:1", f"s3://{BUCKET}/no-such-prefix", home=tree.home, env=s3
    )
    assert proc.returncode == 2
    assert "not-found" in proc.stderr
