"""Adapter: the boot server's HTTP/1.0 engine, built to stay up under idle, slow and hostile clients.

One selector thread does all the waiting on the network: it accepts connections, reads each request
head and body, and writes each answer (images by non-blocking `sendfile`). A fixed pool of worker
threads only computes answers (the handler: tokens, the store, rendering) and never touches a
socket. So an idle, slowloris, slow-body or slow-reading connection costs a descriptor and a buffer,
never a worker, and an installer's request is answered while thousands of them are open.

- **Timeouts**: a request head must be complete within `head_timeout_s` (10 s) of the accept,
  whatever trickles in meanwhile; the body within `body_timeout_s` (30 s) of the head (else 408);
  an answer whose reader takes nothing for `body_timeout_s` is cut off. Heads over
  `max_head_bytes` (16 KiB) get 431; bodies over `max_body_bytes` (64 KiB) are not read (the
  handler answers, 413 for the boot server).
- **Bounds**: `workers` threads (32); at most `max_connections` client connections (from the
  descriptor limit: the soft limit less 128, at most 4096) and `max_queued` (128) requests waiting
  for a worker. Past either, accepting stops and new connections wait in the listen queue (1024).
- **Out of descriptors** (EMFILE and kin), or at `max_connections`: connections that have sent no
  complete head for `shed_after_s` (1 s) are closed, oldest first, to make room; with none that old,
  accepting pauses (50 ms, doubling to 1 s) instead of spinning on a listen socket that stays
  readable. One warning line a minute at most.
- **Logging**: one line per event, never a traceback: a client that hangs up, is too slow or sends
  no HTTP is a line at INFO; a handler that raises is answered 500 with one ERROR line. Request
  targets and error messages in these lines go through the caller's `redact` and `redact_text`.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import logging
import os
import queue
import selectors
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import BinaryIO

from provision.install.httpmsg import BadRequest, HttpRequest, Limits, Response, open_regular, response_head

log = logging.getLogger("provision.install.bootserver")

_OUT_OF_RESOURCES = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
_HEAD, _BODY, _WORK, _WRITE, _DRAIN = "head", "body", "work", "write", "drain"

Handler = Callable[[HttpRequest], Response]


@dataclass(eq=False)
class _Conn:
    sock: socket.socket
    addr: str
    since: float
    state: str = _HEAD
    deadline: float = 0.0
    buf: bytearray = field(default_factory=bytearray)
    req: HttpRequest | None = None
    what: str = "its request"  # the request as log lines name it (redacted)
    out: memoryview = field(default_factory=lambda: memoryview(b""))
    response: Response | None = None  # set by a worker
    file: BinaryIO | None = None
    sent: int = 0
    size: int = 0
    unread: bool = False  # a body left unread: drain it before closing


class HttpServer:
    def __init__(
        self,
        address: tuple[str, int],
        handle: Handler,
        limits: Limits,
        redact: Callable[[str], str],
        redact_text: Callable[[str], str],
    ) -> None:
        """`redact(target)` and `redact_text(message)`: how a request target and an error message
        appear in a log line (the caller knows its secrets)."""
        self.limits, self._handle = limits, handle
        self._redact, self._redact_text = redact, redact_text
        family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self._listener = socket.create_server(address, family=family, backlog=1024)
        self._listener.setblocking(False)
        self.address: tuple[str, int] = self._listener.getsockname()[:2]
        self._sel = selectors.DefaultSelector()
        self._jobs: queue.Queue[_Conn | None] = queue.Queue()
        self._answers: collections.deque[_Conn] = collections.deque()  # from the workers
        self._heads: dict[_Conn, None] = {}  # connections still sending their head, oldest first
        self._conns: set[_Conn] = set()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_w.setblocking(False)
        self._last_warning, self._next_scan = -3600.0, 0.0
        self._paused_until, self._backoff = 0.0, 0.0
        self._stopping, self._loop_done = threading.Event(), threading.Event()
        self._draining = threading.Event()  # shutting down: accept nothing, finish what is answered
        self._in_flight = 0  # requests with a handler running or an answer being written (per round)
        self._loop_done.set()
        self._workers: list[threading.Thread] = []
        self._closed = False

    @property
    def pending_heads(self) -> int:
        """Connections open without a complete request head (for tests and benchmarks)."""
        return len(self._heads)

    @property
    def threads(self) -> int:
        return len(self._workers)

    # -- life cycle ---------------------------------------------------------------------------------
    def serve_forever(self) -> None:
        self._loop_done.clear()
        while len(self._workers) < self.limits.workers:
            t = threading.Thread(target=self._work, name=f"bootserver-{len(self._workers)}", daemon=True)
            t.start()
            self._workers.append(t)
        try:
            self._loop()
        finally:
            for conn in list(self._conns):
                self._close(conn)
            self._loop_done.set()

    def shutdown(self, drain_s: float = 2.0) -> None:
        """Stop the loop (from any thread), close every socket, let the workers finish.

        Requests already being answered (their handler running, or their answer being written) get
        up to `drain_s` to finish first, with no new connection accepted meanwhile: a handler may
        have acted (an install callback recorded, which wakes the run that then stops this server),
        and its client, told nothing, would retry it against a server that is gone."""
        if self._closed:
            return
        self._closed = True
        if not self._loop_done.is_set():
            self._in_flight = -1  # unknown until the loop's next round counts it
            self._draining.set()
            self._wake()
            deadline = time.monotonic() + drain_s
            while self._in_flight != 0 and time.monotonic() < deadline and not self._loop_done.is_set():
                time.sleep(0.01)
        self._stopping.set()
        self._wake()
        self._loop_done.wait(timeout=5)
        for _ in self._workers:
            self._jobs.put(None)
        deadline = time.monotonic() + 5
        for t in self._workers:
            t.join(timeout=max(0.0, deadline - time.monotonic()))
        for conn in self._answers:
            conn.sock.close()
            if conn.file is not None:
                conn.file.close()
        for s in (self._listener, self._wake_r, self._wake_w):
            s.close()
        self._sel.close()

    def _wake(self) -> None:
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")

    # -- the selector thread ------------------------------------------------------------------------
    def _loop(self) -> None:
        self._sel.register(self._wake_r, selectors.EVENT_READ, "wake")
        while not self._stopping.is_set():
            try:
                self._round()
            except Exception as exc:  # the loop is the server: it never dies of one bad round
                log.error("boot server: %s: %s", type(exc).__name__, self._redact_text(str(exc)))
                time.sleep(0.05)

    def _round(self) -> None:
        now = time.monotonic()
        want = now >= self._paused_until and self._can_take(now) and not self._draining.is_set()
        if want != (self._listener in self._sel.get_map()):
            if want:
                self._sel.register(self._listener, selectors.EVENT_READ, "accept")
            else:
                self._sel.unregister(self._listener)
        timeout = 1.0 if want else 0.05
        if self._heads:
            timeout = min(timeout, next(iter(self._heads)).deadline - now)
        if len(self._conns) > len(self._heads):
            timeout = min(timeout, 0.25)
        for key, _ in self._sel.select(max(0.0, timeout)):
            if key.data == "wake":
                self._wake_r.recv(4096)
            elif key.data == "accept":
                self._accept()
            elif key.data in self._conns:  # not closed earlier in this round
                self._guard(key.data, self._write if key.data.state == _WRITE else self._read)
        while self._answers:
            self._guard(self._answers.popleft(), self._answer)
        self._expire(time.monotonic())
        if self._draining.is_set():
            busy = sum(1 for c in self._conns if c.state in (_WORK, _WRITE))
            self._in_flight = busy + len(self._answers)

    def _guard(self, conn: _Conn, step: Callable[[_Conn], None]) -> None:
        """A bug in one connection's step closes that connection (one line), never the loop."""
        try:
            step(conn)
        except Exception as exc:
            why = f"{type(exc).__name__}: {self._redact_text(str(exc))}"
            log.error("client %s: %s: %s; connection closed", conn.addr, conn.what, why)
            self._close(conn)

    def _full(self) -> bool:
        return len(self._conns) >= self.limits.max_connections

    def _sheddable(self, now: float) -> _Conn | None:
        oldest = next(iter(self._heads), None)
        return oldest if oldest is not None and now - oldest.since >= self.limits.shed_after_s else None

    def _can_take(self, now: float) -> bool:
        """Whether to listen: room in the queue, and room for a connection (or one to shed)."""
        if self._jobs.qsize() >= self.limits.max_queued:
            return False
        return not self._full() or self._sheddable(now) is not None

    def _shed(self, why: str) -> bool:
        oldest = self._sheddable(time.monotonic())
        if oldest is None:
            return False
        log.info("client %s: idle connection closed to make room (%s)", oldest.addr, why)
        self._close(oldest)
        return True

    def _accept(self) -> None:
        """Accept what is waiting; out of descriptors, shed an idle connection or pause."""
        for _ in range(256):
            if self._jobs.qsize() >= self.limits.max_queued:
                return  # the next round stops listening until the workers catch up
            if self._full() and not self._shed("at the connection limit"):
                return
            try:
                sock, addr = self._listener.accept()
            except BlockingIOError:
                return
            except OSError as exc:
                if exc.errno in _OUT_OF_RESOURCES and self._shed(exc.strerror or "out of descriptors"):
                    continue
                if exc.errno == errno.ECONNABORTED:
                    continue
                now = time.monotonic()
                if now - self._last_warning >= 60:
                    self._last_warning = now
                    log.warning(
                        "boot server: cannot accept connections (%s): closing idle ones, pausing "
                        "accepts up to 1 s at a time (this warning at most once a minute)",
                        exc.strerror or exc,
                    )
                self._backoff = min(1.0, max(0.05, self._backoff * 2))
                self._paused_until = now + self._backoff
                return
            sock.setblocking(False)
            now = time.monotonic()
            conn = _Conn(sock, str(addr[0]), now, deadline=now + self.limits.head_timeout_s)
            self._conns.add(conn)
            self._heads[conn] = None
            self._sel.register(sock, selectors.EVENT_READ, conn)
            self._backoff = 0.0

    def _read(self, conn: _Conn) -> None:
        try:
            data = conn.sock.recv(65536)
        except BlockingIOError:
            return
        except OSError as exc:
            if conn.state != _DRAIN:
                log.info("client %s: connection failed during %s (%s)", conn.addr, conn.what, exc.strerror)
            self._close(conn)
            return
        if conn.state == _DRAIN:
            conn.sent += len(data)
            if not data or conn.sent > 1 << 20:
                self._close(conn)
            return
        if not data:
            if conn.state == _BODY and conn.req is not None:
                got, want = len(conn.buf), conn.req.declared
                log.info(
                    "client %s hung up during %s: after %d of %d body bytes", conn.addr, conn.what, got, want
                )
            elif conn.buf:
                log.info("client %s hung up before its request was complete", conn.addr)
            self._close(conn)
            return
        conn.buf += data
        if conn.state == _HEAD:
            self._head(conn, len(conn.buf) - len(data))
        elif conn.req is not None and len(conn.buf) >= conn.req.declared:
            self._dispatch(conn)

    def _head(self, conn: _Conn, searched: int) -> None:
        start = max(0, searched - 3)
        ends = ((conn.buf.find(b"\r\n\r\n", start), 4), (conn.buf.find(b"\n\n", start), 2))
        found = sorted((i, i + n) for i, n in ends if i >= 0)
        if not found or found[0][0] > self.limits.max_head_bytes:
            if len(conn.buf) > self.limits.max_head_bytes:
                self._refuse(conn, BadRequest(431, f"request head over {self.limits.max_head_bytes} bytes"))
            return
        del self._heads[conn]
        head_end, body_start = found[0]
        head = bytes(conn.buf[:head_end])
        del conn.buf[:body_start]
        try:
            req = HttpRequest.parse(conn.addr, head)
        except BadRequest as exc:
            self._refuse(conn, exc)
            return
        conn.req, conn.what = req, f"{req.method} {self._redact(req.target)}"
        if req.declared > self.limits.max_body_bytes or len(conn.buf) >= req.declared:
            self._dispatch(conn)
            return
        conn.state, conn.deadline = _BODY, time.monotonic() + self.limits.body_timeout_s

    def _refuse(self, conn: _Conn, exc: BadRequest) -> None:
        log.info("client %s: %s -> %d", conn.addr, self._redact_text(str(exc)), exc.status)
        self._heads.pop(conn, None)
        conn.unread = True
        self._start_write(conn, Response(exc.status), None)

    def _dispatch(self, conn: _Conn) -> None:
        assert conn.req is not None
        if conn.req.declared <= self.limits.max_body_bytes:
            conn.req.body = bytes(conn.buf[: conn.req.declared])
        else:
            conn.unread = True
        conn.buf = bytearray()
        conn.state = _WORK
        self._sel.unregister(conn.sock)
        self._jobs.put(conn)

    def _answer(self, conn: _Conn) -> None:
        if conn not in self._conns:  # closed meanwhile (shutdown)
            if conn.file is not None:
                conn.file.close()
            return
        self._sel.register(conn.sock, selectors.EVENT_WRITE, conn)
        self._start_write(conn, conn.response or Response(500), conn.file)

    def _start_write(self, conn: _Conn, response: Response, file: BinaryIO | None) -> None:
        size = os.fstat(file.fileno()).st_size if file is not None else len(response.body)
        head = response_head(response.status, size, response.content_type, response.no_store)
        head_only = conn.req is not None and conn.req.method == "HEAD"
        if head_only and file is not None:
            file.close()
            file = None
        conn.out = memoryview(head if head_only or file is not None else head + response.body)
        conn.file, conn.sent, conn.size = file, 0, 0 if head_only else size
        conn.state, conn.deadline = _WRITE, time.monotonic() + self.limits.body_timeout_s
        self._sel.modify(conn.sock, selectors.EVENT_WRITE, conn)

    def _write(self, conn: _Conn) -> None:
        try:
            if conn.out:
                conn.out = conn.out[conn.sock.send(conn.out) :]
            elif conn.file is not None:
                n = os.sendfile(
                    conn.sock.fileno(), conn.file.fileno(), conn.sent, min(1 << 20, conn.size - conn.sent)
                )
                conn.sent += n or conn.size  # 0: the file shrank under us; stop
        except BlockingIOError:
            return
        except OSError as exc:
            hung_up = isinstance(exc, (BrokenPipeError, ConnectionResetError, ConnectionAbortedError))
            how = "hung up during" if hung_up else "failed sending the answer to"
            log.info(
                "client %s %s %s", conn.addr, how, f"{conn.what} ({exc.strerror}; {conn.sent} bytes sent)"
            )
            self._close(conn)
            return
        conn.deadline = time.monotonic() + self.limits.body_timeout_s
        if conn.out or (conn.file is not None and conn.sent < conn.size):
            return
        if not conn.unread:
            self._close(conn)
            return
        # Read what is left of the request before closing, or the close resets the connection and
        # the client may lose the answer before reading it.
        with contextlib.suppress(OSError):
            conn.sock.shutdown(socket.SHUT_WR)
        conn.state, conn.deadline, conn.sent = _DRAIN, time.monotonic() + 2.0, 0
        self._sel.modify(conn.sock, selectors.EVENT_READ, conn)

    def _expire(self, now: float) -> None:
        while self._heads:
            conn = next(iter(self._heads))
            if now < conn.deadline:
                break
            why = f"no complete request head within {self.limits.head_timeout_s:g} s ({len(conn.buf)} bytes)"
            log.info("client %s: %s; closed", conn.addr, why)
            self._close(conn)
        if now < self._next_scan:
            return
        self._next_scan = now + 0.2
        limit = self.limits.body_timeout_s
        for conn in [c for c in self._conns if c.state in (_BODY, _WRITE, _DRAIN) and now >= c.deadline]:
            if conn.state == _BODY and conn.req is not None:
                why = f"body not complete within {limit:g} s ({len(conn.buf)} of {conn.req.declared} bytes)"
                log.info("client %s: %s: %s -> 408", conn.addr, conn.what, why)
                conn.unread = False
                self._start_write(conn, Response(408), None)
                continue
            if conn.state == _WRITE:
                why = f"nothing read for {limit:g} s ({conn.sent} of {conn.size} bytes sent)"
                log.info("client %s: %s: %s; closed", conn.addr, conn.what, why)
            self._close(conn)

    def _close(self, conn: _Conn) -> None:
        if conn not in self._conns:
            return
        self._conns.discard(conn)
        self._heads.pop(conn, None)
        with contextlib.suppress(KeyError, ValueError):  # not registered while a worker has it
            self._sel.unregister(conn.sock)
        conn.sock.close()
        if conn.file is not None:
            conn.file.close()

    # -- the workers: answers, never sockets ------------------------------------------------------
    def _work(self) -> None:
        while (conn := self._jobs.get()) is not None:
            response: Response | None = None
            file = None
            try:
                assert conn.req is not None
                response = self._handle(conn.req)
                if response.file is not None:
                    file = open_regular(response.file)
            except Exception as exc:  # answered 500; a bug here must not cost a worker or a traceback
                why = f"{type(exc).__name__}: {self._redact_text(str(exc))}"
                log.error("%s %s -> 500 (%s)", conn.addr, conn.what, why)
                response = Response(500)
            conn.response, conn.file = response, file
            self._answers.append(conn)
            self._wake()
