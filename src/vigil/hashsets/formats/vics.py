"""Project VIC "VICS" JSON (OData) 1.x and 2.0: flat Media lists and Cases holding Media.

Parsed from ijson's low-level events, so keys may come in any order (the odata context may
follow `value`) and a Media list may sit at the top (`value`) or inside each Case
(`value[].Media`), with memory bounded by one Media record at a time.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO, TextIO

import ijson

from vigil.errors import HashListError
from vigil.fingerprint.fingerprints import VPDQFrame
from vigil.hashsets.entry import Entry, ParseReport
from vigil.hashsets.formats import clean_hash, kind_from_name
from vigil.hashsets.formats.vpdqlist import parse_frame
from vigil.hashsets.listformat import Detector, ListFormat, Sample, plain
from vigil.kinds import MD5, PDQ, SHA1, SINGLE

if TYPE_CHECKING:
    import numpy as np

try:  # The C backend is ~10x faster; fall back to whatever ijson picked.
    _IJSON: Any = ijson.get_backend("yajl2_c")
except ImportError:  # pragma: no cover - depends on the installed wheel
    _IJSON = ijson

_HEAD_BYTES = 64 * 1024
# Deepest nesting of arrays and objects read (a VICS record nests 5 or 6 levels). Deeper JSON is
# refused before ijson sees it: its path tracking costs memory quadratic in the depth (a 100 KB
# file of 100,000 '[' takes tens of GB), and repr() of such values overflows the stack.
MAX_DEPTH = 64
CONTEXT_KEYS = ("@odata.context", "odata.metadata")
# Key under which export writes a non-numeric original id next to the generated MediaID.
SOURCE_ID_KEY = "MediaID@vigil.sourceId"

_CONTEXT = re.compile(
    r"DataModels/(?P<version>\d+(?:\.\d+)*)\.xml(?:/(?P<scheme>[A-Za-z]+)/)?[^#]*(?:#(?P<payload>\w+))?"
)
# Media fields VICS writes as the strings "true"/"false".
FLAG_FIELDS = frozenset(
    {
        "IsPrecategorized",
        "VictimIdentified",
        "OffenderIdentified",
        "IsDistributed",
        "IsSuspected",
        "SelfGenerated",
        "Deleted",
        "Unallocated",
    }
)
# Media fields that become hashes, id or category, or are too bulky to keep (Exifs).
_NOT_META = frozenset({"MediaID", "Category", "MD5", "SHA1", "AlternativeHashes", "Exifs"})
# Hash kinds with a field of their own in a Media record; every other kind is written (and read
# back) as AlternativeHashes under its upper-case name.
_TOP_HASHES = (("MD5", MD5.name), ("SHA1", SHA1.name))
# AlternativeHashes names read as vPDQ (case and punctuation ignored): "vPDQ", "VideoPDQ", ...
VPDQ_HASH_NAMES = frozenset({"vpdq", "videopdq", "vpdqhash"})
_NOT_ALNUM = re.compile(r"[^a-z0-9]")
_CASE_META = (("CaseID", "case_id"), ("CaseNumber", "case_number"))
_CONTAINERS = ("start_map", "start_array")
_NO_CASE: dict[str, Any] = {}
_FLAGS: dict[str, bool] = {"true": True, "false": False, "True": True, "False": False}
_FLAGS.update({"TRUE": True, "FALSE": False})
_SKIP, _FLAG, _FILES, _PLAIN = range(4)
_ROLES: dict[str, int] = {}


@dataclass
class _State:
    record: int = 0


def parse(stream: BinaryIO, report: ParseReport) -> Iterator[Entry]:
    """Entries of a VICS JSON document, one Media at a time."""
    head = stream.read(_HEAD_BYTES)
    nesting = _Nesting()
    nesting.check(head)
    source = _Rejoined(head, stream, nesting)
    context = _flat_media_context(head)
    try:
        if context is not None:
            # The common shape, proven by the head: ijson's C code builds each Media, ~1.4x faster.
            parse_context(context, report.info)
            yield from _flat_media(source, report)
        else:
            yield from _document(iter(_IJSON.basic_parse(source, use_float=True)), report)
    except ijson.JSONError as exc:
        raise HashListError(f"invalid or truncated VICS JSON: {_describe(exc)}") from exc
    except UnicodeDecodeError as exc:  # yajl hands ijson the raw bytes of each string
        raise HashListError(f"VICS JSON with a string that is not UTF-8: {exc}") from exc


def _describe(exc: Exception) -> str:
    """ijson's message on one line (the C backend gives bytes with a drawn pointer)."""
    message = exc.args[0] if exc.args else exc
    if isinstance(message, bytes):
        message = message.decode("utf-8", errors="replace")
    return " ".join(str(message).split())


