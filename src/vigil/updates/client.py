"""The catalog updater agents and the gateway run: TUF-verified downloads from the server.

python-tuf's `ngclient.Updater` checks every metadata file (signatures, versions against
rollback, expiry against a frozen feed, lengths against endless data) and every target's hash;
only then is a bundle parsed and applied to the local catalog, in one transaction. The trust
anchor is HOME/tuf/root.json, written at enrolment (`save_root`); ngclient keeps the metadata it
has trusted under HOME/tuf/metadata (one updater per home at a time).
"""

from __future__ import annotations

import fcntl
import json
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from tuf.api import exceptions as tuf_errors
from tuf.api.metadata import TargetFile
from tuf.ngclient import Updater
from tuf.ngclient.fetcher import FetcherInterface

from vigil.catalog.store import Catalog
from vigil.errors import VigilError
from vigil.updates.bundle import BundleError, apply, catalog_version, read_bundle

FULL_TARGET = "catalog.bundle"
DELTA_TARGET = "catalog-delta-{base}-{version}.bundle"
TUF_DIR = "tuf"


class UpdateRejected(VigilError):
    """An update that failed verification or could not be applied (the catalog is unchanged)."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"catalog update rejected: {reason}")
        self.reason = reason


class UpdateUnavailable(VigilError):
    """The server could not be asked (unreachable, an HTTP error such as a refused credential):
    nothing was verified or changed, and nothing was rejected; ask again later."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"catalog update unavailable: {reason}")
        self.reason = reason


@dataclass
class UpdateResult:
    """The catalog version now held, whether this update changed it, when the server's
    timestamp (its promise that nothing newer exists) expires."""

    version: int
    changed: bool
    expires: datetime


def save_root(home: Path, root: dict[str, Any]) -> None:
    """Store the server's root metadata (from the enrolment answer) as the trust anchor."""
    directory = home / TUF_DIR
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / ".root.json.tmp"
    tmp.write_text(json.dumps(root))
    tmp.replace(directory / "root.json")


class _BearerFetcher(FetcherInterface):
    """ngclient's downloads over httpx, with the agent's credential and the server's CA."""

    def __init__(self, credential: str, ca_cert: Path | None, timeout: float = 30.0) -> None:
        verify: ssl.SSLContext | bool = True
        if ca_cert is not None:
            verify = ssl.create_default_context(cafile=str(ca_cert))
        self.client = httpx.Client(
            headers={"Authorization": f"Bearer {credential}"}, verify=verify, timeout=timeout
        )

    def _fetch(self, url: str) -> Iterator[bytes]:
        try:
            request = self.client.build_request("GET", url)
            response = self.client.send(request, stream=True)
        except httpx.TimeoutException as e:
            raise tuf_errors.SlowRetrievalError(str(e)) from e
        except httpx.HTTPError as e:
            raise tuf_errors.DownloadError(f"{url}: {e}") from e
        if response.status_code >= 400:
            response.close()
            raise tuf_errors.DownloadHTTPError(
                f"{url}: HTTP {response.status_code}", response.status_code
            )
        return self._chunks(response)

    @staticmethod
    def _chunks(response: httpx.Response) -> Iterator[bytes]:
        try:
            yield from response.iter_bytes(1 << 16)
        except httpx.TimeoutException as e:
            raise tuf_errors.SlowRetrievalError(str(e)) from e
        except httpx.HTTPError as e:
            raise tuf_errors.DownloadError(str(e)) from e
        finally:
            response.close()


