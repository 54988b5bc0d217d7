"""The fingerprinting processes, driven from the event loop.

Each worker is a process forked with the engine prepared (decoders, compiled kernels and
libraries warm), joined to the gateway by a socket pair: the event loop writes a job and awaits
its answer on that socket like any other connection, with nothing between them. (pebble, which
the scanner uses, hands each task through two threads and a shared pipe: 1.3-1.8 ms a body,
measured against 0 for a socket pair, on a 300 KB JPEG that takes 8 ms to fingerprint.)

Workers are not forked from the gateway itself but from a *zygote*: a process forked once at
start, before the gateway starts any thread, which stays single-threaded and forks each worker
on request, handing the worker's end of its socket back over a Unix socket (SCM_RIGHTS). So a
worker replaced later (after a timeout or a crash) is as safe a fork as the first ones: a fork
copies only the forking thread, and a lock another thread held would stay locked in the child.

A job that overruns its time has its worker killed and replaced; a worker that dies (a decoder
crash) is replaced and its job fails with `WorkerDied`; an exception raised by the job comes
back as itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pickle
import signal
import socket
import struct
import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from vigil.errors import VigilError

log = logging.getLogger(__name__)

J = TypeVar("J")
R = TypeVar("R")

_LENGTH = struct.Struct("!Q")


class WorkerDied(VigilError):
    """The worker ended while it held a job (killed, or crashed in native code)."""


class _Unpicklable(VigilError):
    """An exception from a job that could not be sent back as itself."""


def _frame(obj: object) -> bytes:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    return _LENGTH.pack(len(data)) + data


def _recv_exactly(sock: socket.socket, n: int) -> bytearray | None:
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        k = sock.recv_into(view[got:])
        if k == 0:
            return None
        got += k
    return buf  # pickle reads it as it is: a body is not copied once more


def _serve(sock: socket.socket, task: Callable[[Any], Any]) -> None:
    """A worker's life: a job in, its result (or its exception) out, until the gateway goes."""
    while True:
        head = _recv_exactly(sock, _LENGTH.size)
        if head is None:
            return
        body = _recv_exactly(sock, _LENGTH.unpack(head)[0])
        if body is None:
            return
        try:
            reply: tuple[str, Any] = ("ok", task(pickle.loads(body)))
        except Exception as e:  # noqa: BLE001 — sent back to the gateway, raised there
            reply = ("error", e)
        try:
            data = _frame(reply)
        except Exception as e:  # noqa: BLE001 — an exception that does not pickle
            data = _frame(("error", _Unpicklable(f"{type(reply[1]).__name__}: {e}")))
        sock.sendall(data)


def _zygote(control: socket.socket, task: Callable[[Any], Any], init: Callable[[], None]) -> None:
    """Fork a worker for every request on `control`; hand back its socket and pid."""
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # workers are reaped by the kernel
    # A terminal's Ctrl-C and systemd's stop signal reach every process of the group: the
    # gateway finishes what it serves, so the zygote and the workers (who inherit this) end
    # only when their socket closes.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    while True:
        try:
            request = control.recv(1)
        except InterruptedError:
            continue
        if not request:
            return
        mine, theirs = socket.socketpair()
        pid = os.fork()
        if pid == 0:
            control.close()
            mine.close()
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            code = 0
            try:
                init()
                _serve(theirs, task)
            except BaseException:  # noqa: BLE001 — a worker ends without unwinding the gateway's stack
                code = 1
            os._exit(code)
        theirs.close()
        socket.send_fds(control, [_LENGTH.pack(pid)], [mine.fileno()])
        mine.close()


class _Worker:
    def __init__(self, pid: int, sock: socket.socket) -> None:
        self.pid = pid
        self.sock = sock
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def connect(self) -> None:
        self.sock.setblocking(False)
        self.reader, self.writer = await asyncio.open_unix_connection(sock=self.sock, limit=2**16)

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)
        if self.writer is not None:
            try:
                self.writer.close()
            except RuntimeError:  # its event loop has ended
                self.sock.close()
        else:
            self.sock.close()


