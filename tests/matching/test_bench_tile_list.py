"""The robustness benchmark's check against a list of real-photo hashes (its tiles' own) counts
a tile that matches a tile of another group, and nothing else."""

from __future__ import annotations

import io

from PIL import Image
from skimage import data as skdata

from benchmarks import bench_robustness as bench
from vigil.fingerprint.fingerprints import Fingerprints


def tile(name: str, box: tuple[int, int, int, int], quality: int = 90) -> bytes:
    return bench.jpeg(Image.fromarray(getattr(skdata, name)()).crop(box), quality)


def entry(group: str, data: bytes) -> tuple[str, list[str], int, Fingerprints]:
    hashes, quality = bench.reference(Image.open(io.BytesIO(data)))
    return group, hashes, quality, bench.fingerprints(data)


def flat() -> bytes:
    return bench.jpeg(Image.new("RGB", (300, 300), (120, 130, 140)))


def test_a_tile_matching_another_groups_tile_is_counted_once_per_tile() -> None:
    same = tile("astronaut", (100, 50, 400, 350))
    tiles = [
        entry("astronaut", same),
        entry("not-astronaut", tile("astronaut", (100, 50, 400, 350), quality=80)),
        entry("astronaut", tile("astronaut", (102, 52, 402, 352))),  # its own group: no error
        entry("coffee", tile("coffee", (50, 50, 350, 350))),
        entry("coffee", tile("coffee", (52, 52, 352, 352))),  # near each other, one group
        entry("blank", flat()),
    ]
    contenders = ["pdqhash d<=31", *bench.SETTINGS]
    found = bench.tile_list_false_matches(tiles, contenders)
    for c in contenders:
        (good, examples), (every, _) = found[c]
        # The two astronaut groups' tiles match each other: tiles 0, 1 and 2 each have a
        # match of another group; the two coffee tiles match only each other, one group; the
        # flat tile nothing.
        assert good == every == 3, c
        assert examples and "not-astronaut" in " ".join(examples), c