def parse_context(context: str, info: dict[str, Any]) -> None:
    """Put the odata context and what it says (version, US/UK/CUSTOM, Media/Cases) into info."""
    info["odata_context"] = context
    found = _CONTEXT.search(context)
    if found is None:
        return
    info["version"] = found["version"]
    if found["scheme"]:
        info["scheme"] = found["scheme"].upper()
    if found["payload"]:
        info["payload"] = found["payload"]


def _flat_media_context(head: bytes) -> str | None:
    """The odata context when the head shows a #Media context first, then the `value` list."""
    context = None
    try:
        for prefix, event, value in _IJSON.parse(io.BytesIO(head)):
            if prefix == "" and event == "map_key" and value == "value":
                break
            if prefix in CONTEXT_KEYS and event == "string" and context is None:
                context = value
            elif prefix == "" and event not in ("start_map", "map_key"):
                return None
        else:
            return None
    except (ijson.JSONError, UnicodeDecodeError):
        return None
    found = _CONTEXT.search(context) if context else None
    return context if found is not None and found["payload"] == "Media" else None


def _flat_media(source: _Rejoined, report: ParseReport) -> Iterator[Entry]:
    state = _State()
    for media in _IJSON.items(source, "value.item", use_float=True):
        if type(media) is dict:
            entry = _entry(media, _NO_CASE, report, state)
            if entry is not None:
                yield entry
        else:
            state.record += 1
            report.problem(None, f"record {state.record}: not an object", record=state.record)


class _Rejoined:
    """A read-only binary stream: bytes already read from the start (and checked), then the rest,
    its nesting checked as it is read."""

    def __init__(self, head: bytes, rest: BinaryIO, nesting: _Nesting) -> None:
        self._head = head
        self._rest = rest
        self._nesting = nesting

    def read(self, size: int = -1) -> bytes:
        if not self._head:
            data = self._rest.read(size)
            self._nesting.check(data)
            return data
        if size is None or size < 0:
            rest = self._rest.read()
            self._nesting.check(rest)
            data, self._head = self._head + rest, b""
            return data
        data, self._head = self._head[:size], self._head[size:]
        return data


_NESTING_PIECE = 16 * 1024


class _Nesting:
    """The nesting depth of JSON read chunk by chunk; HashListError beyond MAX_DEPTH.

    Vectorised (NumPy, ~70 MB/s here) rather than byte by byte: quotes not escaped by an odd run
    of backslashes open and close strings, and brackets outside strings count.
    """

    def __init__(self) -> None:
        self.depth = 0
        self.in_string = False
        self.backslashes = 0  # backslashes at the end of the previous chunk

    def check(self, data: bytes) -> None:
        """Follow `data`, the next bytes of the document."""
        import numpy as np  # here: `vigil hashset list` loads this module without reading lists

        # In pieces, so that the temporary arrays stay small (memory is bounded per record).
        for start in range(0, len(data), _NESTING_PIECE):
            self._check(
                np.frombuffer(data, np.uint8, min(_NESTING_PIECE, len(data) - start), start)
            )

    def _check(self, a: np.ndarray) -> None:
        import numpy as np

        n = len(a)
        # Index of the last byte at or before each position that is not a backslash (-1: none).
        positions = np.arange(n, dtype=np.int32)
        last_other = np.maximum.accumulate(np.where(a == 0x5C, np.int32(-1), positions))
        quotes = np.flatnonzero(a == 0x22)
        toggles = np.zeros(n, dtype=np.int32)
        if quotes.size:
            before = np.maximum(quotes - 1, 0)
            run = np.where(quotes > 0, quotes - 1 - last_other[before], 0)
            run += np.where((quotes == 0) | (last_other[before] < 0), self.backslashes, 0)
            toggles[quotes[(run & 1) == 0]] = 1
        inside = ((np.cumsum(toggles, dtype=np.int32) + self.in_string) & 1).astype(bool)
        step = ((a == 0x5B) | (a == 0x7B)).astype(np.int32) - ((a == 0x5D) | (a == 0x7D))
        step[inside] = 0
        levels = np.cumsum(step, dtype=np.int32) + self.depth
        if int(levels.max()) > MAX_DEPTH:
            raise HashListError(f"JSON nested deeper than {MAX_DEPTH} levels: not a VICS list")
        self.depth = int(levels[-1])
        self.in_string = bool(inside[-1])
        tail = n - 1 - int(last_other[-1])
        self.backslashes = tail + (self.backslashes if last_other[-1] < 0 else 0)


