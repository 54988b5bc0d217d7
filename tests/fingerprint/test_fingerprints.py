"""The fingerprint cache's form of Fingerprints reads back to the same object."""

from __future__ import annotations

import json
from dataclasses import asdict, fields

import numpy as np
import pytest

from vigil.fingerprint.fingerprints import PDQ, Fingerprints, VPDQFrame
from vigil.scan.cache import decode_items, encode_items
from vigil.scan.results import ScannedItem

H = "0123456789abcdef" * 4


def digests() -> dict[str, object]:
    return {"size": 12345, "md5": "a" * 32, "sha1": "b" * 40, "sha256": "c" * 64}


CASES = {
    "plain file": Fingerprints(**digests(), media_type="text/plain"),
    "image": Fingerprints(
        **digests(), media_type="image/jpeg", pdq=PDQ(H, 87, tuple(H[i:] + H[:i] for i in range(8)))
    ),
    "damaged image": Fingerprints(
        **digests(), media_type="image/png", pdq_error="truncated", extra={"note": [1, 2]}
    ),
    "video": Fingerprints(
        **digests(),
        media_type="video/mp4",
        vpdq=[VPDQFrame(0, 0.0, 100, H), VPDQFrame(30, 1.001, 49, H[::-1], cropped=H)],
        vpdq_error="max_video_frames",
        video={"codec": "h264", "width": 640, "height": 480, "fps": 29.97, "frames": None},
    ),
    "animation": Fingerprints(
        **digests(), media_type="image/gif", pdq=PDQ(H, 50, (H,) * 8), vpdq=[]
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_cache_form_round_trips(name: str) -> None:
    fp = CASES[name]
    state = fp.to_json_state()
    # Every field is kept, as asdict would keep it...
    assert set(state) == {f.name for f in fields(Fingerprints)}
    assert json.loads(json.dumps(state)) == json.loads(json.dumps(asdict(fp)))
    # ...and reads back to an equal object through JSON, tuples and all: with the json module
    # and through the cache's own encoding (orjson).
    back = Fingerprints.from_dict(json.loads(json.dumps(state)))
    assert back == fp
    [item] = decode_items("/x", encode_items([ScannedItem("/x", "inner.bin", fp)]))
    assert item == ScannedItem("/x", "inner.bin", fp)
    if fp.pdq is not None:
        assert isinstance(back.pdq.dihedral, tuple)  # type: ignore[union-attr]


def test_cache_encoding_takes_numpy_numbers_and_refuses_other_objects() -> None:
    fp = Fingerprints(
        **digests(),
        media_type="video/mp4",
        video={"fps": np.float64(29.97), "frames": np.int64(300)},
    )
    [item] = decode_items("/v", encode_items([ScannedItem("/v", None, fp)]))
    assert item.fingerprints.video == {"fps": 29.97, "frames": 300}
    odd = Fingerprints(**digests(), media_type="text/plain", extra={"x": object()})
    with pytest.raises(TypeError, match="not JSON serializable: object"):
        encode_items([ScannedItem("/o", None, odd)])
