"""The server's TUF repository: the catalog published to agents as signed targets.

Layout under the server's home (python-tuf's metadata API writes the files; the repository is
static files served by the API under /tuf):

- `keys/root.pem`: the root key. Only needed to sign a new root (key rotation, root expiry); the
  operator can move it offline once `vigil server init` has run.
- `keys/targets.pem`, `keys/snapshot.pem`, `keys/timestamp.pem`: the online keys the running
  server signs with.
- `tuf/metadata/`: `N.root.json` (and `root.json`, the newest), `N.targets.json`,
  `N.snapshot.json`, `timestamp.json` (consistent snapshots).
- `tuf/targets/`: `SHA256.NAME`: `catalog.bundle` (the whole catalog; in the target's `custom`
  the version it holds and the newest version, `latest`) and `catalog-delta-A-B.bundle` (A to
  B = A + 1).

Catalog version N is published at once as the delta N-1 to N, built from what changed (the
entries the catalog added after the generation version N-1 holds, and its record of removed
entries: `entries.added`, `removed_entries`), without reading unchanged entries. The whole
catalog is bundled later, in the background (`build_full`): `catalog.bundle` may hold an older
version M, and an agent behind M takes it and the deltas M to N; deltas from the last whole
bundle on are always kept. The first version, and a home published by a Vigil without the change
record, are bundled whole at once. Only one process publishes per home (`tuf/publish.lock`).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.serialization import load_pem_private_key
from securesystemslib.signer import CryptoSigner
from sqlalchemy import select
from sqlalchemy.engine import Connection
from tuf.api.metadata import (
    Metadata,
    MetaFile,
    Root,
    Snapshot,
    TargetFile,
    Targets,
    Timestamp,
)
from tuf.api.serialization.json import JSONSerializer

from vigil.catalog import schema
from vigil.catalog.digest import pack
from vigil.catalog.store import Catalog, iter_packed
from vigil.errors import VigilError
from vigil.updates.bundle import (
    ADD,
    CHANGE,
    DELTA,
    SetContent,
    SetSection,
    content_of,
    delta_bundle,
    full_bundle,
    read_bundle,
    read_catalog,
    set_info,
    stored_content_digest,
    write_bundle,
)

log = logging.getLogger(__name__)

KEYS_DIR = "keys"
TUF_DIR = "tuf"
ROLES = ("root", "targets", "snapshot", "timestamp")
FULL_TARGET = "catalog.bundle"
DELTA_TARGET = "catalog-delta-{base}-{version}.bundle"
ROOT_EXPIRY = timedelta(days=365)
# Targets and snapshot are re-signed when half of this is gone, even if nothing changed.
TARGETS_EXPIRY = timedelta(days=30)
DEFAULT_TIMESTAMP_EXPIRY = timedelta(hours=1)
DEFAULT_TIMESTAMP_RESIGN = timedelta(minutes=10)
# Deltas kept: an agent further behind downloads the whole catalog.
KEEP_DELTAS = 30
# Metadata versions kept for agents in the middle of an update.
KEEP_METADATA = 5
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$")


class PublishError(VigilError):
    """The repository cannot be published (missing keys, another publisher...)."""


@dataclass
class CatalogSettings:
    """`[catalog]` of server.toml."""

    timestamp_expiry: timedelta = DEFAULT_TIMESTAMP_EXPIRY
    timestamp_resign: timedelta = DEFAULT_TIMESTAMP_RESIGN


def catalog_settings(home: Path) -> CatalogSettings:
    """`[catalog] timestamp_expiry = "1h"`, `timestamp_resign = "10m"` from HOME/server.toml
    (read, with the rest of it, by vigil.server.settings)."""
    from vigil.server import settings

    read = settings.read(home)
    return CatalogSettings(read.timestamp_expiry, read.timestamp_resign)


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _load_signer(path: Path) -> CryptoSigner:
    try:
        return CryptoSigner(load_pem_private_key(path.read_bytes(), None))
    except FileNotFoundError:
        raise PublishError(f"signing key {path} is missing") from None


class Repository:
    """The TUF repository of one server home."""

    def __init__(self, home: Path, settings: CatalogSettings | None = None) -> None:
        self.home = home
        self.keys = home / KEYS_DIR
        self.metadata = home / TUF_DIR / "metadata"
        self.targets = home / TUF_DIR / "targets"
        self.settings = settings or CatalogSettings()
        self._lock_fd: int | None = None
        # Metadata is written by one thread at a time (publishing, the background whole
        # bundle, re-signing).
        self._writing = threading.RLock()

    # -- files -------------------------------------------------------------------------------

    def exists(self) -> bool:
        """A repository was created (`vigil server init`)."""
        return (self.metadata / "root.json").is_file()

    def root_json(self) -> dict[str, Any]:
        """The newest root metadata (agents' trust anchor)."""
        return dict(json.loads((self.metadata / "root.json").read_bytes()))

    def _read(self, role: str) -> Metadata[Any]:
        if role == "timestamp":
            return Metadata.from_file(str(self.metadata / "timestamp.json"))
        if role == "root":
            return Metadata.from_file(str(self.metadata / "root.json"))
        versions = sorted(self._versions(role))
        if not versions:
            raise PublishError(f"no {role} metadata in {self.metadata}")
        return Metadata.from_file(str(self.metadata / f"{versions[-1]}.{role}.json"))

    def _versions(self, role: str) -> list[int]:
        out = []
        for p in self.metadata.glob(f"*.{role}.json"):
            head = p.name.split(".", 1)[0]
            if head.isdigit():
                out.append(int(head))
        return out

    def _sign(self, md: Metadata[Any], role: str) -> bytes:
        md.signatures.clear()
        md.sign(_load_signer(self.keys / f"{role}.pem"))
        return md.to_bytes(JSONSerializer(compact=False))

    # -- locking -----------------------------------------------------------------------------

    def try_lock(self) -> bool:
        """Become this home's publisher (kept until `unlock`); False if another process is."""
        if self._lock_fd is not None:
            return True
        (self.home / TUF_DIR).mkdir(parents=True, exist_ok=True)
        fd = os.open(self.home / TUF_DIR / "publish.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._lock_fd = fd
        return True

    def unlock(self) -> None:
        """Stop being the publisher (after a metadata write under way)."""
        with self._writing:
            if self._lock_fd is not None:
                os.close(self._lock_fd)
                self._lock_fd = None

    @contextmanager
    def locked(self) -> Iterator[None]:
        """The publisher's lock for one operation (PublishError if another process holds it)."""
        held = self._lock_fd is not None
        if not self.try_lock():
            raise PublishError(f"another process publishes the catalog of {self.home}")
        try:
            yield
        finally:
            if not held:
                self.unlock()

    # -- creating ----------------------------------------------------------------------------

    def create(self) -> None:
        """New keys (Ed25519) and root metadata version 1."""
        self.keys.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.metadata.mkdir(parents=True, exist_ok=True)
        self.targets.mkdir(parents=True, exist_ok=True)
        root = Root(expires=_now() + ROOT_EXPIRY, consistent_snapshot=True)
        signers = {}
        for role in ROLES:
            signer = CryptoSigner.generate_ed25519()
            path = self.keys / f"{role}.pem"
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(signer.private_bytes)
            root.add_key(signer.public_key, role)
            signers[role] = signer
        md = Metadata(root)
        md.sign(signers["root"])
        data = md.to_bytes(JSONSerializer(compact=False))
        _write_atomic(self.metadata / "1.root.json", data)
        _write_atomic(self.metadata / "root.json", data)

    # -- publishing --------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        """{"version": published catalog version, "generation": the catalog generation it holds,
        "full": the version `catalog.bundle` holds, "sets": {name: [set id, digest of its
        row]} of that generation (absent when published by a Vigil before the change record)}."""
        path = self.home / TUF_DIR / "state.json"
        if not path.is_file():
            return {"version": 0, "generation": -1, "full": 0}
        state = dict(json.loads(path.read_text()))
        state.setdefault("full", state["version"])
        return state

    def _save_state(self, state: dict[str, Any]) -> None:
        _write_atomic(self.home / TUF_DIR / "state.json", json.dumps(state).encode())

    def published_version(self) -> int:
        """The newest published catalog version (0: none yet)."""
        return int(self.state()["version"])

    def publish(self, catalog: Catalog, *, force: bool = False, full: bool = False) -> int | None:
        """Publish the catalog as a new version if it changed (or `force`); the new version, or
        None. The delta from the version before is built from the catalog's change record and
        published at once; the whole catalog only for the first version, for a home published
        without the record, or when `full` is asked (else later: `build_full`)."""
        with self.locked(), self._writing:
            state = self.state()
            with catalog.snapshot() as snap:
                generation = snap.generation()
                if generation == state["generation"] and not force:
                    return None
                version = int(state["version"]) + 1
                sets = _set_rows(snap.conn)
                whole = None
                delta = None
                if full or "sets" not in state or version == 1:
                    content = read_catalog(snap.conn)
                    whole = full_bundle(version, content)
                    previous = self._previous(int(state["version"]), int(state["full"]))
                    if previous is not None:
                        delta = delta_bundle(version - 1, previous, version, content)
                    del content, previous
                else:
                    delta = change_delta(
                        snap.conn, version - 1, int(state["generation"]), state["sets"], version
                    )
            self._publish(version, delta, whole)
            self._save_state(
                {
                    "version": version,
                    "generation": generation,
                    "full": version if whole is not None else int(state["full"]),
                    "sets": sets,
                }
            )
            # What the deltas of published versions needed is no longer needed.
            catalog.forget_removed(generation)
            log.info(
                "published catalog version %d (generation %d%s)",
                version,
                generation,
                ", whole" if whole is not None else "",
            )
            return version

    def build_full(self, catalog: Catalog) -> int | None:
        """Bundle the whole catalog of the published version, if `catalog.bundle` holds an older
        one and the catalog has not moved since it was published (then the next version comes
        first); the version bundled, or None. The long part runs without the publisher's
        metadata lock: deltas go on being published meanwhile."""
        with catalog.snapshot() as snap:
            generation = snap.generation()
            state = self.state()  # after the snapshot began: it holds this state's version
            version = int(state["version"])
            if generation != state["generation"] or int(state["full"]) >= version:
                return None
            content = read_catalog(snap.conn)
        data = full_bundle(version, content)
        del content
        with self.locked(), self._writing:
            state = self.state()
            if int(state["full"]) >= version:
                return None
            now = _now()
            targets_md: Metadata[Targets] = self._read("targets")
            targets = targets_md.signed
            targets.version += 1
            targets.expires = now + TARGETS_EXPIRY
            self._add_target(
                targets, FULL_TARGET, data, {"version": version, "latest": int(state["version"])}
            )
            self._prune_targets(targets, int(state["version"]), version)
            self._write_targets_snapshot(targets_md, now)
            self._save_state({**state, "full": version})
        log.info("bundled catalog version %d whole", version)
        return version

    def _previous(self, version: int, full: int) -> dict[str, SetContent] | None:
        """The catalog of published `version`, from its whole bundle (None: not at hand)."""
        if version == 0 or full != version:
            return None
        info = self._read("targets").signed.targets.get(FULL_TARGET)
        if info is None:
            return None
        path = self.targets / f"{info.hashes['sha256']}.{FULL_TARGET}"
        with open(path, "rb") as f:
            return content_of(read_bundle(f))

    def _add_target(self, targets: Targets, name: str, data: bytes, custom: dict[str, Any]) -> None:
        info = TargetFile.from_data(name, data, ["sha256"])
        info.unrecognized_fields["custom"] = custom
        _write_atomic(self.targets / f"{info.hashes['sha256']}.{name}", data)
        targets.targets[name] = info

    def _publish(self, version: int, delta: bytes | None, whole: bytes | None) -> None:
        now = _now()
        if self._versions("targets"):
            targets_md: Metadata[Targets] = self._read("targets")
        else:
            targets_md = Metadata(Targets())
            targets_md.signed.version = 0
        targets = targets_md.signed
        targets.version += 1
        targets.expires = now + TARGETS_EXPIRY
        if whole is not None:
            self._add_target(targets, FULL_TARGET, whole, {"version": version, "latest": version})
        else:
            # The whole bundle stays an older version; its `custom` names the newest.
            info = targets.targets[FULL_TARGET]
            info.unrecognized_fields["custom"] = {**info.custom, "latest": version}
        if delta is not None:
            name = DELTA_TARGET.format(base=version - 1, version=version)
            self._add_target(targets, name, delta, {"base": version - 1, "version": version})
        full = int(targets.targets[FULL_TARGET].custom["version"])
        self._prune_targets(targets, version, full)
        self._write_targets_snapshot(targets_md, now)

    @staticmethod
    def _prune_targets(targets: Targets, latest: int, full: int) -> None:
        """Drop deltas older than the last KEEP_DELTAS versions, except those from the whole
        bundle's version on (an agent behind it takes the whole bundle and those)."""
        for name in list(targets.targets):
            custom = targets.targets[name].custom
            if "base" not in custom:
                continue
            v = int(custom["version"])
            if v <= latest - KEEP_DELTAS and v <= full:
                del targets.targets[name]

    def _write_targets_snapshot(self, targets_md: Metadata[Targets], now: datetime) -> None:
        _write_atomic(
            self.metadata / f"{targets_md.signed.version}.targets.json",
            self._sign(targets_md, "targets"),
        )
        snap_versions = self._versions("snapshot")
        snapshot = Snapshot(
            version=max(snap_versions, default=0) + 1,
            expires=now + TARGETS_EXPIRY,
            meta={"targets.json": MetaFile(targets_md.signed.version)},
        )
        _write_atomic(
            self.metadata / f"{snapshot.version}.snapshot.json",
            self._sign(Metadata(snapshot), "snapshot"),
        )
        self._write_timestamp(snapshot.version, now)
        self._prune()

    def _write_timestamp(self, snapshot_version: int, now: datetime) -> None:
        path = self.metadata / "timestamp.json"
        version = Metadata.from_file(str(path)).signed.version + 1 if path.is_file() else 1
        ts = Timestamp(
            version=version,
            expires=now + self.settings.timestamp_expiry,
            snapshot_meta=MetaFile(snapshot_version),
        )
        _write_atomic(path, self._sign(Metadata(ts), "timestamp"))

    def resign(self) -> None:
        """Re-sign the timestamp (and targets and snapshot when half their life is gone), so
        agents can tell a quiet feed from a frozen one."""
        with self.locked(), self._writing:
            now = _now()
            snapshot = self._read("snapshot").signed
            if snapshot.expires - now < TARGETS_EXPIRY / 2:
                targets_md: Metadata[Targets] = self._read("targets")
                targets_md.signed.version += 1
                targets_md.signed.expires = now + TARGETS_EXPIRY
                self._write_targets_snapshot(targets_md, now)
            else:
                self._write_timestamp(snapshot.version, now)

    def timestamp_expires(self) -> datetime:
        """When the current timestamp metadata expires."""
        return self._read("timestamp").signed.expires

    def _prune(self) -> None:
        """Drop metadata and target files no recent targets metadata names."""
        keep_names: set[str] = set()
        for role in ("targets", "snapshot"):
            versions = sorted(self._versions(role))
            for v in versions[:-KEEP_METADATA]:
                (self.metadata / f"{v}.{role}.json").unlink(missing_ok=True)
        for v in self._versions("targets"):
            md = Metadata[Targets].from_file(str(self.metadata / f"{v}.targets.json"))
            keep_names.update(f"{t.hashes['sha256']}.{n}" for n, t in md.signed.targets.items())
        for p in self.targets.iterdir():
            if p.name not in keep_names and not p.name.startswith("."):
                p.unlink(missing_ok=True)

    # -- the root: expiry and key rotation ---------------------------------------------------

    def sign_root(self, root_key: Path, rotate: tuple[str, ...] = ()) -> int:
        """A new root version, signed with the current root key read from `root_key` (which may
        live offline, e.g. on a USB stick): a new expiry, and new keys for the roles in `rotate`
        (a new root key is written over `root_key`, the online ones under HOME/keys). Agents
        take the new root at their next update. Returns the new root's version."""
        unknown = set(rotate) - set(ROLES)
        if unknown:
            raise PublishError(f"unknown roles {sorted(unknown)} (roles: {', '.join(ROLES)})")
        with self.locked(), self._writing:
            md: Metadata[Root] = Metadata.from_file(str(self.metadata / "root.json"))
            root = md.signed
            old = _load_signer(root_key)
            if old.public_key.keyid not in root.roles["root"].keyids:
                raise PublishError(f"{root_key} is not the current root key")
            fresh: dict[str, CryptoSigner] = {}
            for role in rotate:
                for keyid in list(root.roles[role].keyids):
                    root.revoke_key(keyid, role)
                fresh[role] = CryptoSigner.generate_ed25519()
                root.add_key(fresh[role].public_key, role)
            root.version += 1
            root.expires = _now() + ROOT_EXPIRY
            md.signatures.clear()
            md.sign(old, append=True)
            if "root" in fresh:  # the new root must be signed by the old and the new key
                md.sign(fresh["root"], append=True)
            data = md.to_bytes(JSONSerializer(compact=False))
            for role, signer in fresh.items():
                path = root_key if role == "root" else self.keys / f"{role}.pem"
                tmp = path.with_name(f".{path.name}.new")
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(fd, "wb") as f:
                    f.write(signer.private_bytes)
                os.replace(tmp, path)
            _write_atomic(self.metadata / f"{root.version}.root.json", data)
            _write_atomic(self.metadata / "root.json", data)
            if set(rotate) - {"root"} and self._versions("targets"):
                # Everything signed again with the new online keys.
                targets_md: Metadata[Targets] = self._read("targets")
                targets_md.signed.version += 1
                targets_md.signed.expires = _now() + TARGETS_EXPIRY
                self._write_targets_snapshot(targets_md, _now())
            return root.version

    # -- serving -----------------------------------------------------------------------------

    def file(self, kind: str, name: str) -> Path | None:
        """The metadata or target file an agent asks for by name, or None (no such file, or a
        name that is not a plain file name: nothing outside the repository is ever served)."""
        if not _NAME.fullmatch(name) or ".." in name:
            return None
        base = self.metadata if kind == "metadata" else self.targets
        path = base / name
        return path if path.is_file() else None


def _info_digest(info: dict[str, Any]) -> str:
    return hashlib.sha256(pack(info)).hexdigest()[:32]


def _set_rows(conn: Connection) -> dict[str, list[Any]]:
    """{name: [set id, digest of its row as published]} of every set."""
    rows = conn.execute(select(schema.hashsets).order_by(schema.hashsets.c.name))
    return {row.name: [int(row.id), _info_digest(set_info(row))] for row in rows}


def change_delta(
    conn: Connection,
    base: int,
    base_generation: int,
    base_sets: dict[str, list[Any]],
    version: int,
) -> bytes:
    """The delta from published version `base` (catalog generation `base_generation`, sets
    `base_sets` as `_set_rows` gave them) to the catalog `conn` reads, from the catalog's change
    record: entries added after `base_generation` (`entries.added`), entries removed since
    (`removed_entries`), set rows that changed. Unchanged entries are not read.

    A set removed since, or removed and made again under the same name, is in the header's
    removed sets (and, if it exists now, added whole)."""
    r = schema.removed_entries.c
    removals: dict[int, list[bytes]] = {}
    recreated: set[int] = set()
    rows = conn.execute(
        select(r.set_id, r.digest, r.added).where(r.removed > base_generation)
    ).all()
    for set_id, digest, added in rows:
        if not digest:
            recreated.add(int(set_id))
        elif int(added) <= base_generation:
            removals.setdefault(int(set_id), []).append(bytes(digest))
    sections: list[SetSection] = []
    now = {row.name: row for row in conn.execute(select(schema.hashsets))}
    removed_sets = sorted(
        name
        for name, (set_id, _info) in base_sets.items()
        if name not in now or int(now[name].id) != set_id or set_id in recreated
    )
    for name, row in sorted(now.items()):
        info = set_info(row)
        set_id = int(row.id)
        if name not in base_sets or name in removed_sets:
            entries = [p for _s, _e, p in iter_packed(conn, set_id)]
            digest = stored_content_digest(conn, set_id)
            sections.append(SetSection(ADD, info, entries, digest=digest))
            continue
        added = [p for _s, _e, p in iter_packed(conn, set_id, added_after=base_generation)]
        removed = sorted(removals.get(set_id, []))
        if not added and not removed and _info_digest(info) == base_sets[name][1]:
            continue
        digest = stored_content_digest(conn, set_id)
        sections.append(SetSection(CHANGE, info, added, removed=removed, digest=digest))
    header = {"version": version, "base": base, "removed_sets": removed_sets}
    return write_bundle(DELTA, header, sections)