def _document(events: Iterator[tuple[str, Any]], report: ParseReport) -> Iterator[Entry]:
    state = _State()
    event, value = next(events, ("eof", None))
    if event == "start_array":  # A bare list of Media (or Cases) without the OData envelope.
        yield from _records(events, report, state)
    elif event == "start_map":
        seen_value = False
        for event, value in events:
            if event == "end_map":
                break
            key = value
            event, value = next(events)
            if key == "value" and event == "start_array":
                seen_value = True
                yield from _records(events, report, state)
            elif key in CONTEXT_KEYS and isinstance(value, str):
                parse_context(value, report.info)
            elif event in _CONTAINERS:
                _build(events, event)
        if not seen_value:
            raise HashListError("JSON without a VICS 'value' list of Media or Cases")
    elif event == "eof":
        raise HashListError("empty JSON document")
    else:
        raise HashListError("JSON is not a VICS document (no object or list at the top)")
    # Anything after the document (a second document, garbage) makes ijson raise here.
    for _ in events:
        pass


def _records(
    events: Iterator[tuple[str, Any]], report: ParseReport, state: _State
) -> Iterator[Entry]:
    """The items of a `value` list: Media, or Cases whose `Media` list holds them."""
    for event, _value in events:
        if event == "end_array":
            return
        if event == "start_map":
            yield from _record(events, report, state)
        else:
            state.record += 1
            report.problem(None, f"record {state.record}: not an object", record=state.record)
            if event in _CONTAINERS:
                _build(events, event)


def _record(
    events: Iterator[tuple[str, Any]], report: ParseReport, state: _State
) -> Iterator[Entry]:
    """One item of `value`: a Media (built whole), or a Case whose Media are streamed."""
    # The same loop as _build, inlined because it runs for every Media of a flat list.
    root: dict[str, Any] = {}
    stack: list[Any] = [root]
    key = None
    is_case = False
    for event, value in events:
        if event == "map_key":
            key = value
            continue
        if event == "end_map" or event == "end_array":
            stack.pop()
            if not stack:
                break
            continue
        top = stack[-1]
        if event == "start_map":
            value = {}
        elif event == "start_array":
            if top is root and key == "Media":
                is_case = True
                yield from _case_media(events, report, state, root)
                continue
            value = []
        if type(top) is dict:
            top[key] = value
        else:
            top.append(value)
        if event == "start_map" or event == "start_array":
            stack.append(value)
    if is_case:
        _note_case(root, report.info)
    else:
        entry = _entry(root, _NO_CASE, report, state)
        if entry is not None:
            yield entry


def _case_media(
    events: Iterator[tuple[str, Any]], report: ParseReport, state: _State, case: dict[str, Any]
) -> Iterator[Entry]:
    """The Media list of a Case; the case's id and number (when they came first) go to meta."""
    context = {meta: case[k] for k, meta in _CASE_META if isinstance(case.get(k), str | int)}
    for event, _value in events:
        if event == "end_array":
            return
        if event == "start_map":
            entry = _entry(_build(events, event), context, report, state)
            if entry is not None:
                yield entry
        else:
            state.record += 1
            report.problem(
                None, f"record {state.record}: Media is not an object", record=state.record
            )
            if event in _CONTAINERS:
                _build(events, event)