class CatalogUpdater:
    """Brings the catalog under `home` to the server's newest signed version."""

    def __init__(
        self, home: Path, server_url: str, credential: str, *, ca_cert: Path | None = None
    ) -> None:
        self.home = home
        self.server_url = server_url.rstrip("/")
        self.credential = credential
        self.ca_cert = ca_cert
        # What the updates of this object downloaded: (URL, bytes), and the total.
        self.downloads: list[tuple[str, int]] = []
        self.bytes_downloaded = 0

    def version(self) -> int | None:
        """The published version the local catalog holds (None: never updated)."""
        catalog = Catalog.open(self.home)
        try:
            return catalog_version(catalog)
        finally:
            catalog.close()

    def _updater(self, fetcher: FetcherInterface) -> Updater:
        tuf_dir = self.home / TUF_DIR
        anchor = tuf_dir / "root.json"
        if not anchor.is_file():
            raise UpdateRejected(f"no trust anchor at {anchor} (the agent is not enrolled)")
        metadata_dir = tuf_dir / "metadata"
        targets_dir = tuf_dir / "downloads"
        metadata_dir.mkdir(parents=True, exist_ok=True)
        targets_dir.mkdir(parents=True, exist_ok=True)
        bootstrap = None
        if not (metadata_dir / "root.json").exists():
            bootstrap = anchor.read_bytes()
        return Updater(
            metadata_dir=str(metadata_dir),
            metadata_base_url=f"{self.server_url}/tuf/metadata/",
            target_dir=str(targets_dir),
            target_base_url=f"{self.server_url}/tuf/targets/",
            fetcher=fetcher,
            bootstrap=bootstrap,
        )

    def update(self) -> UpdateResult:
        """Refresh the signed metadata; download and apply what brings the catalog to the newest
        version. UpdateRejected on any failure, with the local catalog as it was."""
        with self._lock():
            return self._update()

    @contextmanager
    def _lock(self) -> Iterator[None]:
        """One update per home at a time (ngclient's metadata directory is not shared)."""
        directory = self.home / TUF_DIR
        directory.mkdir(parents=True, exist_ok=True)
        with open(directory / "update.lock", "a") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def _update(self) -> UpdateResult:
        fetcher = _BearerFetcher(self.credential, self.ca_cert)
        counting = _Counting(fetcher)
        try:
            updater = self._updater(counting)
            updater.refresh()
            full = updater.get_targetinfo(FULL_TARGET)
            if full is None:
                raise UpdateRejected("the server has published no catalog")
            # The whole bundle may hold an older version than the newest (`latest`), which
            # the deltas from it reach.
            latest = int(full.custom.get("latest", full.custom.get("version", 0)))
            expires = updater._trusted_set.timestamp.expires  # noqa: SLF001 - no public accessor
            catalog = Catalog.open(self.home)
            try:
                current = catalog_version(catalog)
                if current is not None and current > latest:
                    raise UpdateRejected(
                        f"the server offers version {latest}, older than the local {current}"
                    )
                if current == latest:
                    return UpdateResult(latest, False, expires)
                # Everything downloaded and verified first, then applied in one transaction:
                # a chain of deltas that fails half-way leaves the catalog as it was.
                bundles = []
                for info in self._plan(updater, full, current, latest):
                    path = updater.download_target(info)
                    try:
                        with open(path, "rb") as f:
                            bundles.append(read_bundle(f))
                    finally:
                        Path(path).unlink(missing_ok=True)
                apply(catalog, *bundles)
            finally:
                catalog.close()
            return UpdateResult(latest, True, expires)
        except UpdateRejected:
            raise
        except BundleError as e:
            raise UpdateRejected(str(e)) from e
        except tuf_errors.ExpiredMetadataError as e:
            raise UpdateRejected(f"expired metadata (a frozen feed?): {e}") from e
        except tuf_errors.BadVersionNumberError as e:
            raise UpdateRejected(f"rolled back metadata: {e}") from e
        except tuf_errors.RepositoryError as e:
            raise UpdateRejected(f"metadata or target failed verification: {e}") from e
        except tuf_errors.DownloadLengthMismatchError as e:
            # More bytes than the signed metadata allows: an endless-data attack, or damage.
            raise UpdateRejected(f"download longer than signed: {e}") from e
        except tuf_errors.DownloadError as e:
            raise UpdateUnavailable(f"download failed: {e}") from e
        finally:
            self.downloads += counting.downloads
            self.bytes_downloaded += sum(n for _, n in counting.downloads)
            fetcher.client.close()

    @staticmethod
    def _plan(
        updater: Updater, full: TargetFile, current: int | None, latest: int
    ) -> list[TargetFile]:
        """The smaller of the chain of deltas from `current` and the whole bundle followed by
        the deltas from its version (each only if all of it is published)."""

        def chain(start: int) -> list[TargetFile] | None:
            out = []
            for base in range(start, latest):
                info = updater.get_targetinfo(DELTA_TARGET.format(base=base, version=base + 1))
                if info is None:
                    return None
                out.append(info)
            return out

        plans = []
        if current is not None:
            plans.append(chain(current))
        from_full = chain(int(full.custom.get("version", 0)))
        plans.append(None if from_full is None else [full, *from_full])
        found = [p for p in plans if p is not None]
        if not found:
            raise UpdateRejected(f"the server publishes no way to version {latest}")
        return min(found, key=lambda p: sum(i.length for i in p))


class _Counting(FetcherInterface):
    """Counts the bytes another fetcher brings (for the update-size benchmark)."""

    def __init__(self, inner: _BearerFetcher) -> None:
        self.inner = inner
        self.downloads: list[tuple[str, int]] = []

    def _fetch(self, url: str) -> Iterator[bytes]:
        chunks = self.inner._fetch(url)  # noqa: SLF001
        self.downloads.append((url, 0))
        at = len(self.downloads) - 1
        for chunk in chunks:
            self.downloads[at] = (url, self.downloads[at][1] + len(chunk))
            yield chunk
