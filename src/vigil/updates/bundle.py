"""Catalog bundles: a whole catalog (full) or the change between two versions (delta), as bytes.

A bundle file is `MAGIC`, a format byte, a kind byte (`F` full, `D` delta), then one zstd frame
holding a MessagePack stream: a header map, then per set a section map followed by its entries.
An entry is `[ext_id, category, meta, [[kind code, value], ...], [[frame, timestamp, quality,
pdq], ...]]` with dict keys sorted and hashes and frames in order, so the same catalog gives the
same bytes, and an entry's digest (SHA-256 of its packed form, 16 bytes) names it across catalogs
whose internal ids differ. A delta removes entries by digest and adds whole entries; each changed
set carries the digest of its resulting content, checked after applying, so a delta applied to
the wrong base fails instead of leaving a catalog that differs from the server's.

`apply` changes a catalog in one transaction: it holds the old version or the new, never a mix.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import msgpack
import zstandard
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.engine import Connection

from vigil.catalog import schema
from vigil.catalog.digest import DIGEST_BYTES, content_digest, entry_digest, pack
from vigil.catalog.digest import canonical as _canonical
from vigil.catalog.store import Catalog, delete_entries, iter_packed, iter_rows
from vigil.errors import VigilError
from vigil.kinds import by_code

MAGIC = b"VIGILCB"
FORMAT = 1
FULL, DELTA = b"F", b"D"
ZSTD_LEVEL = 3
# The catalog's state row that records which published version it holds (agent side).
VERSION_KEY = "catalog_version"
SET_FIELDS = (
    "name",
    "format",
    "source",
    "version",
    "imported_at",
    "known_good",
    "content_sha256",
    "entries",
    "counts",
    "info",
)
# Set sections: a set the catalog lacks (or, in a full bundle, every set), or one that changed.
ADD, CHANGE = "add", "change"


class BundleError(VigilError):
    """A bundle that cannot be read or does not fit the catalog it is applied to."""


@dataclass
class SetContent:
    """One set: its row (without the local id) and its entries, each packed canonically."""

    info: dict[str, Any]
    entries: list[bytes]

    def digests(self) -> list[bytes]:
        """Each entry's digest, in order."""
        return [entry_digest(e) for e in self.entries]


@dataclass
class SetSection:
    """What a bundle says about one set."""

    op: str
    info: dict[str, Any]
    entries: list[bytes]
    removed: list[bytes] = field(default_factory=list)
    digest: bytes = b""


@dataclass
class Bundle:
    """A parsed bundle: full (`base` None) or a delta from version `base` to `version`."""

    version: int
    sets: list[SetSection]
    base: int | None = None
    removed_sets: list[str] = field(default_factory=list)

    @property
    def is_delta(self) -> bool:
        """A change to version `base`, not a whole catalog."""
        return self.base is not None


def _pack(value: Any) -> bytes:
    return pack(value)


# -- reading a catalog -----------------------------------------------------------------------


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else (value or {})


def iter_set_entries(
    conn: Connection, set_id: int | None = None
) -> Iterator[tuple[int, int, bytes]]:
    """(set_id, entry_id, packed entry) of every entry (of one set), by set then id."""
    return iter_packed(conn, set_id)


def set_info(row: Any) -> dict[str, Any]:
    m = row._mapping
    info = {k: m[k] for k in SET_FIELDS}
    info["known_good"] = bool(info["known_good"])
    info["counts"] = _canonical(_json(info["counts"]))
    info["info"] = _canonical(_json(info["info"]))
    return info


def read_catalog(conn: Connection) -> dict[str, SetContent]:
    """Every set of the catalog (read through `conn`, e.g. a `Catalog.snapshot()`), by name."""
    by_id: dict[int, SetContent] = {}
    names: dict[int, str] = {}
    for row in conn.execute(select(schema.hashsets).order_by(schema.hashsets.c.name)):
        by_id[row.id] = SetContent(set_info(row), [])
        names[row.id] = row.name
    for sid, _eid, packed in iter_set_entries(conn):
        by_id[sid].entries.append(packed)
    return {names[i]: c for i, c in sorted(by_id.items(), key=lambda kv: names[kv[0]])}


# -- writing ---------------------------------------------------------------------------------


def write_bundle(kind: bytes, header: dict[str, Any], sections: list[SetSection]) -> bytes:
    out = io.BytesIO()
    out.write(MAGIC + bytes([FORMAT]) + kind)
    cctx = zstandard.ZstdCompressor(level=ZSTD_LEVEL, write_content_size=False)
    with cctx.stream_writer(out, closefd=False) as z:
        z.write(_pack({**header, "sections": len(sections)}))
        for s in sections:
            z.write(
                _pack(
                    {
                        "op": s.op,
                        "info": _canonical(s.info),
                        "removed": s.removed,
                        "digest": s.digest,
                        "count": len(s.entries),
                    }
                )
            )
            for packed in s.entries:
                z.write(packed)
    return out.getvalue()