def _build(events: Iterator[tuple[str, Any]], first: str) -> Any:
    """The object or list whose start event was `first`, built from the following events."""
    root: Any = {} if first == "start_map" else []
    stack = [root]
    key = None
    for event, value in events:
        if event == "map_key":
            key = value
            continue
        if event == "end_map" or event == "end_array":
            stack.pop()
            if not stack:
                return root
            continue
        top = stack[-1]
        if event == "start_map":
            value = {}
        elif event == "start_array":
            value = []
        if type(top) is dict:
            top[key] = value
        else:
            top.append(value)
        if event == "start_map" or event == "start_array":
            stack.append(value)
    raise HashListError("VICS JSON ends inside a record")


def _entry(
    media: dict[str, Any], case: dict[str, Any], report: ParseReport, state: _State
) -> Entry | None:
    state.record += 1
    hashes: dict[str, str] = {}
    errors: list[str] = []
    for key, kind in _TOP_HASHES:
        value = media.get(key)
        if value:
            try:
                hashes[kind] = clean_hash(value, kind)
            except ValueError as exc:
                errors.append(f"{key}: {exc}")
    meta: dict[str, Any] = {}
    frames: list[VPDQFrame] = []
    alternatives = media.get("AlternativeHashes")
    if alternatives and isinstance(alternatives, list):
        others = _alternative_hashes(alternatives, hashes, errors, frames)
        if others:
            meta["alternative_hashes"] = others
    media_id = media.get(SOURCE_ID_KEY, media.get("MediaID"))
    if not (hashes or frames) or errors:
        record = state.record
        where = f"record {record}" if media_id is None else f"record {record} (MediaID {media_id})"
        if not (hashes or frames):
            reason = "; ".join(errors) if errors else "no MD5, SHA1 or usable AlternativeHashes"
            report.problem(None, f"{where}: skipped, {reason}", record=record)
            return None
        report.problem(None, f"{where}: {'; '.join(errors)} (other hashes kept)", record=record)
    for key, value in media.items():
        role = _ROLES.get(key)
        if role is None:
            role = _role(key)
        if role == _SKIP or value is None or value == "" or value == []:
            continue
        if role == _FLAG:
            value = _FLAGS.get(value, value) if type(value) is str else value
        elif role == _FILES and type(value) is list:
            value = [_files_flags(f) for f in value]
        meta[key] = value
    if case:
        meta.update(case)
    category = media.get("Category")
    if category is not None and type(category) is not int:
        category = _category(category)
    return Entry(
        hashes=hashes,
        id=None if media_id is None else _text(media_id),
        category=None if category is None else str(category),
        meta=meta,
        vpdq=frames,
    )


def _role(key: str) -> int:
    """How a Media key is kept (memoised: real lists use a few dozen distinct keys)."""
    if key in _NOT_META or "." in key or "@" in key:
        role = _SKIP
    elif key in FLAG_FIELDS:
        role = _FLAG
    elif key == "MediaFiles":
        role = _FILES
    else:
        role = _PLAIN
    if len(_ROLES) < 10_000:
        _ROLES[key] = role
    return role


def _alternative_hashes(
    alternatives: list[Any],
    hashes: dict[str, str],
    errors: list[str],
    frames: list[VPDQFrame],
) -> list[dict[str, Any]]:
    """Take SHA-256, PDQ (and MD5/SHA-1 missing at the top) into hashes and vPDQ into frames;
    return the rest."""
    others: list[dict[str, Any]] = []
    for item in alternatives:
        if not isinstance(item, dict):
            continue
        name = item.get("HashName")
        value = item.get("HashValue")
        if isinstance(name, str) and _NOT_ALNUM.sub("", name.lower()) in VPDQ_HASH_NAMES:
            if not frames:
                try:
                    frames.extend(vpdq_frames(value))
                except ValueError as exc:
                    errors.append(f"AlternativeHashes {name}: {exc}")
            continue
        kind = kind_from_name(name) if isinstance(name, str) else None
        if kind is None or kind in hashes:
            if kind is None:
                others.append({k: v for k, v in item.items() if k != "MD5"})
            continue
        try:
            hashes[kind] = clean_hash(value, kind)
        except ValueError as exc:
            errors.append(f"AlternativeHashes {name}: {exc}")
    return others


