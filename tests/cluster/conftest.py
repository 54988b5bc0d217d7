"""A real Dask cluster on loopback (scheduler and worker processes), a planted tree with
archives and videos, and a home with its hash sets imported."""

from __future__ import annotations

import shutil
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support import planted
from support.cluster import Planted, json_matches, vigil
from support.videos import OTHER, SLIDESHOW, decoded, resized, slideshow_frames, write


@pytest.fixture(scope="session")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Planted:
    """Photos (altered copies, nested archives), videos (a re-encoded copy, a shrunk copy in a
    zip, an unrelated one, a truncated one), a home with both lists imported, and the local
    scan's matches."""
    base = tmp_path_factory.mktemp("cluster-tree")
    made = planted.build(base)
    videos = made.root / "videos"
    videos.mkdir()
    known = write(base / "known.mp4", slideshow_frames(SLIDESHOW[:3], 6, 5, (160, 120)), fps=5)
    write(videos / "copy.avi", decoded(known), codec="mpeg4", fps=5)
    small = write(base / "small.mkv", resized(decoded(known), (96, 72)), fps=5)
    with zipfile.ZipFile(videos / "clips.zip", "w") as z:
        z.writestr("inner/small.dat", small.read_bytes())
    write(videos / "unrelated.mp4", slideshow_frames(OTHER[:3], 6, 5, (160, 120)), fps=5)
    whole = (videos / "copy.avi").read_bytes()
    (videos / "truncated.mp4").write_bytes(whole[: len(whole) // 3])
    # More small files, so a scan cut into small shards has many.
    for i in range(24):
        (made.root / "other" / f"note-{i:02d}.txt").write_text(f"nothing {i}\n" * (i + 1))
    home = base / "home"
    lists = base / "lists"
    hashed = vigil("hash", "--vpdq-out", str(lists), str(known), home=home)
    assert hashed.returncode == 0, hashed.stderr
    for listing, name in ((made.hashlist, "photos"), (lists / "known.txt", "videos")):
        imported = vigil("hashset", "import", str(listing), "--name", name, home=home)
        assert imported.returncode == 0, imported.stderr
    local = vigil("scan", "--json", "--no-cache", str(made.root), home=home)
    assert local.returncode == 2, local.stderr  # matches, and the truncated video's error
    return Planted(made.root, home, json_matches(local.stdout), local.returncode)


@pytest.fixture(scope="session")
def cluster() -> Iterator[Any]:
    """A scheduler and two worker processes (one thread each) on 127.0.0.1, as an operator
    would start them for vigil (workers not daemonic: they start scanning processes)."""
    import dask
    from distributed import Client, LocalCluster

    settings = {
        "distributed.worker.daemon": False,
        "distributed.scheduler.allowed-failures": 3,
    }
    with dask.config.set(settings):
        local = LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",
        )
        client = Client(local)
        try:
            yield client
        finally:
            client.close()
            local.close()


@pytest.fixture()
def fresh_copy(tree: Planted, tmp_path: Path) -> Path:
    """A copy of the planted tree (tests that change files work on it)."""
    dest = tmp_path / "tree"
    shutil.copytree(tree.root, dest)
    return dest
