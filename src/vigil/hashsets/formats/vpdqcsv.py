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
from collections.abc import Iterable, Iterator
from typing import Any, BinaryIO, TextIO

from vigil.errors import HashListError
from vigil.fingerprint.fingerprints import VPDQFrame
from vigil.hashsets.entry import Entry, ParseReport
from vigil.hashsets.formats import clean_hash, kind_from_name, text_stream
from vigil.hashsets.formats.csvlist import CATEGORY_NAMES, sniff_delimiter, split_header
from vigil.hashsets.listformat import Detector, ListFormat, Sample, plain
from vigil.kinds import EXACT_NAMES, MD5, PDQ

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
            if kind in EXACT_NAMES:
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
    pdq = clean_hash(row[role["pdq"]], PDQ.name)
    index = int(row[role["frame"]]) if "frame" in role else position
    quality = int(row[role["quality"]]) if "quality" in role else 100
    if not 0 <= quality <= 100:
        raise ValueError(f"quality {quality} is not 0-100")
    timestamp = float(row[role["time"]]) if "time" in role else float(index)
    return VPDQFrame(index, timestamp, quality, pdq)


# -- writing -------------------------------------------------------------------------------------

# The whole video's MD5 (when known) in the last column.
VPDQ_CSV_COLUMNS = ("video_id", "frame", "quality", "pdq", "timestamp", "category", MD5.name)


def write_vpdq_csv(entries: Iterable[Entry], out: TextIO) -> int:
    """Write the videos among entries as vPDQ CSV (one row per frame); return the videos written."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(VPDQ_CSV_COLUMNS)
    count = 0
    for number, entry in enumerate(entries, start=1):
        if not entry.vpdq:
            continue
        video_id = entry.id or f"video-{number}"
        for f in entry.vpdq:
            writer.writerow(
                (
                    video_id,
                    f.index,
                    f.quality,
                    f.hash,
                    f"{f.timestamp:.3f}",
                    entry.category or "",
                    entry.hashes.get(MD5.name, ""),
                )
            )
        count += 1
    return count


# -- declaration ---------------------------------------------------------------------------------


def claims(sample: Sample) -> bool:
    """A header row naming a video id and a PDQ column."""
    return is_header(sample.cells)


_ROWS = (
    "clip-1,0,100,f8f8f0cce0f4e84d0e370a22028f67f0b36e2ed596623e1d33e6339c4e9c9b22,0.000,1",
    "clip-1,1,98,b0a10efd71cc3f429413d48d0ffffe12e34e0e17ada952a9d29684210aa9e5af,1.000,1",
    "clip-2,0,90,b0a10efd71cc3f429413d48d0ffffe12e34e0e17ada952a9d29684210aa9e5af,0.000,2",
)
_HEADER = "video_id,frame,quality,pdq,timestamp,category"

LIST_FORMATS = (
    ListFormat(
        name="vpdq-csv",
        parse=plain(parse),
        detect=(Detector(500, claims),),
        example="".join(f"{line}\n" for line in (_HEADER, *_ROWS)),
        malformed_example="".join(
            f"{line}\n" for line in (_HEADER, _ROWS[0], "clip-1,2,100,xyz,2.000,1", *_ROWS[1:])
        ),
        export=write_vpdq_csv,
        categories=True,
    ),
)