def vpdq_frames(value: Any) -> list[VPDQFrame]:
    """Frames of a vPDQ HashValue: `frame,quality,pdq,timestamp` records separated by newlines
    or semicolons, or a JSON array of such strings or of {frame, quality, pdq, timestamp}."""
    items: list[Any]
    if isinstance(value, str):
        items = [part for part in re.split(r"[;\n\r]+", value) if part.strip()]
    elif isinstance(value, list):
        items = value
    else:
        raise ValueError(f"vPDQ value is neither text nor a list: {type(value).__name__}")
    out: list[VPDQFrame] = []
    for number, item in enumerate(items):
        if isinstance(item, dict):
            try:
                index = int(item.get("frame", number))
                frame: VPDQFrame | None = VPDQFrame(
                    index,
                    float(item.get("timestamp", index)),
                    int(item.get("quality", 100)),
                    clean_hash(item.get("pdq", item.get("hash")), PDQ.name),
                )
            except (TypeError, ValueError):
                frame = None
            if frame is not None and not 0 <= frame.quality <= 100:
                frame = None
        else:
            frame = parse_frame(str(item))
        if frame is None:
            raise ValueError(f"frame {number} is not 'frame,quality,pdq,timestamp': {item!r:.80}")
        out.append(frame)
    if not out:
        raise ValueError("no frames")
    return out


def _note_case(fields: dict[str, Any], info: dict[str, Any]) -> None:
    case = {k: v for k, v in fields.items() if not isinstance(v, dict | list) and "." not in k}
    info.setdefault("cases", []).append(case)
    name = case.get("SourceApplicationName")
    if name and "source_application" not in info:
        version = case.get("SourceApplicationVersion")
        info["source_application"] = f"{name} {version}" if version else str(name)


def _flag(value: str) -> bool | str:
    return _FLAGS.get(value.strip().lower(), value)


def _files_flags(item: Any) -> Any:
    if not isinstance(item, dict):
        return item
    return {
        k: _flag(v) if k in FLAG_FIELDS and isinstance(v, str) else v
        for k, v in item.items()
        if "." not in k and "@" not in k
    }


def _category(value: Any) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    text = str(value).strip()
    return text or None


def _text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


# -- writing -------------------------------------------------------------------------------------
# VICS is how found material goes back to police tools: `MediaFiles` (taken from
# `entry.meta['MediaFiles']`) says where each copy was found.

VICS_CONTEXT = (
    "http://github.com/VICSDATAMODEL/ProjectVic/DataModels/2.0.xml/{scheme}/$metadata#Media"
)
# VICS Media fields copied from an entry's meta when present (flags written as JSON booleans).
MEDIA_FIELDS = (
    "MediaSize",
    "DateUpdated",
    "MimeType",
    "RelativeFilePath",
    "IsPrecategorized",
    "PrecategorizationSource",
    "VictimIdentified",
    "OffenderIdentified",
    "IsDistributed",
    "IsSuspected",
    "SelfGenerated",
    "Series",
    "Tags",
    "Comments",
    "PhotoDNA",
    "Segments",
)
_ALTERNATIVE_NAMES = tuple(
    (k.name, k.name.upper()) for k in SINGLE if k.name not in {kind for _, kind in _TOP_HASHES}
)
# A video's vPDQ in AlternativeHashes: HashName "vPDQ", HashValue the reference tool's lines
# (`frame,quality,pdq,timestamp`) joined by newlines.
VPDQ_HASH_NAME = "vPDQ"


def write_vics(entries: Iterable[Entry], out: TextIO, *, context: str = "US") -> int:
    """Write entries as a VICS 2.0 Media list (`context`: US, UK or CUSTOM); return the count.

    MediaID is the entry's id when it is a number; otherwise a number is made up (one above the
    largest seen so far) and the original id is kept next to it as `MediaID@vigil.sourceId`.
    """
    out.write('{\n  "@odata.context": ')
    out.write(json.dumps(VICS_CONTEXT.format(scheme=context.upper())))
    out.write(',\n  "value": [')
    count = 0
    next_id = 1
    for entry in entries:
        media, next_id = _media(entry, next_id)
        out.write(",\n    " if count else "\n    ")
        out.write(json.dumps(media, ensure_ascii=False, default=str))
        count += 1
    out.write("\n  ]\n}\n" if count else "]\n}\n")
    return count


