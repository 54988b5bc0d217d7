"""vPDQ lists as CSV: one row per frame, a video id column grouping the rows into videos.

    video_id,frame,quality,pdq,timestamp,category
    clip-1,0,100,e271...,0.000,1
    clip-1,30,98,c0f1...,1.000,1

Columns are named in the header (case and punctuation ignored): the video id (`video_id`,
`videoid`, `video`, `media_id`), `pdq` (or `pdq_hash`, `hash`), and optionally `frame`
(`frame_number`), `quality`, `timestamp` (`time`, `seconds`), `category`, `md5`/`sha1`/`sha256`
of the whole video, and anything else, kept as the video's metadata (from its first row). Rows of
one video need not be adjacent; frames are sorted by frame number. Without a frame column the
rows' order numbers the frames; without quality, 100 is assumed (every frame is then matched).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from typing import Any, BinaryIO

from vigil.errors import HashListError
from vigil.fingerprint.fingerprints import VPDQFrame
from vigil.hashsets.entry import Entry, ParseReport
from vigil.hashsets.formats import clean_hash, kind_from_name, text_stream
from vigil.hashsets.formats.csvlist import CATEGORY_NAMES, sniff_delimiter, split_header

_NOT_ALNUM = re.compile(r"[^a-z0-9]")
VIDEO_ID_NAMES = frozenset({"videoid", "video", "mediaid", "videoname"})
_FRAME = frozenset({"frame", "framenumber", "frameno", "frameindex"})
_QUALITY = frozenset({"quality", "pdqquality"})
_TIME = frozenset({"timestamp", "time", "seconds", "timestampseconds"})
_PDQ = frozenset({"pdq", "pdqhash", "hash", "vpdq"})


def _key(name: str) -> str:
    return _NOT_ALNUM.sub("", name.lower())


def is_header(cells: list[str]) -> bool:
    """True for a header naming a video id column and a PDQ column."""
    keys = {_key(c) for c in cells}
    return bool(keys & VIDEO_ID_NAMES) and bool(keys & _PDQ)


def parse(stream: BinaryIO, report: ParseReport) -> Iterator[Entry]:
    """One entry per video id, with its frames."""
    text = text_stream(stream)
    header = ""
    offset = 0
    for header in text:
        offset += 1
        if header.strip():
            break
    delimiter = sniff_delimiter(header.rstrip("\r\n"))
    names = split_header(header.rstrip("\r\n"), delimiter)
    if not is_header(names):
        raise HashListError(f"vPDQ CSV header needs a video id and a pdq column: {names[:12]}")
    role: dict[str, int] = {}
    meta_cols: list[tuple[int, str]] = []
    whole: list[tuple[int, str]] = []
    for index, name in enumerate(names):
        key = _key(name)
        for label, keys in (
            ("video", VIDEO_ID_NAMES),
            ("pdq", _PDQ),
            ("frame", _FRAME),
            ("quality", _QUALITY),
            ("time", _TIME),
            ("category", CATEGORY_NAMES),
        ):
            if key in keys and label not in role:
                role[label] = index
                break
        else:
            kind = kind_from_name(name)
            if kind in ("md5", "sha1", "sha256"):
                whole.append((index, kind))
            elif name:
                meta_cols.append((index, name))
    videos: dict[str, dict[str, Any]] = {}
    reader = csv.reader(text, delimiter=delimiter)
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:  # a cell over the csv module's field limit (128 KiB)
            report.problem(reader.line_num + offset, f"unreadable CSV row: {exc}")
            continue
        number = reader.line_num + offset
        if not row or (len(row) == 1 and not row[0].strip()):
            continue
        if len(row) != len(names):
            report.problem(number, f"{len(row)} columns, expected {len(names)}")
            continue
        video_id = row[role["video"]].strip()
        if not video_id:
            report.problem(number, "no video id")
            continue
        try:
            frame = _frame(row, role, len(videos.get(video_id, {}).get("frames", ())))
        except ValueError as exc:
            report.problem(number, str(exc))
            continue
        video = videos.get(video_id)
        if video is None:
            video = videos[video_id] = {
                "frames": [],
                "hashes": {},
                "category": (row[role["category"]].strip() or None) if "category" in role else None,
                "meta": {name: row[i] for i, name in meta_cols if row[i] != ""},
            }
        video["frames"].append(frame)
        for index, kind in whole:
            value = row[index].strip()
            if value and kind not in video["hashes"]:
                try:
                    video["hashes"][kind] = clean_hash(value, kind)
                except ValueError as exc:
                    report.problem(number, f"{exc} (frame kept)")
    for video_id, video in videos.items():
        frames = sorted(video["frames"], key=lambda f: f.index)
        yield Entry(
            hashes=video["hashes"],
            id=video_id,
            category=video["category"],
            meta=video["meta"],
            vpdq=frames,
        )


def _frame(row: list[str], role: dict[str, int], position: int) -> VPDQFrame:
    pdq = clean_hash(row[role["pdq"]], "pdq")
    index = int(row[role["frame"]]) if "frame" in role else position
    quality = int(row[role["quality"]]) if "quality" in role else 100
    if not 0 <= quality <= 100:
        raise ValueError(f"quality {quality} is not 0-100")
    timestamp = float(row[role["time"]]) if "time" in role else float(index)
    return VPDQFrame(index, timestamp, quality, pdq)