class Workers(Generic[J, R]):
    """`size` worker processes running `task(job)`; `await run(job, timeout)` from the loop."""

    def __init__(
        self, size: int, task: Callable[[J], R], init: Callable[[], None] = lambda: None
    ) -> None:
        if size < 1:
            raise ValueError("at least one worker")
        self.size = size
        self.replaced = 0  # workers killed or dead and replaced
        self._control, theirs = socket.socketpair()
        self._control_lock = threading.Lock()
        pid = os.fork()
        if pid == 0:
            self._control.close()
            code = 0
            try:
                _zygote(theirs, task, init)
            except BaseException:  # noqa: BLE001
                code = 1
            os._exit(code)
        theirs.close()
        self._zygote_pid = pid
        self._pending = [self._spawn() for _ in range(size)]
        self._idle: asyncio.Queue[_Worker] | None = None
        self._all: set[_Worker] = set()
        self._closed = False

    def _spawn(self) -> _Worker:
        """A new worker from the zygote (blocking: a fork, a few milliseconds)."""
        with self._control_lock:
            self._control.sendall(b"w")
            data, fds, _, _ = socket.recv_fds(self._control, _LENGTH.size, 1)
        if len(data) != _LENGTH.size or len(fds) != 1:
            for fd in fds:
                os.close(fd)
            raise WorkerDied("the worker zygote is gone")
        return _Worker(_LENGTH.unpack(data)[0], socket.socket(fileno=fds[0]))

    async def _ready(self) -> asyncio.Queue[_Worker]:
        if self._idle is None:
            self._idle = asyncio.Queue()
            for w in self._pending:
                await w.connect()
                self._all.add(w)
                self._idle.put_nowait(w)
            self._pending = []
        return self._idle

    @property
    def pids(self) -> list[int]:
        """The workers' process ids (started or not yet connected)."""
        return sorted(w.pid for w in (*self._all, *self._pending))

    async def run(self, job: J, timeout: float) -> R:
        """`task(job)` in a free worker (waiting for one); TimeoutError after `timeout` seconds
        (the worker is killed and replaced), WorkerDied when it ends meanwhile, or the job's
        own exception."""
        idle = await self._ready()
        w = await idle.get()
        assert w.reader is not None and w.writer is not None
        answer = asyncio.ensure_future(self._exchange(w, job))
        try:
            reply = await asyncio.wait_for(asyncio.shield(answer), timeout)
        except TimeoutError:
            answer.cancel()
            await self._replace(w)
            raise
        except asyncio.CancelledError:
            # The request went away: the worker finishes this job (within its time) before it
            # takes another.
            overrun = asyncio.get_running_loop().call_later(timeout, answer.cancel)

            def ended(f: asyncio.Future[Any]) -> None:
                overrun.cancel()
                self._after(w, f)

            answer.add_done_callback(ended)
            raise
        except (asyncio.IncompleteReadError, ConnectionError, OSError) as e:
            await self._replace(w)
            raise WorkerDied(f"a fingerprinting process ended during the job ({e})") from None
        idle.put_nowait(w)
        status, value = reply
        if status == "error":
            raise value
        return value  # type: ignore[no-any-return]

    async def _exchange(self, w: _Worker, job: J) -> tuple[str, Any]:
        assert w.reader is not None and w.writer is not None
        w.writer.write(_frame(job))
        await w.writer.drain()
        head = await w.reader.readexactly(_LENGTH.size)
        body = await w.reader.readexactly(_LENGTH.unpack(head)[0])
        return pickle.loads(body)  # type: ignore[no-any-return]

    def _after(self, w: _Worker, done: asyncio.Future[Any]) -> None:
        """A job whose caller went away ended: its worker is free again, or replaced."""
        if done.cancelled() or done.exception() is not None:
            asyncio.ensure_future(self._replace(w))
        elif self._idle is not None and not self._closed:
            self._idle.put_nowait(w)

    async def _replace(self, w: _Worker) -> None:
        w.kill()
        self._all.discard(w)
        if self._closed:
            return
        self.replaced += 1
        loop = asyncio.get_running_loop()
        try:
            new = await loop.run_in_executor(None, self._spawn)
            await new.connect()
        except (OSError, WorkerDied) as e:
            log.error("could not start a fingerprinting process: %s", e)
            return
        self._all.add(new)
        if self._idle is not None:
            self._idle.put_nowait(new)

    def close(self) -> None:
        """Stop every worker and the zygote."""
        self._closed = True
        for w in [*self._all, *self._pending]:
            w.kill()
        self._all.clear()
        self._pending = []
        self._control.close()
        with contextlib.suppress(ProcessLookupError):
            os.kill(self._zygote_pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(self._zygote_pid, 0)