def full_bundle(version: int, content: dict[str, SetContent]) -> bytes:
    """The whole catalog `content` as published version `version`."""
    sections = [
        SetSection(ADD, c.info, c.entries, digest=content_digest(c.digests()))
        for _, c in sorted(content.items())
    ]
    return write_bundle(FULL, {"version": version}, sections)


def delta_bundle(
    base: int, old: dict[str, SetContent], version: int, new: dict[str, SetContent]
) -> bytes:
    """What turns version `base` (`old`) into version `version` (`new`)."""
    sections: list[SetSection] = []
    for name, c in sorted(new.items()):
        prev = old.get(name)
        new_digests = c.digests()
        digest = content_digest(new_digests)
        if prev is None:
            sections.append(SetSection(ADD, c.info, c.entries, digest=digest))
            continue
        old_digests = prev.digests()
        if prev.info == c.info and content_digest(old_digests) == digest:
            continue
        have = Counter(old_digests)
        added = []
        for d, packed in zip(new_digests, c.entries, strict=True):
            if have[d] > 0:
                have[d] -= 1
            else:
                added.append(packed)
        removed = sorted(have.elements())
        sections.append(SetSection(CHANGE, c.info, added, removed=removed, digest=digest))
    removed_sets = sorted(set(old) - set(new))
    return write_bundle(
        DELTA, {"version": version, "base": base, "removed_sets": removed_sets}, sections
    )


# -- parsing ---------------------------------------------------------------------------------


def _need(ok: bool, where: str, what: str) -> None:
    if not ok:
        raise BundleError(f"broken catalog bundle: {where}: {what}")


def _check_info(info: Any, where: str) -> dict[str, Any]:
    _need(isinstance(info, dict), where, "set info is not a map")
    _need(
        set(info) == set(SET_FIELDS),
        where,
        f"set info fields {sorted(info)} are not {sorted(SET_FIELDS)}",
    )
    for k in ("name", "format", "source", "version", "imported_at", "content_sha256"):
        _need(isinstance(info[k], str), where, f"set {k} is not text")
    _need(0 < len(info["name"]) <= 200, where, "set name is empty or too long")
    _need(isinstance(info["known_good"], bool), where, "known_good is not a boolean")
    _need(
        isinstance(info["entries"], int) and info["entries"] >= 0, where, "entries is not a count"
    )
    _need(
        isinstance(info["counts"], dict) and isinstance(info["info"], dict),
        where,
        "counts/info not maps",
    )
    return info


def _check_entry(entry: Any, where: str) -> bytes:
    _need(isinstance(entry, list) and len(entry) == 5, where, "an entry is not a 5-item list")
    ext_id, category, meta, hashes, frames = entry
    _need(ext_id is None or (isinstance(ext_id, str) and len(ext_id) <= 200), where, "bad entry id")
    _need(
        category is None or (isinstance(category, str) and len(category) <= 64),
        where,
        "bad category",
    )
    _need(isinstance(meta, dict), where, "entry meta is not a map")
    _need(isinstance(hashes, list) and isinstance(frames, list), where, "hashes/frames not lists")
    _need(bool(hashes) or bool(frames), where, "an entry without hashes")
    last = 0
    for h in hashes:
        _need(isinstance(h, list) and len(h) == 2 and isinstance(h[0], int), where, "bad hash")
        try:
            kind = by_code(h[0])
        except KeyError:
            raise BundleError(
                f"broken catalog bundle: {where}: unknown hash kind code {h[0]}"
            ) from None
        _need(h[0] > last, where, "hashes out of order or repeated")
        last = h[0]
        _need(
            isinstance(h[1], bytes) and len(h[1]) == kind.byte_width,
            where,
            f"a {kind.name} value is not {kind.byte_width} bytes",
        )
    for fr in frames:
        _need(
            isinstance(fr, list)
            and len(fr) == 4
            and isinstance(fr[0], int)
            and isinstance(fr[1], float)
            and isinstance(fr[2], int)
            and isinstance(fr[3], bytes)
            and len(fr[3]) == 32,
            where,
            "bad vPDQ frame",
        )
    return _pack(entry)


