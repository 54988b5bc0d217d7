"""End to end through a real Squid: a browser's fetches and uploads pass a Squid on loopback
that calls `vigil gateway run` over ICAP with the README's squid.conf lines.

A local origin serves known photos (exact, resized, mirrored, re-encoded, gzip-encoded, in a
zip), a known video of several megabytes, unknown photos and non-media, each written at once
(head and whole body in one write) and trickled. Known content is blocked (block mode) or
passes with an incident (monitor mode: incidents.jsonl, or the server's API for an enrolled
home); everything else passes byte for byte.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import threading
import zipfile
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from gateway import squid_fixture
from gateway.squid_fixture import PROXY_USER, Origin, SquidProcess
from support.agent import incidents as api_incidents
from support.agent import wait_for
from support.gateway import start_gateway
from support.planted import Tree
from support.server import Server, run_cli, unique
from support.videos import slideshow_frames, write

# Real processes over loopback: run in the suite's process-parallel group (scripts/test).
pytestmark = pytest.mark.e2e

# The fixture module's fixtures, used here by name.
origin = squid_fixture.origin
squid_for = squid_fixture.squid_for

# Never a time threshold: this only stops a hung transfer from hanging the suite.
FETCH_TIMEOUT = 120


@dataclass(frozen=True)
class Item:
    """One thing the origin serves: where, what, and whether the catalog knows it."""

    name: str
    path: str
    body: bytes
    content_type: str
    known: bool
    encoding: str | None = None


def video_bytes(folder: Path, names: list[str], seconds: int) -> bytes:
    """A slideshow of benign photos, H.264 in MP4, a few megabytes."""
    path = write(
        folder / f"{names[0]}.mp4",
        slideshow_frames(names, seconds, 10, (640, 480)),
        bit_rate=2_000_000,
    )
    return path.read_bytes()


@pytest.fixture(scope="module")
def media(planted: Tree, tmp_path_factory: pytest.TempPathFactory) -> list[Item]:
    """The served set; the known video's MD5 is added to the catalog by `catalog_with_video`."""
    folder = tmp_path_factory.mktemp("squid-media")
    o = planted.originals
    root = planted.root
    known_zip = io.BytesIO()
    with zipfile.ZipFile(known_zip, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("holiday/rocket.jpg", o["rocket"])
        zf.writestr("notes.txt", "nothing here")
    video = video_bytes(folder, ["astronaut", "coffee", "chelsea", "rocket"], 24)
    other_video = video_bytes(folder, ["camera", "moon", "coins", "brick"], 8)
    page = b"<html><body>" + b"<p>plain text, nothing to see</p>" * 60000 + b"</body></html>"
    return [
        Item("exact", "/known/astronaut.jpg", o["astronaut"], "image/jpeg", True),
        Item("resized", "/known/rocket-half.png",
             (root / "alt/rocket-half.png").read_bytes(), "image/png", True),
        Item("mirrored", "/known/astronaut-mirror.jpg",
             (root / "alt/astronaut-mirror.jpg").read_bytes(), "image/jpeg", True),
        Item("re-encoded", "/known/chelsea-q50.jpg",
             (root / "alt/chelsea-q50.jpg").read_bytes(), "image/jpeg", True),
        Item("gzip", "/known/coffee.jpg.gz", gzip.compress(o["coffee"]), "image/jpeg", True,
             "gzip"),
        Item("zip", "/known/holiday.zip", known_zip.getvalue(), "application/zip", True),
        Item("video", "/known/slideshow.mp4", video, "video/mp4", True),
        Item("unknown photo", "/other/moon.jpg",
             (root / "other/moon.jpg").read_bytes(), "image/jpeg", False),
        Item("unknown photo 2", "/other/coins.jpg",
             (root / "other/coins.jpg").read_bytes(), "image/jpeg", False),
        Item("unknown video", "/other/slideshow.mp4", other_video, "video/mp4", False),
        Item("page", "/other/page.html", page, "text/html", False),
        Item("binary", "/other/blob.bin", os.urandom(3_000_000), "application/octet-stream",
             False),
    ]  # fmt: skip


def known_video(media: list[Item]) -> Item:
    return next(i for i in media if i.name == "video")


@pytest.fixture(scope="module")
def catalog_with_video(
    tmp_path_factory: pytest.TempPathFactory, catalog_home: Path, media: list[Item]
) -> Path:
    """The demo catalog plus the known video's MD5 (an md5sum list)."""
    home = tmp_path_factory.mktemp("squid-catalog")
    for entry in catalog_home.iterdir():
        target = home / entry.name
        if entry.is_dir():
            shutil.copytree(entry, target)
        else:
            target.write_bytes(entry.read_bytes())
    md5 = hashlib.md5(known_video(media).body).hexdigest()
    listing = home / "videos.md5"
    listing.write_text(f"{md5}  slideshow.mp4\n")
    done = run_cli("--home", str(home), "hashset", "import", str(listing), "--name", "videos")
    assert done.returncode == 0, done.stderr
    return home


@pytest.fixture
def home(tmp_path: Path, catalog_with_video: Path) -> Path:
    """A fresh unenrolled gateway home holding the catalog."""
    target = tmp_path / "gw-home"
    shutil.copytree(catalog_with_video, target)
    return target


def serve_all(origin: Origin, media: list[Item], prefix: str) -> dict[str, Item]:
    """Put the media on the origin under `prefix`; URL → item."""
    return {origin.add(prefix + i.path, i.body, i.content_type, i.encoding): i for i in media}


def raw_get(squid: SquidProcess, url: str) -> tuple[int, dict[str, str], bytes]:
    """GET through the proxy: status, headers and the undecoded body."""
    with httpx.Client(proxy=squid.proxy, timeout=FETCH_TIMEOUT) as c:
        with c.stream("GET", url, headers={"Accept-Encoding": "gzip"}) as r:
            data = b"".join(r.iter_raw())
            return r.status_code, dict(r.headers), data


def jsonl(home: Path) -> list[dict[str, object]]:
    path = home / "incidents.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


TRANSFERS = ["at-once", "trickled"]


def suffix(transfer: str) -> str:
    return "?trickle=1" if transfer == "trickled" else ""


@pytest.mark.parametrize("transfer", TRANSFERS)
def test_monitor_mode_passes_everything_and_reports_the_known(
    transfer: str, origin: Origin, media: list[Item], home: Path, squid_for
) -> None:
    # A stock squid.conf (the README's lines only): the gateway must keep Squid reading
    # fast origins by itself. The proxy authenticates its users; each incident names the user.
    g = start_gateway(home, "--mode", "monitor")
    try:
        squid = squid_for(g.port, "monitor", auth=True)
        with httpx.Client(proxy=squid.anonymous_proxy, timeout=FETCH_TIMEOUT) as c:
            assert c.get(origin.base + "/nothing").status_code == 407
        urls = serve_all(origin, media, f"/monitor-{transfer}")
        for url, item in urls.items():
            status, headers, data = raw_get(squid, url + suffix(transfer))
            assert status == 200, (item.name, status, data[:300])
            assert data == item.body, f"{item.name}: the body was changed on its way"
            assert headers.get("content-encoding") == item.encoding
        # A streamed body is fingerprinted once whole, after the proxy had its answer.
        known = {url for url, item in urls.items() if item.known}

        def reported() -> set[str]:
            return {str(line["url"]).split("?")[0] for line in jsonl(home)}

        try:
            wait_for("an incident for every known item", lambda: known <= reported())
        except AssertionError:
            pass  # reported below, by name
        found = jsonl(home)
        seen = reported()
        assert seen == known, {
            "missed": sorted(urls[u].name for u in known - seen),
            "wrongly reported": sorted(urls[u].name for u in seen - known if u in urls),
        }
        for line in found:
            assert line["client"] == "127.0.0.1"
            assert line["user"] == PROXY_USER
            assert line["detection"] == "gateway"
        zipped = [
            line
            for line in found
            if str(line["url"]).startswith(f"{origin.base}/monitor-{transfer}/known/holiday.zip")
        ]
        assert zipped and all(line["member"] == "holiday/rocket.jpg" for line in zipped)
    finally:
        assert g.stop() == 0, g.log_text()[-3000:]


@pytest.mark.parametrize("transfer", TRANSFERS)
def test_block_mode_blocks_the_known_and_passes_the_rest_unchanged(
    transfer: str, origin: Origin, media: list[Item], home: Path, squid_for
) -> None:
    g = start_gateway(home, "--mode", "block")
    try:
        squid = squid_for(g.port, "block")
        urls = serve_all(origin, media, f"/block-{transfer}")
        for url, item in urls.items():
            status, headers, data = raw_get(squid, url + suffix(transfer))
            if item.known:
                assert status == 403, (item.name, status, headers)
                assert headers.get("x-vigil") == "blocked"
                assert headers.get("content-type", "").startswith("text/html")
                assert item.body not in data
            else:
                assert status == 200, (item.name, status, data[:300])
                assert data == item.body, f"{item.name}: the body was changed on its way"
        blocked = {str(line["url"]).split("?")[0] for line in jsonl(home)}
        assert blocked == {url for url, item in urls.items() if item.known}
    finally:
        assert g.stop() == 0, g.log_text()[-3000:]


# Fetches of 1 MB images streamed back by the gateway (monitor mode) to 4 clients on persistent
# connections: without the README's `read_ahead_gap`, Squid 5.7 closed about one client
# connection in 370 fetches.
STREAMED_FETCHES = 2000
CLIENTS = 4


def test_streamed_responses_keep_the_clients_persistent_connections(
    origin: Origin, home: Path, squid_for
) -> None:
    """Squid bug 5279 (docs/gateway.md, "Closed client connections"): Squid 5.7 could mark a
    response echoed by the service as truncated after the client had all of it, and close the
    client's connection, failing the request the client had sent on it meanwhile."""
    g = start_gateway(home, "--mode", "monitor")
    try:
        squid = squid_for(g.port, "monitor")
        # Sniffed as JPEG, so streamed and fingerprinted; not decodable, so quickly done.
        bodies = []
        for name in ("a", "b"):
            body = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + os.urandom(1_000_000)
            bodies.append((origin.add(f"/persistent/{name}.jpg", body, "image/jpeg"), body))
        failures: list[str] = []

        def run(i: int) -> None:
            with httpx.Client(proxy=squid.proxy, timeout=FETCH_TIMEOUT) as c:
                for n in range(STREAMED_FETCHES // CLIENTS):
                    url, body = bodies[(i + n) % len(bodies)]
                    try:
                        r = c.get(url)
                    except httpx.HTTPError as e:
                        failures.append(f"{url}: {e!r}")
                        continue
                    if r.status_code != 200 or r.content != body:
                        failures.append(f"{url}: {r.status_code}, {len(r.content)} bytes")

        threads = [threading.Thread(target=run, args=(i,)) for i in range(CLIENTS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert failures == []
        # Every client kept its one connection to Squid.
        assert len(squid.client_connections()) == CLIENTS, sorted(squid.client_connections())
    finally:
        assert g.stop() == 0, g.log_text()[-3000:]


def multipart(name: str, data: bytes, content_type: str) -> tuple[bytes, str]:
    """A browser's form upload: a text field and one file."""
    boundary = "----vigil" + hashlib.sha1(data).hexdigest()[:16]
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="caption"\r\n\r\nholiday\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
            f"Content-Type: {content_type}\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"


def upload(squid: SquidProcess, url: str, body: bytes, content_type: str) -> httpx.Response:
    with httpx.Client(proxy=squid.proxy, timeout=FETCH_TIMEOUT) as c:
        return c.post(url, content=body, headers={"Content-Type": content_type})


@pytest.mark.parametrize("mode", ["block", "monitor"])
def test_an_upload_of_a_known_photo_is_caught(
    mode: str, origin: Origin, planted: Tree, home: Path, squid_for
) -> None:
    g = start_gateway(home, "--mode", mode)
    try:
        squid = squid_for(g.port, mode)
        known, ctype = multipart("me.jpg", planted.originals["chelsea"], "image/jpeg")
        other, octype = multipart(
            "moon.jpg", (planted.root / "other/moon.jpg").read_bytes(), "image/jpeg"
        )
        before = len(origin.uploads)
        r = upload(squid, f"{origin.base}/{mode}/upload", known, ctype)
        if mode == "block":
            assert r.status_code == 403
            assert r.headers.get("x-vigil") == "blocked"
            assert len(origin.uploads) == before, "the blocked upload reached the origin"
        else:
            assert r.status_code == 200
            assert origin.uploads[-1].body == known
        r = upload(squid, f"{origin.base}/{mode}/upload2", other, octype)
        assert r.status_code == 200
        assert origin.uploads[-1].body == other, "an unknown upload was changed on its way"
        # Monitor mode answers an upload over 32 KiB at once and fingerprints it after.
        found = wait_for("the upload's incident", lambda: jsonl(home), seconds=60)
        # One line per matching fingerprint (MD5, SHA-1, SHA-256, PDQ), all of this upload.
        assert {line["url"] for line in found} == {f"{origin.base}/{mode}/upload"}
        assert all(line["icap"] == "REQMOD" for line in found)
        assert all(line["member"] == "me.jpg" for line in found)
        # A plain body sent chunked (no Content-Length), by a method that is not POST.
        photo = planted.originals["chelsea"]
        before = len(origin.uploads)
        with httpx.Client(proxy=squid.proxy, timeout=FETCH_TIMEOUT) as c:
            r = c.request(
                "PUT", f"{origin.base}/{mode}/put", content=iter([photo[:5000], photo[5000:]])
            )
        if mode == "block":
            assert r.status_code == 403
            assert len(origin.uploads) == before, "the blocked upload reached the origin"
        else:
            assert r.status_code == 200
            assert origin.uploads[-1].body == photo
        both = {f"{origin.base}/{mode}/upload", f"{origin.base}/{mode}/put"}
        wait_for("the PUT's incident", lambda: {line["url"] for line in jsonl(home)} == both, 60)
    finally:
        assert g.stop() == 0, g.log_text()[-3000:]


# -- an enrolled gateway: incidents in the server's API ---------------------------------------


@pytest.mark.parametrize("mode", ["monitor", "block"])
def test_an_enrolled_gateway_reports_to_the_server_with_client_user_and_url(
    mode: str, server: Server, origin: Origin, planted: Tree, tmp_path: Path, squid_for
) -> None:
    home = tmp_path / "gw-enrolled"
    home.mkdir()
    name = unique("squid-gw")
    done = run_cli(
        "agent", "enroll", "--home", str(home), "--server", server.url,
        "--token", server.secret("token"), "--name", name,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    (home / "agent.toml").write_text('heartbeat = "1s"\ncatalog_poll = "2s"\n')
    g = start_gateway(home, "--mode", mode)
    try:
        squid = squid_for(g.port, mode, auth=True)
        key = server.api_key("admin")
        known = (planted.root / "alt/astronaut-mirror.jpg").read_bytes()
        url = origin.add(f"/{name}/astronaut.jpg", known, "image/jpeg")
        unknown = (planted.root / "other/horse.jpg").read_bytes()
        other = origin.add(f"/{name}/horse.jpg", unknown, "image/jpeg")

        def reported() -> bool:
            # Until the signed catalog arrived, the home's own (empty) one matches nothing.
            status, _, data = raw_get(squid, url)
            if mode == "monitor":
                assert status == 200 and data == known
            else:
                assert status in (200, 403)
            return bool(api_incidents(server, key, name))

        wait_for("the incident in the API", reported)
        found = api_incidents(server, key, name)
        assert len(found) == 1
        incident = found[0]
        assert incident["path"] == url
        assert incident["client"] == "127.0.0.1"
        assert incident["owner"] is None
        assert incident["user"] == PROXY_USER
        assert incident["detection"] == "gateway"
        assert incident["entry"]["id"] == "500"
        assert incident["kind"] == "pdq"
        if mode == "block":
            assert raw_get(squid, url)[0] == 403
        status, _, data = raw_get(squid, other)
        assert status == 200 and data == unknown
        assert len(api_incidents(server, key, name)) == 1
    finally:
        assert g.stop() == 0, g.log_text()[-3000:]
