"""The hash-kind registry: the public names, the catalog's codes, ranks and thresholds."""

from __future__ import annotations

import hashlib
import subprocess
import sys

import pytest

from vigil import kinds
from vigil.catalog.schema import KIND_CODES, KIND_NAMES
from vigil.fingerprint.fingerprints import PDQ, Fingerprints, VPDQFrame
from vigil.hashsets.entry import HASH_KINDS
from vigil.matching.matcher import EXACT_KINDS


def test_names_are_the_public_ones() -> None:
    assert kinds.NAMES == ("md5", "sha1", "sha256", "pdq", "vpdq")
    assert {k.name for k in kinds.EXACT} == {"md5", "sha1", "sha256"}
    assert {k.name for k in kinds.NEAR} == {"pdq", "vpdq"} == kinds.NEAR_NAMES
    for k in kinds.KINDS:
        assert kinds.kind(k.name) is k
        assert str(k) == k.name
    with pytest.raises(KeyError):
        kinds.kind("crc32")


def test_catalog_codes_never_change() -> None:
    # Existing catalogs store these numbers in hashes.kind.
    assert KIND_CODES == {"md5": 1, "sha1": 2, "sha256": 3, "pdq": 4}
    assert KIND_NAMES == {1: "md5", 2: "sha1", 3: "sha256", 4: "pdq"}
    assert all(kinds.by_code(code).name == name for code, name in KIND_NAMES.items())
    assert kinds.VPDQ.code is None  # its frames live in video_frames


def test_widths_are_the_digests() -> None:
    for algorithm in ("md5", "sha1", "sha256"):
        digest = hashlib.new(algorithm, b"alpha").hexdigest()
        assert kinds.kind(algorithm).hex_width == len(digest)
    assert kinds.PDQ.hex_width == 64 and kinds.PDQ.byte_width == 32
    assert EXACT_KINDS == {"md5": 16, "sha1": 20, "sha256": 32}
    assert HASH_KINDS == {"md5": 32, "sha1": 40, "sha256": 64, "pdq": 64}


def test_exact_kinds_outrank_near_ones() -> None:
    assert min(k.rank for k in kinds.EXACT) > max(k.rank for k in kinds.NEAR)
    assert kinds.strongest(["md5", "pdq", "sha1"]) == "sha1"
    assert kinds.strongest(["vpdq", "pdq"]) == "pdq"
    assert kinds.strongest(["md5", "sha256"]) == "sha256"


def test_near_kinds_declare_their_thresholds() -> None:
    assert kinds.PDQ.thresholds == kinds.Thresholds(31, 50)
    video = kinds.VPDQ.thresholds
    assert isinstance(video, kinds.VideoThresholds)
    assert (video.distance, video.quality) == (31, 50)
    assert (video.query_match_percent, video.compared_match_percent) == (80.0, 0.0)
    assert all(k.thresholds is None for k in kinds.EXACT)


def test_a_kind_is_declared_once() -> None:
    with pytest.raises(ValueError, match="twice"):
        kinds.declare(kinds.HashKind("md5", 32, exact=True, field="md5", rank=9))
    with pytest.raises(ValueError, match="taken"):
        kinds.declare(kinds.HashKind("crc32", 8, exact=True, field="crc32", rank=0, code=1))
    with pytest.raises(ValueError, match="near kinds"):
        kinds.declare(kinds.HashKind("tlsh", 70, exact=False, field="tlsh", rank=0))
    assert kinds.NAMES == ("md5", "sha1", "sha256", "pdq", "vpdq")


def test_each_kind_reads_its_fingerprint_field() -> None:
    fp = Fingerprints(
        5,
        "a" * 32,
        "b" * 40,
        "c" * 64,
        "image/jpeg",
        PDQ("d" * 64, 90),
        None,
        [VPDQFrame(0, 0.0, 90, "e" * 64)],
    )
    assert [fp.hex_of(k) for k in kinds.SINGLE] == ["a" * 32, "b" * 40, "c" * 64, "d" * 64]
    assert getattr(fp, kinds.VPDQ.field)[0].hash == "e" * 64
    with pytest.raises(ValueError):
        fp.hex_of(kinds.VPDQ)
    no_image = Fingerprints(5, "a" * 32, "b" * 40, "c" * 64, "text/plain")
    assert no_image.hex_of(kinds.PDQ) is None


def test_the_registry_loads_nothing_heavy() -> None:
    # The CLI reads it at start-up.
    code = "import sys, vigil.kinds; sys.exit('numpy' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