def read_bundle(data: bytes | BinaryIO) -> Bundle:
    """Parse a bundle, strictly: BundleError says what is wrong with a broken one."""
    stream = io.BytesIO(data) if isinstance(data, bytes | bytearray) else data
    head = stream.read(len(MAGIC) + 2)
    if len(head) < len(MAGIC) + 2 or not head.startswith(MAGIC):
        raise BundleError("not a Vigil catalog bundle (bad magic)")
    if head[len(MAGIC)] != FORMAT:
        raise BundleError(
            f"catalog bundle format {head[len(MAGIC)]} is not supported (this Vigil reads {FORMAT})"
        )
    kind = head[-1:]
    if kind not in (FULL, DELTA):
        raise BundleError(f"unknown catalog bundle kind {kind!r}")
    reader = zstandard.ZstdDecompressor().stream_reader(stream, read_across_frames=False)
    unpacker = msgpack.Unpacker(reader, raw=False, strict_map_key=True, use_list=True)
    try:
        bundle = _parse(unpacker, kind)
        try:
            unpacker.unpack()
        except msgpack.OutOfData:
            return bundle
        raise BundleError("broken catalog bundle: data after the last set")
    except msgpack.OutOfData:
        raise BundleError("broken catalog bundle: truncated") from None
    except zstandard.ZstdError as e:
        raise BundleError(f"broken catalog bundle: compressed data: {e}") from None
    except (ValueError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError) as e:
        raise BundleError(f"broken catalog bundle: {e}") from None


def _parse(unpacker: msgpack.Unpacker, kind: bytes) -> Bundle:
    header = unpacker.unpack()
    _need(isinstance(header, dict), "header", "not a map")
    version, count = header.get("version"), header.get("sections")
    _need(isinstance(version, int) and version > 0, "header", "no version")
    _need(isinstance(count, int) and count >= 0, "header", "no section count")
    base = None
    removed_sets: list[str] = []
    if kind == DELTA:
        base = header.get("base")
        _need(isinstance(base, int) and 0 <= base < version, "header", "no base version")
        removed_sets = header.get("removed_sets")  # type: ignore[assignment]
        _need(
            isinstance(removed_sets, list) and all(isinstance(n, str) for n in removed_sets),
            "header",
            "removed_sets is not a list of names",
        )
    bundle = Bundle(version, [], base, removed_sets)
    for i in range(count):
        where = f"set section {i + 1}"
        sec = unpacker.unpack()
        _need(isinstance(sec, dict), where, "not a map")
        op, n, removed, digest = (
            sec.get("op"),
            sec.get("count"),
            sec.get("removed"),
            sec.get("digest"),
        )
        _need(op in ((ADD,) if kind == FULL else (ADD, CHANGE)), where, f"bad op {op!r}")
        _need(isinstance(n, int) and n >= 0, where, "no entry count")
        _need(isinstance(digest, bytes) and len(digest) == 32, where, "no content digest")
        _need(
            isinstance(removed, list)
            and all(isinstance(d, bytes) and len(d) == 16 for d in removed),
            where,
            "removed is not a list of entry digests",
        )
        _need(op == CHANGE or not removed, where, "entries removed from a new set")
        info = _check_info(sec.get("info"), where)
        entries = [_check_entry(unpacker.unpack(), f"{where} entry {j + 1}") for j in range(n)]
        bundle.sets.append(SetSection(op, info, entries, removed, digest))
    names = [s.info["name"] for s in bundle.sets]
    _need(len(set(names)) == len(names), "sections", "a set appears twice")
    return bundle


# -- applying --------------------------------------------------------------------------------


def catalog_version(catalog: Catalog) -> int | None:
    """The published version the catalog holds, or None (never updated from a bundle)."""
    with catalog.engine.connect() as conn:
        return _version(conn)


def _version(conn: Connection) -> int | None:
    st = schema.state.c
    value = conn.execute(select(st.value).where(st.key == VERSION_KEY)).scalar()
    return None if value is None else int(value)


def apply(catalog: Catalog, *bundles: Bundle) -> None:
    """Make `catalog` hold the version of the last bundle (a whole catalog, or a chain of
    deltas applied in turn), in one transaction: BundleError if it cannot, and then the catalog
    is as it was."""
    with catalog.writing() as conn:
        for bundle in bundles:
            _apply(conn, bundle)