def _media(entry: Entry, next_id: int) -> tuple[dict[str, Any], int]:
    """One entry as a VICS Media record, and the next free made-up MediaID."""
    media: dict[str, Any] = {}
    if entry.id is not None and entry.id.isascii() and entry.id.isdigit():
        media["MediaID"] = int(entry.id)
        next_id = max(next_id, media["MediaID"] + 1)
    else:
        media["MediaID"] = next_id
        next_id += 1
        if entry.id is not None:
            media[SOURCE_ID_KEY] = entry.id
    category = entry.category
    if category is not None and category.isascii() and category.isdigit():
        media["Category"] = int(category)
    else:
        media["Category"] = category
    md5 = entry.hashes.get(MD5.name)
    for key, kind in _TOP_HASHES:
        if entry.hashes.get(kind):
            media[key] = entry.hashes[kind].upper()
    meta = entry.meta
    for name in MEDIA_FIELDS:
        value = meta.get(name)
        if value is not None and value != "":
            media[name] = value if name not in FLAG_FIELDS else _written_flag(value)
    alternatives: list[dict[str, Any]] = []
    for kind, hash_name in _ALTERNATIVE_NAMES:
        if entry.hashes.get(kind):
            alternative = {"HashName": hash_name, "HashValue": entry.hashes[kind]}
            alternatives.append({"MD5": md5.upper(), **alternative} if md5 else alternative)
    if entry.vpdq:
        # The reference lines are vigil.fingerprint.video's, loaded only for a video.
        from vigil.fingerprint.video import reference_lines

        value = "\n".join(reference_lines(entry.vpdq))
        alternative = {"HashName": VPDQ_HASH_NAME, "HashValue": value}
        alternatives.append({"MD5": md5.upper(), **alternative} if md5 else alternative)
    for other in meta.get("alternative_hashes") or ():
        if isinstance(other, dict):
            alternatives.append({"MD5": md5.upper(), **other} if md5 else dict(other))
    if alternatives:
        media["AlternativeHashes"] = alternatives
    files = meta.get("MediaFiles")
    if isinstance(files, list) and files:
        media["MediaFiles"] = files
    return media, next_id


def _written_flag(value: Any) -> Any:
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return value


# -- declaration ---------------------------------------------------------------------------------

_VICS_MARK = re.compile(rb'"(?:odata\.metadata|@odata\.context|MediaID|MD5|SHA1|Media)"')


def claims(sample: Sample) -> bool:
    """Every JSON document is VICS's to read; one without a VICS key is refused here."""
    if sample.start not in (b"{", b"["):
        return False
    if _VICS_MARK.search(sample.head) is None:
        raise HashListError(f"{sample.name}: JSON, but not a VICS (Project VIC) hash list")
    return True


_EXAMPLE_MEDIA = (
    '{"MediaID": 1, "Category": 1, "MD5": "2C1743A391305FBF367DF8E4F069F9F9", '
    '"SHA1": "BE76331B95DFC399CD776D2FC68021E0DB03CC4F"}',
    '{"MediaID": 2, "Category": 2, "MD5": "FD9AB41E47A9EF4F6477A8A000BF404F"}',
)
_EXAMPLE_CONTEXT = '"odata.metadata": "http://github.com/ICMEC/ProjectVic/DataModels/1.3.xml#Media"'

LIST_FORMATS = (
    ListFormat(
        name="vics",
        parse=plain(parse),
        detect=(Detector(100, claims),),
        example="{" + _EXAMPLE_CONTEXT + ', "value": [' + ", ".join(_EXAMPLE_MEDIA) + "]}",
        malformed_example="{"
        + _EXAMPLE_CONTEXT
        + ', "value": ['
        + ", ".join((*_EXAMPLE_MEDIA, '{"MediaID": 3, "MD5": "xyz"}'))
        + "]}",
        export=write_vics,
        categories=True,
    ),
)
