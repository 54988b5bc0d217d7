"""vPDQ hash lists: the reference per-video file, CSV with a video id, VICS AlternativeHashes;
stored in the catalog (SQLite and PostgreSQL), exported and matched."""

from __future__ import annotations

import io
import json
from pathlib import Path

from vigil.catalog.store import Catalog
from vigil.fingerprint.fingerprints import VPDQFrame
from vigil.hashsets.export import write_vics, write_vpdq_csv
from vigil.hashsets.reader import read_hashlist
from vigil.matching.matcher import Matcher
from vigil.matching.video import VideoIndex, VideoRule

SAMPLE = (
    Path(__file__).resolve().parents[2].parent
    / "shared/conformance/pdq-vectors/vpdq/sample-hashes/doorknob-hd-no-bar.txt"
)
H1 = "f" * 64
H2 = "0f" * 32
H3 = "a5" * 32


def test_reference_file_is_one_video_named_after_the_file() -> None:
    entries, report = read_hashlist(SAMPLE)
    videos = list(entries)
    assert report.format == "vpdq" and report.malformed == 0
    assert len(videos) == 1 and videos[0].id == "doorknob-hd-no-bar"
    assert len(videos[0].vpdq) == 120 and videos[0].vpdq[1].timestamp == 0.033


def test_csv_rows_are_grouped_by_video_id(tmp_path: Path) -> None:
    path = tmp_path / "list.csv"
    path.write_text(
        "video_id,frame,quality,pdq,timestamp,category,source\n"
        f"a,0,100,{H1},0.0,1,x\nb,0,90,{H2},0.0,2,y\na,30,80,{H3},1.0,1,x\na,60,bad,{H1},2.0,1,x\n"
    )
    entries, report = read_hashlist(path)
    videos = {e.id: e for e in entries}
    assert report.format == "vpdq-csv" and report.malformed == 1
    assert [f.index for f in videos["a"].vpdq] == [0, 30]
    assert videos["a"].category == "1" and videos["a"].meta == {"source": "x"}
    assert videos["b"].vpdq == [VPDQFrame(0, 0.0, 90, H2)]


def test_vics_alternative_hashes_round_trip(tmp_path: Path, catalog: Catalog) -> None:
    doc = {
        "@odata.context": "http://github.com/VICSDATAMODEL/ProjectVic/DataModels/2.0.xml/US/$metadata#Media",
        "value": [
            {
                "MediaID": 7,
                "Category": 1,
                "AlternativeHashes": [
                    {"HashName": "vPDQ", "HashValue": f"0,100,{H1},0.000\n10,95,{H2},1.000"}
                ],
            }
        ],
    }
    path = tmp_path / "v.json"
    path.write_text(json.dumps(doc))
    result = catalog.import_file(path, name="vics")
    assert result.hashset.counts["by_kind"] == {"vpdq": 1, "vpdq_frames": 2}
    (entry,) = list(catalog.iter_entries("vics"))
    assert [f.hash for f in entry.vpdq] == [H1, H2]
    out = io.StringIO()
    write_vics([entry], out)
    alt = json.loads(out.getvalue())["value"][0]["AlternativeHashes"][0]
    assert alt == {"HashName": "vPDQ", "HashValue": f"0,100,{H1},0.000\n10,95,{H2},1.000"}
    csv_out = io.StringIO()
    assert write_vpdq_csv([entry], csv_out) == 1
    assert csv_out.getvalue().splitlines()[1] == f"7,0,100,{H1},0.000,1,"
    # Compiled, the catalog's video matches a scan of the same frames; removed, it is gone.
    matcher = Matcher.compile(catalog)
    assert len(matcher._video) == 2
    catalog.remove("vics")
    assert len(Matcher.compile(catalog)._video) == 0


def test_the_rule_quality_dedupe_p_and_q() -> None:
    rows = [
        (1, 1, 0, 0.0, 100, bytes.fromhex(H1)),
        (1, 1, 1, 1.0, 100, bytes.fromhex(H1)),  # duplicate: one row, times 0..1
        (1, 1, 2, 2.0, 100, bytes.fromhex(H2)),
        (1, 1, 3, 3.0, 10, bytes.fromhex(H3)),  # below quality 50: never matched
    ]
    index = VideoIndex.build(rows)
    assert len(index) == 2
    query = [VPDQFrame(0, 0.0, 100, H1), VPDQFrame(1, 1.0, 100, H3)]
    assert index.search(query) == []  # 1 of 2 frames: 50% < 80%
    (hit,) = index.search(query, VideoRule(query_match_percent=50))
    assert hit.segment["match_start"] == 0.0 and hit.segment["match_end"] == 1.0
    assert hit.segment["compared_match_percent"] == 50.0 and hit.distance == 0
    assert index.search(query, VideoRule(query_match_percent=50, compared_match_percent=60)) == []
    low = [VPDQFrame(0, 0.0, 20, H1)]
    assert index.search(low) == []  # scanned frames below quality 50 are dropped too