def _apply(conn: Connection, bundle: Bundle) -> None:
    """One bundle, in the caller's transaction."""
    current = _version(conn)
    if bundle.is_delta:
        if current != bundle.base:
            raise BundleError(
                f"delta {bundle.base}->{bundle.version} does not apply to version {current}"
            )
    h, v, e, s = schema.hashes, schema.video_frames, schema.entries, schema.hashsets
    if not bundle.is_delta:
        for table in (h, v, e, s):
            conn.execute(delete(table))
    existing = {r.name: r.id for r in conn.execute(select(s.c.name, s.c.id))}
    for name in bundle.removed_sets:
        if name not in existing:
            raise BundleError(f"delta removes set {name!r}, which this catalog lacks")
        Catalog._delete_set(conn, existing.pop(name))
    generation = Catalog._bump(conn)
    next_id = int(conn.execute(select(func.coalesce(func.max(e.c.id), 0))).scalar_one()) + 1
    for sec in bundle.sets:
        name = sec.info["name"]
        if sec.op == ADD:
            if name in existing:
                raise BundleError(f"bundle adds set {name!r}, which this catalog has")
            set_id = conn.execute(insert(s).values(**sec.info)).inserted_primary_key[0]  # type: ignore[index]
        else:
            if name not in existing:
                raise BundleError(f"delta changes set {name!r}, which this catalog lacks")
            set_id = existing[name]
            conn.execute(update(s).where(s.c.id == set_id).values(**sec.info))
            _remove_entries(conn, set_id, sec.removed, name)
        next_id = _insert_entries(conn, set_id, next_id, sec.entries, generation)
        if stored_content_digest(conn, set_id) != sec.digest:
            raise BundleError(f"set {name!r} differs from the server's after applying the bundle")
    st = schema.state
    if current is None:
        conn.execute(insert(st).values(key=VERSION_KEY, value=bundle.version))
    else:
        conn.execute(update(st).where(st.c.key == VERSION_KEY).values(value=bundle.version))


def _remove_entries(conn: Connection, set_id: int, removed: list[bytes], name: str) -> None:
    """Delete one entry per digest in `removed`, found through the set's digest index."""
    wanted = Counter(removed)
    e = schema.entries.c
    drop: list[int] = []
    unique = list(wanted)
    for start in range(0, len(unique), 500):
        chunk = unique[start : start + 500]
        found: dict[bytes, list[int]] = {}
        rows = conn.execute(select(e.id, e.digest).where(e.set_id == set_id, e.digest.in_(chunk)))
        for eid, digest in rows:
            found.setdefault(bytes(digest), []).append(eid)
        for d in chunk:
            ids = sorted(found.get(d, []))
            if len(ids) < wanted[d]:
                raise BundleError(f"delta removes entries of set {name!r} that this catalog lacks")
            drop += ids[: wanted[d]]
    delete_entries(conn, set_id, drop)


def stored_content_digest(conn: Connection, set_id: int) -> bytes:
    """The content digest of a set as stored: its entries' digests read in order from the set's
    digest index (SQLite and PostgreSQL order blobs byte by byte, as `content_digest` sorts), so
    nothing is sorted here and NumPy is not loaded (the agent's daemon applies updates; its
    memory is the agent's footprint)."""
    sha = hashlib.sha256()
    sql = f"SELECT digest FROM entries WHERE set_id = {int(set_id)} ORDER BY digest"
    for (digest,) in iter_rows(conn, sql):
        if digest is None or len(digest) != DIGEST_BYTES:
            raise BundleError("an entry of the local catalog has no digest (a damaged catalog?)")
        sha.update(digest)
    return sha.digest()


def _insert_entries(
    conn: Connection, set_id: int, next_id: int, packed: list[bytes], generation: int
) -> int:
    entry_rows: list[tuple[Any, ...]] = []
    hash_rows: list[tuple[int, int, int, bytes]] = []
    frame_rows: list[dict[str, Any]] = []
    for p in packed:
        ext_id, category, meta, hashes, frames = msgpack.unpackb(p, raw=False)
        entry_rows.append((next_id, set_id, ext_id, category, meta, entry_digest(p), generation))
        hash_rows.extend((set_id, next_id, code, value) for code, value in hashes)
        frame_rows.extend(
            {
                "set_id": set_id,
                "entry_id": next_id,
                "frame": i,
                "timestamp": ts,
                "quality": q,
                "pdq": pdq,
            }
            for i, ts, q, pdq in frames
        )
        next_id += 1
        if len(hash_rows) + len(frame_rows) >= 20_000:
            Catalog._flush(conn, entry_rows, hash_rows, frame_rows)
    Catalog._flush(conn, entry_rows, hash_rows, frame_rows)
    return next_id


def content_of(bundle: Bundle) -> dict[str, SetContent]:
    """The catalog a full bundle holds (what the next delta is computed against)."""
    if bundle.is_delta:
        raise BundleError("a delta is not a whole catalog")
    return {s.info["name"]: SetContent(s.info, s.entries) for s in bundle.sets}
