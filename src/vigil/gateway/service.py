"""The ICAP service on asyncio: OPTIONS, RESPMOD (downloads) and REQMOD (uploads).

One task per connection, persistent connections, requests in order on each. The event loop only
moves bytes and decides from a preview; fingerprinting runs in worker processes (vigil.gateway.
worker) and matching and reporting in a thread, so one slow body never stalls another
connection. What the gateway does with a body:

- sniffed from the preview (Content-Encoding undone) as neither image, video nor archive, or
  declared larger than `max_object_size`: 204 from the preview, never read further;
- otherwise 100 Continue and the body is read (in memory, then a temporary file). Block mode:
  the whole body, fingerprinted and matched, then a block page for a match, else 204 where the
  client allows it or 200 echoing the message whole. Monitor mode: a body longer than
  `stream_after` is answered at once and echoed as it arrives (Squid 5.7 stops reading a fast
  origin until the service answers), its copy fingerprinted once whole; a shorter one as in
  block mode. Every match is written durably (spool or incidents.jsonl) once found.
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import email.utils
import hashlib
import logging
import time
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from vigil import __version__, kinds
from vigil.engine import Engine
from vigil.fingerprint.mediatype import SNIFF_BYTES, sniff_media
from vigil.gateway import protocol, worker
from vigil.gateway.config import GatewayConfig
from vigil.gateway.content import (
    Body,
    TooLarge,
    Unsupported,
    decode_head,
    multipart_boundary,
)
from vigil.gateway.incidents import Exchange, Incidents, report
from vigil.gateway.metrics import Metrics
from vigil.gateway.protocol import (
    LAST_CHUNK,
    ChunkedBody,
    HttpHead,
    IcapError,
    Request,
    chunk,
    response,
)
from vigil.gateway.workers import WorkerDied, Workers
from vigil.scan.results import Match

log = logging.getLogger("vigil.gateway")

# At most this much of an echoed body is gathered into one chunk.
ECHO_GATHER = 256 * 1024

# The bound on the wait for each piece of the body being read, per connection task.
_STALL: contextvars.ContextVar[_Stall] = contextvars.ContextVar("stall")
# What became of the request being served (for the log line), per connection task.
_OUTCOME: contextvars.ContextVar[str] = contextvars.ContextVar("outcome", default="-")

# Bodies answered already (stream mode) waiting for a fingerprinting thread, per thread.
BACKLOG_PER_WORKER = 4

SERVICES = {"respmod": "RESPMOD", "reqmod": "REQMOD"}


@dataclass
class Verdict:
    """What fingerprinting one body found."""

    matches: list[Match] = field(default_factory=list)
    reason: str = "clean"  # the pass reason when nothing matched
    errors: list[str] = field(default_factory=list)


class _Stall:
    """At most `seconds` for each piece of a body while one is awaited, with one timer per
    request rather than one per piece (a 1 MB body comes in ~140 pieces, and every timer
    armed and cancelled stays in the event loop's heap until its time: measured, that heap
    took more of the gateway's time than the bodies did)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.loop = asyncio.get_running_loop()
        self.since: float | None = None  # when the piece awaited now was first awaited
        self.timeout = asyncio.timeout(None)
        self.handle: asyncio.TimerHandle | None = None

    async def __aenter__(self) -> _Stall:
        await self.timeout.__aenter__()
        self.handle = self.loop.call_later(self.seconds, self._check)
        return self

    async def __aexit__(self, *exc: Any) -> None:
        if self.handle is not None:
            self.handle.cancel()
        await self.timeout.__aexit__(*exc)  # a TimeoutError when it expired

    def waiting(self) -> None:
        self.since = self.loop.time()

    def done(self) -> None:
        self.since = None

    def _check(self) -> None:
        now = self.loop.time()
        if self.since is not None and now - self.since >= self.seconds:
            self.handle = None
            self.timeout.reschedule(now)  # expires now: TimeoutError where it is awaited
            return
        self.handle = self.loop.call_at((self.since or now) + self.seconds, self._check)


class _Answer:
    """The writer of one connection, remembering whether this request's answer has begun
    (after that, an error can only close the connection)."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self.started = False

    async def send(self, data: bytes) -> None:
        self.started = True
        self.writer.write(data)
        await self.writer.drain()


class Gateway:
    """The ICAP server: `await serve()` until `stop()`."""

    def __init__(
        self,
        cfg: GatewayConfig,
        engine: Engine,
        incidents: Incidents,
        metrics: Metrics,
        catalog_version: Callable[[], str | None],
        pool: Workers[worker.Job, worker.Found],
    ) -> None:
        self.cfg = cfg
        self.engine = engine.with_options(
            fast_pdq=cfg.fast_pdq or engine.options.fast_pdq,
            limits=dataclasses.replace(
                engine.options.limits,
                item_seconds=cfg.object_seconds,
                max_file_size=cfg.max_object_size,
            ),
        )
        self.incidents = incidents
        self.metrics = metrics
        self.catalog_version = catalog_version
        self.pool = pool
        # Matching and durable reporting (short; off the event loop: the reports are synced).
        self.reporting = ThreadPoolExecutor(max_workers=2, thread_name_prefix="report")
        self.active = 0
        self.busy = 0  # requests being served
        self._stop: asyncio.Event | None = None
        self._istag = ("", "")
        self._date = (0, "")
        self._background: set[asyncio.Task[Verdict]] = set()
        # Streamed bodies being fingerprinted or waiting for a worker, at most.
        self._queue = asyncio.Semaphore(cfg.workers * BACKLOG_PER_WORKER)
        for name, value, _, _ in cfg.limits_table():
            metrics.limits.labels(name).set(value)

    # -- the server --------------------------------------------------------------------------

    async def serve(self, ready: Callable[[list[str]], None] = lambda _: None) -> None:
        """Listen until stop(); `ready` gets the addresses listened on."""
        self._stop = asyncio.Event()
        server = await asyncio.start_server(
            self._connection,
            self.cfg.host,
            self.cfg.port,
            limit=protocol.READ_BUFFER,
            backlog=1024,
            ssl=self.cfg.tls,
            ssl_handshake_timeout=self.cfg.read_seconds if self.cfg.tls else None,
        )
        addresses = [f"{s.getsockname()[0]}:{s.getsockname()[1]}" for s in server.sockets or []]
        ready(addresses)
        await self._stop.wait()
        # No new connections; idle ones are closed when the loop ends (not awaited: from
        # Python 3.12 wait_closed() waits for every connection, idle keep-alives included).
        server.close()
        # Requests in progress are finished (their matches reported), within a bound.
        deadline = time.monotonic() + self.cfg.object_seconds + self.cfg.read_seconds
        while self.busy and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        # Bodies already answered (stream mode) are still fingerprinted and reported.
        if self._background:
            await asyncio.wait(self._background, timeout=self.cfg.object_seconds + 10)
        self.reporting.shutdown(wait=True, cancel_futures=True)

    def _stop_requested(self) -> bool:
        return self._stop is not None and self._stop.is_set()

    def stop(self) -> None:
        """End serve() (from the loop's thread or a signal handler)."""
        if self._stop is not None:
            self._stop.set()

    def istag(self) -> str:
        """The service's tag: changes whenever the catalog build (or the mode) does, so the
        proxy drops what it cached from answers made with the old one."""
        build = self.engine.matcher().build_id
        if self._istag[0] != build:
            digest = hashlib.sha256(f"{build}\0{self.cfg.mode}".encode()).hexdigest()[:24]
            self._istag = (build, f'"vigil-{digest}"')
        return self._istag[1]

    def _headers(self) -> list[tuple[str, str]]:
        now = int(time.time())
        if self._date[0] != now:  # formatted once a second, not for every answer
            self._date = (now, email.utils.formatdate(now, usegmt=True))
        return [
            ("ISTag", self.istag()),
            ("Date", self._date[1]),
            ("Server", f"vigil-gateway/{__version__}"),
        ]

    # -- a connection ------------------------------------------------------------------------

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.active >= self.cfg.max_connections:
            self.metrics.refused.inc()
            self.metrics.errors.labels("503").inc()
            try:
                writer.write(response(503, [*self._headers(), ("Connection", "close")]))
                await writer.drain()
            except (ConnectionError, OSError):
                pass
            writer.close()
            return
        self.active += 1
        self.metrics.connections.inc()
        try:
            while await self._one(reader, writer):
                pass
        finally:
            self.active -= 1
            self.metrics.connections.dec()
            writer.close()
            try:
                await writer.wait_closed()
            except (ConnectionError, OSError):
                pass

    async def _one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Serve one request; False when the connection must close."""
        answer = _Answer(writer)
        method = "?"
        try:
            # Between requests a connection may idle (the proxy keeps it for the next one); once
            # a request has begun, its head must come within read_seconds. One timer for both.
            # (asyncio.timeout, not wait_for: wait_for makes a task of every read.)
            begun = False
            try:
                async with asyncio.timeout(self.cfg.idle_seconds) as deadline:
                    first = await reader.read(1)
                    if not first:
                        return False
                    begun = True
                    deadline.reschedule(asyncio.get_running_loop().time() + self.cfg.read_seconds)
                    req = await protocol.read_request(reader, first)
            except TimeoutError:
                if not begun:
                    return False  # idle too long: closed without a word, as HTTP servers do
                raise
            if req is None:
                return False
            method = req.method
            self.busy += 1
            try:
                keep = await self._dispatch(req, reader, answer)
            finally:
                self.busy -= 1
            # After a stop, the request in progress is finished, then the connection closed.
            return keep and req.keep_alive and not self._stop_requested()
        except IcapError as e:
            log.info("bad ICAP request (%d): %s", e.status, e)
            await self._error(answer, method, e.status)
            return False
        except TimeoutError:
            await self._error(answer, method, 408)
            return False
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            return False  # the client went away: nothing to answer
        except Exception:
            log.exception("failed to serve an ICAP request")
            await self._error(answer, method, 500)
            return False

    async def _error(self, answer: _Answer, method: str, status: int) -> None:
        self.metrics.errors.labels(str(status)).inc()
        if answer.started:
            return
        self.metrics.requests.labels(_label(method), str(status)).inc()
        try:
            await answer.send(response(status, [*self._headers(), ("Connection", "close")]))
        except (ConnectionError, OSError):
            pass

    async def _dispatch(self, req: Request, reader: asyncio.StreamReader, answer: _Answer) -> bool:
        if req.method not in ("OPTIONS", "RESPMOD", "REQMOD"):
            raise IcapError(501, f"method {req.method[:20]!r} not implemented")
        wanted = SERVICES.get(req.service)
        if wanted is None:
            raise IcapError(404, f"no service {req.service[:80]!r} (services: respmod, reqmod)")
        if req.method == "OPTIONS":
            if req.body_kind is not None:
                await ChunkedBody(reader).drain()
            await answer.send(self._options(wanted))
            self.metrics.requests.labels("OPTIONS", "200").inc()
            return True
        if req.method != wanted:
            raise IcapError(405, f"{req.method} is not served by /{req.service}")
        started = time.monotonic()
        _OUTCOME.set("blocked")
        async with _Stall(self.cfg.read_seconds) as stall:
            _STALL.set(stall)
            status = await self._modify(req, reader, answer)
        took = time.monotonic() - started
        self.metrics.requests.labels(req.method, str(status)).inc()
        self.metrics.latency.labels(req.method).observe(took)
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "%s %s from %s: %d (%s) in %.1f ms",
                req.method,
                request_url(req.req_head),
                req.headers.get("X-Client-IP") or "-",
                status,
                _OUTCOME.get(),
                took * 1000,
            )
        return True

    def _options(self, method: str) -> bytes:
        headers = [
            ("Methods", method),
            ("Service", f"Vigil gateway {__version__} ({self.cfg.mode})"),
            *self._headers(),
            ("Max-Connections", str(self.cfg.max_connections)),
            ("Options-TTL", str(self.cfg.options_ttl)),
            *([("Allow", "204")] if self.cfg.offer_204 else []),
        ]
        preview = self.cfg.preview_for(method)
        if preview >= 0:
            # Every body is previewed: its type is sniffed from content, never from its name.
            headers += [("Preview", str(preview)), ("Transfer-Preview", "*")]
        if self.cfg.transfer_ignore:
            headers.append(("Transfer-Ignore", ", ".join(self.cfg.transfer_ignore)))
        if self.cfg.transfer_complete:
            headers.append(("Transfer-Complete", ", ".join(self.cfg.transfer_complete)))
        return response(200, headers)

    # -- RESPMOD and REQMOD ------------------------------------------------------------------

    async def _modify(self, req: Request, reader: asyncio.StreamReader, answer: _Answer) -> int:
        """Serve one RESPMOD or REQMOD; the ICAP status answered."""
        if req.method == "RESPMOD":
            http, body_name = req.res_head, "res-body"
        else:
            http, body_name = req.req_head, "req-body"
        if http is None:
            raise IcapError(400, f"{req.method} without its encapsulated HTTP head")
        kind = req.body_kind
        if kind not in (None, body_name):
            raise IcapError(400, f"{req.method} with a {kind}")
        preview = req.preview
        if kind is None:
            self._passed("no_body")
            return await self._pass(req, http, answer, None, None, in_preview=preview is not None)

        body = ChunkedBody(reader)
        store = Body(self.cfg.memory_per_object, self.cfg.temp_dir)
        try:
            # The preview, or (without one) enough of the body to sniff.
            while preview is not None or store.size < SNIFF_BYTES:
                piece = await self._piece(body)
                if piece is None:
                    break
                store.write(piece)
            complete = body.ieof if preview is not None else body.done
            reason = self._pass_reason(req, http, store, complete)
            if reason is not None:
                self._passed(reason)
                if preview is not None:
                    return await self._pass(req, http, answer, None, None, in_preview=True)
                return await self._pass(req, http, answer, store, body, in_preview=False)
            exchange = Exchange(
                url=request_url(req.req_head),
                client=req.headers.get("X-Client-IP"),
                user=req.headers.get("X-Client-Username"),
                method=req.method,
            )
            continued = False
            if preview is not None and not complete:
                await answer.send(b"ICAP/1.0 100 Continue\r\n\r\n")
                body.resume()
                continued = True
            stream = self.cfg.stream and self.cfg.mode == "monitor"
            while (piece := await self._piece(body)) is not None:
                store.write(piece)
                if stream and store.size > self.cfg.stream_after:
                    return await self._stream_through(req, http, answer, store, body, exchange)
                if store.size > self.cfg.max_object_size:
                    self._passed("too_large")
                    return await self._pass(req, http, answer, store, body, in_preview=False)
            verdict = await self._fingerprint(store, http, exchange)
            if verdict.matches and self.cfg.mode == "block":
                self.metrics.blocked.inc()
                await answer.send(self._block_page())
                return 200
            self._passed("monitor" if verdict.matches else verdict.reason)
            return await self._pass(
                req, http, answer, store, None, in_preview=preview is not None and not continued
            )
        finally:
            store.close()

    async def _stream_through(
        self,
        req: Request,
        http: HttpHead,
        answer: _Answer,
        store: Body,
        body: ChunkedBody,
        exchange: Exchange,
    ) -> int:
        """Monitor mode, `stream`: answer 200 at once and echo the body as it arrives (some
        proxies stop reading their origin until the service answers); the copy kept meanwhile
        is fingerprinted once the body is whole, its matches reported after the answer."""
        sections = [("req-hdr" if req.method == "REQMOD" else "res-hdr", http.raw)]
        body_name = "req-body" if req.method == "REQMOD" else "res-body"
        # A place in the fingerprinting queue before answering: when the workers are behind,
        # answers wait (the proxy holds its clients a little longer) rather than the gateway
        # queueing ever more bodies answered already, and reporting them ever later.
        await self._queue.acquire()
        self.metrics.backlog.inc()
        try:
            await answer.send(response(200, self._headers(), sections, body_name))
        except BaseException:
            self._give_back()
            raise
        keep = True

        def kept(piece: bytes) -> None:
            nonlocal keep
            if keep:
                store.write(piece)
                keep = store.size <= self.cfg.max_object_size

        try:
            await self._echo(answer, store, body, kept)
        except BaseException:
            self._give_back()
            raise
        if not keep:
            self._give_back()
            self._passed("too_large")
            return 200
        # The connection is free for the next request while this body is fingerprinted; its
        # place in the queue is given back when that is done.
        _OUTCOME.set("streamed")
        task = asyncio.create_task(self._fingerprint(store, http, exchange))
        self._background.add(task)
        task.add_done_callback(self._after_stream)
        return 200

    async def _echo(
        self,
        answer: _Answer,
        store: Body | None,
        rest: ChunkedBody | None,
        seen: Callable[[bytes], None] = lambda _: None,
    ) -> None:
        """The body of a 200 that echoes the message: what was read, then the rest as it
        arrives (each piece also to `seen`), then the last chunk."""
        writer = answer.writer
        loop = asyncio.get_running_loop()
        # Pieces already received are read without waiting: they are gathered and written as
        # one chunk when the reading next waits (Squid sends 16 KB chunks: a write and a chunk
        # for Squid to parse each cost more than the copy).
        gathered: list[bytes] = []
        size = 0

        def flush() -> None:
            nonlocal size
            if gathered:
                writer.write(chunk(b"".join(gathered)))
                gathered.clear()
                size = 0

        async def write(data: bytes) -> None:
            nonlocal size
            if not gathered:
                loop.call_soon(flush)
            gathered.append(data)
            size += len(data)
            if size >= ECHO_GATHER:
                flush()
            # Read and write at once: the proxy reads the echo while it sends the rest (a
            # client that only reads once it has sent all would wait on us, and we on it); a
            # body held in a file is not copied into memory whole.
            if writer.transport.get_write_buffer_size() > self.cfg.memory_per_object:
                async with asyncio.timeout(self.cfg.read_seconds):
                    await writer.drain()

        try:
            if store is not None:
                for data in store.pieces():
                    await write(data)
            if rest is not None:
                while (piece := await self._piece(rest)) is not None:
                    await write(piece)
                    seen(piece)
        finally:
            flush()
        await answer.send(LAST_CHUNK)

    def _give_back(self) -> None:
        self._queue.release()
        self.metrics.backlog.dec()

    def _after_stream(self, task: asyncio.Task[Verdict]) -> None:
        self._background.discard(task)
        self._give_back()
        if not task.cancelled() and (e := task.exception()) is not None:
            log.error("fingerprinting a streamed body failed", exc_info=e)
        elif not task.cancelled():
            verdict = task.result()
            self.metrics.passes.labels("monitor" if verdict.matches else verdict.reason).inc()

    def _passed(self, reason: str) -> None:
        _OUTCOME.set(reason)
        self.metrics.passes.labels(reason).inc()

    async def _piece(self, body: ChunkedBody) -> bytes | None:
        stall = _STALL.get()
        stall.waiting()
        piece = await body.piece()
        stall.done()
        if piece is not None:
            self.metrics.bytes.inc(len(piece))
        return piece

    def _pass_reason(self, req: Request, http: HttpHead, store: Body, complete: bool) -> str | None:
        """Why this body passes without being read further; None to fingerprint it."""
        length = http.content_length()
        if length is not None and length > self.cfg.max_object_size:
            return "too_large"
        if req.method == "RESPMOD" and http.status() == 206 and not http.whole_range():
            # A piece of an object (a range request): a piece rarely matches anything and the
            # pieces are not put together; counted, so that ranged traffic shows.
            return "partial"
        if req.method == "REQMOD" and multipart_boundary(http.headers.get("Content-Type")):
            return None  # the parts are sniffed one by one once the upload is whole
        head = store.head(SNIFF_BYTES)
        if not head:
            return None if not complete else "no_body"
        decoded = decode_head(head, http.content_encodings(), self.cfg.max_object_size)
        if decoded is None:
            return "unsupported_encoding"
        if not decoded and not complete:
            return None
        return None if sniff_media(decoded) is not None else "not_media"

    async def _pass(
        self,
        req: Request,
        http: HttpHead,
        answer: _Answer,
        store: Body | None,
        rest: ChunkedBody | None,
        *,
        in_preview: bool,
    ) -> int:
        """Let the message through unchanged: 204 where allowed, else 200 echoing it whole
        (what was read, then what is still to come, streamed)."""
        if in_preview or req.allow_204:
            if rest is not None and not rest.done:
                while await self._piece(rest) is not None:
                    pass
            await answer.send(response(204, self._headers()))
            return 204
        sections: list[tuple[str, bytes]] = []
        if req.method == "REQMOD":
            sections.append(("req-hdr", http.raw))
            body_name = "req-body"
        else:
            sections.append(("res-hdr", http.raw))
            body_name = "res-body"
        if req.body_kind is None:
            await answer.send(response(200, self._headers(), sections, None))
            return 200
        await answer.send(response(200, self._headers(), sections, body_name))
        await self._echo(answer, store, rest)
        return 200

    def _block_page(self) -> bytes:
        page = self.cfg.block_page.encode("utf-8")
        head = (
            "HTTP/1.1 403 Forbidden\r\n"
            "Content-Type: text/html; charset=utf-8\r\n"
            f"Content-Length: {len(page)}\r\n"
            "Cache-Control: no-store\r\n"
            "X-Vigil: blocked\r\n"
            "\r\n"
        ).encode("latin-1")
        return response(200, self._headers(), [("res-hdr", head)], "res-body") + (
            chunk(page) + LAST_CHUNK
        )

    # -- fingerprinting ----------------------------------------------------------------------

    def _fingerprint(
        self, store: Body, http: HttpHead, exchange: Exchange
    ) -> Coroutine[Any, Any, Verdict]:
        """Fingerprint the body in a worker process, then match and report it here. The body
        is held from now until the worker is done with it (the caller may close it at once)."""
        job = worker.Job(
            name=exchange.url,
            codings=http.content_encodings(),
            boundary=multipart_boundary(http.headers.get("Content-Type")),
            limit=self.cfg.max_object_size,
            memory=self.cfg.memory_per_object,
            data=store.data(),
            path=store.path,
        )
        return self._run(job, store.hold(), exchange)

    async def _run(self, job: worker.Job, store: Body, exchange: Exchange) -> Verdict:
        try:
            found = await self.pool.run(job, self.cfg.object_seconds)
        except TimeoutError:
            self.metrics.replaced.inc()
            log.warning(
                "%s: fingerprinting took over %gs: passed", exchange.url, self.cfg.object_seconds
            )
            return Verdict(reason="timeout")
        except WorkerDied as e:
            self.metrics.replaced.inc()
            log.error("%s: %s: passed", exchange.url, e)
            return Verdict(reason="error", errors=[str(e)])
        except TooLarge:
            return Verdict(reason="too_large")
        except Unsupported:
            return Verdict(reason="unsupported_encoding")
        except Exception as e:  # noqa: BLE001 — a body that cannot be read passes, logged
            log.info("%s: not fingerprinted: %s", exchange.url, e)
            return Verdict(reason="error", errors=[str(e)])
        finally:
            store.close()
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.reporting, self._report, found, exchange)

    def _report(self, found: worker.Found, exchange: Exchange) -> Verdict:
        """In a reporting thread: match against the build in use, keep every match's report
        durably before returning."""
        matcher = self.engine.matcher()
        matches: list[Match] = []
        errors: list[str] = []
        for member, fingerprinted in found.objects:
            for m in self.engine.match(fingerprinted.items, matcher=matcher):
                if member is not None:
                    m = dataclasses.replace(
                        m, member=f"{member}/{m.member}" if m.member else member
                    )
                matches.append(m)
            errors += [str(e) for e in fingerprinted.errors]
        version = self.catalog_version()
        # One finding per (member, set, entry): an exact copy matches by MD5, SHA-1, SHA-256
        # and PDQ at once. Every kind's report is kept (the server makes them one incident with
        # its `kinds`); the strongest kind names it here.
        groups: dict[tuple[str | None, str, str | None], list[Match]] = {}
        for m in matches:
            groups.setdefault((m.member, m.hashset, m.entry.id), []).append(m)
        for group in groups.values():
            group.sort(key=lambda m: kinds.kind(m.kind).rank, reverse=True)
            added = self.incidents.add([report(m, exchange, version) for m in group], exchange)
            m = group[0]
            log.warning(
                "match%s: %s%s from %s user %s (set %s, entry %s, %s, distance %d, %s)",
                "" if added else " (again)",
                exchange.url,
                f" [{m.member}]" if m.member else "",
                exchange.client or "-",
                exchange.user or "-",
                m.hashset,
                m.entry.id,
                "+".join(x.kind for x in group),
                m.distance,
                self.cfg.mode,
            )
        if matches:
            self.metrics.matches.labels(self.cfg.mode).inc(len(matches))
        self.metrics.fingerprinted.inc()
        return _verdict(matches, errors)


def _verdict(matches: list[Match], errors: list[str]) -> Verdict:
    return Verdict(matches, "error" if errors and not matches else "clean", errors)


def _label(method: str) -> str:
    return method if method in ("OPTIONS", "RESPMOD", "REQMOD") else "other"


def request_url(head: HttpHead | None) -> str:
    """The URL of the encapsulated HTTP request (absolute in a proxy's request line; else its
    Host and path)."""
    if head is None:
        return "unknown:"
    parts = head.start.split(" ")
    target = parts[1] if len(parts) >= 2 else ""
    if "://" in target:
        return target
    host = head.headers.get("Host")
    if host and target.startswith("/"):
        return f"http://{host}{target}"
    return target or "unknown:"
