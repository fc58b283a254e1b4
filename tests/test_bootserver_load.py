"""The boot server under load and abuse, over real sockets: 1,000 idle connections, a slowloris head,
descriptors run out, clients that hang up, handlers that raise, the token in every encoding.

Behaviour only: timeouts here are generous bounds on waiting, never asserted durations (the
latencies are measured in bench/bootserver_load.py)."""

from __future__ import annotations

import http.client
import ipaddress
import logging
import os
import resource
import select
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import provision.install.bootserver as bootserver
from provision.install.bootserver import BootServer, redact, redact_text
from provision.install.httpd import HttpServer
from provision.install.httpmsg import HttpRequest, Limits, Response
from provision.model.catalog import Catalog
from provision.store.state import HostState, StateStore
from tests.conftest import PROFILES
from tests.support.procs import free_port, running

COMPUTE = "inferno-host-compute-1"
LOGGER = "provision.install.bootserver"


@pytest.fixture
def many_fds() -> Iterator[int]:
    """RLIMIT_NOFILE raised for this process (client and server share it), restored after."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 4096 if hard == resource.RLIM_INFINITY else min(hard, 4096)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, want), hard))
    try:
        yield max(soft, want)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def call(
    port: int, method: str, path: str, body: bytes | None = None, timeout: float = 10
) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def start_install(store: StateStore, host: str) -> str:
    run = store.create_run(host, "install")
    store.set_host_state(host, HostState.provisioning)
    return store.issue_token(run.id, host, 600)


def wait_until(what: str, ok: Callable[[], bool], bound_s: float = 30) -> None:
    deadline = time.monotonic() + bound_s
    while not ok():
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.05)


def lines(caplog: pytest.LogCaptureFixture, needle: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if needle in r.getMessage()]


def no_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    assert all(r.exc_info is None for r in caplog.records)
    assert "Traceback" not in caplog.text
    assert all("\n" not in r.getMessage() for r in caplog.records if r.name == LOGGER)


def test_an_installer_is_answered_with_1000_idle_connections_open(
    many_fds: int, catalog: Catalog, store: StateStore
) -> None:
    idle = min(1000, (many_fds - 200) // 2)
    if idle < 200:
        pytest.skip(f"RLIMIT_NOFILE allows only {many_fds} descriptors")
    token = start_install(store, COMPUTE)
    # A long head timeout: the idle connections must still be there when the installer asks.
    with BootServer(catalog, store, ("127.0.0.1", 0), limits=Limits(head_timeout_s=600)) as srv:
        wait_until("the workers started", lambda: srv.http.threads == 32)
        threads = threading.active_count()
        socks: list[socket.socket] = []
        try:
            for i in range(idle):
                s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
                if i % 2:  # half never send a byte, half a head that never ends
                    s.sendall(b"GET /ks/x HTTP/1.1\r\nHost: boot\r\n")
                socks.append(s)
            wait_until("all idle connections held", lambda: srv.http.pending_heads == idle)
            assert threading.active_count() <= threads + 1  # no thread per connection
            status, body = call(srv.port, "GET", f"/ks/{COMPUTE}?token={token}")
            assert status == 200 and f"Kickstart for {COMPUTE} " in body.decode()
            assert srv.http.pending_heads == idle  # they are still open, still without a worker
        finally:
            for s in socks:
                s.close()


def test_a_slowloris_head_is_cut_off_at_the_head_timeout(
    catalog: Catalog, store: StateStore, caplog: pytest.LogCaptureFixture
) -> None:
    """A byte every 0.25 s keeps any per-read timeout happy; the head's deadline still ends it."""
    caplog.set_level(logging.INFO, logger=LOGGER)
    head = f"GET /ipxe/{COMPUTE} HTTP/1.1\r\nHost: boot\r\nX-Slow: {'a' * 60}\r\n\r\n".encode()
    with BootServer(catalog, store, ("127.0.0.1", 0), limits=Limits(head_timeout_s=1.0)) as srv:
        sent, closed = 0, False
        with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as s:
            for byte in head:
                try:
                    s.sendall(bytes([byte]))
                except OSError:
                    closed = True
                    break
                sent += 1
                if select.select([s], [], [], 0.25)[0]:
                    try:
                        closed = s.recv(1024) == b""
                    except ConnectionResetError:
                        closed = True
                    break
        assert closed and sent < len(head)
        wait_until("the cut logged", lambda: bool(lines(caplog, "no complete request head within 1 s")))
        assert call(srv.port, "GET", f"/ipxe/{COMPUTE}")[0] == 403  # and the server goes on
    assert len(lines(caplog, "no complete request head")) == 1
    no_tracebacks(caplog)


SERVER = """
import logging, resource, sys
from pathlib import Path
from provision.install.bootserver import BootServer
from provision.install.httpd import Limits
from provision.model.catalog import load_catalog
from provision.store.state import StateStore

logging.basicConfig(level=logging.INFO, stream=sys.stderr)
port, profiles, state = int(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
catalog = load_catalog(profiles)
with StateStore.open(state) as store:
    # Descriptors run out long before the connection cap: accept() itself fails with EMFILE.
    resource.setrlimit(resource.RLIMIT_NOFILE, (64, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
    BootServer(catalog, store, ("127.0.0.1", port), limits=Limits(max_connections=1000)).serve_forever()
"""


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_out_of_descriptors_the_server_backs_off_and_still_answers(tmp_path: Path) -> None:
    port, log = free_port(), tmp_path / "server.log"
    argv = [sys.executable, "-c", SERVER, str(port), str(PROFILES), str(tmp_path / "state")]
    with running(argv, log=log, port=port, cwd=Path(__file__).parent.parent) as proc:
        idle = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(100)]
        try:
            wait_until(
                "EMFILE met", lambda: "cannot accept connections (Too many open files)" in log.read_text()
            )
            before = cpu_s(proc.pid)
            time.sleep(2)
            # Not spinning on a listen socket that stays readable (the old server burned a core here).
            assert cpu_s(proc.pid) - before < 1.0
            # Idle connections are closed, oldest first, to make room for the installer.
            assert call(port, "GET", f"/ipxe/{COMPUTE}", timeout=30)[0] == 403
        finally:
            for s in idle:
                s.close()
        assert call(port, "GET", f"/ipxe/{COMPUTE}", timeout=30)[0] == 403
        assert proc.poll() is None
    text = log.read_text()
    assert "Traceback" not in text
    assert text.count("cannot accept connections") == 1  # once a minute at most


def test_clients_that_hang_up_early_are_one_line_each(
    tmp_path: Path, catalog: Catalog, store: StateStore, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    (tmp_path / "big.img").write_bytes(os.urandom(1024) * 32 * 1024)  # 32 MiB: more than buffers hold
    with BootServer(catalog, store, ("127.0.0.1", 0), images_dir=tmp_path) as srv:
        with socket.create_connection(("127.0.0.1", srv.port)) as s:
            s.sendall(b"GET /ipxe/")
        wait_until("head hang-up", lambda: bool(lines(caplog, "hung up before its request was complete")))

        with socket.create_connection(("127.0.0.1", srv.port)) as s:
            s.sendall(f"POST /callback/{COMPUTE}/started HTTP/1.0\r\nContent-Length: 1000\r\n\r\n".encode())
            s.sendall(b"x" * 10)
        wait_until("body hang-up", lambda: bool(lines(caplog, "after 10 of 1000 body bytes")))

        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.connect(("127.0.0.1", srv.port))
        s.sendall(b"GET /images/big.img HTTP/1.0\r\n\r\n")
        assert s.recv(12) == b"HTTP/1.0 200"
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()  # a reset in the middle of the image
        wait_until("answer hang-up", lambda: bool(lines(caplog, "hung up during GET /images/big.img")))
        assert call(srv.port, "GET", "/images/nothing") == (404, b"")
    assert len(lines(caplog, "hung up")) == 3
    assert store.events(host=COMPUTE) == []
    no_tracebacks(caplog)


def test_slow_bodies_and_slow_readers_hold_no_worker(
    tmp_path: Path, catalog: Catalog, store: StateStore, caplog: pytest.LogCaptureFixture
) -> None:
    """With one worker, a body that never ends and an image nobody reads: the installer's request
    is still answered; then the body gets 408 and the reader is cut off, one line each."""
    caplog.set_level(logging.INFO, logger=LOGGER)
    (tmp_path / "big.img").write_bytes(bytes(32 << 20))
    limits = Limits(workers=1, body_timeout_s=1.0)
    with BootServer(catalog, store, ("127.0.0.1", 0), images_dir=tmp_path, limits=limits) as srv:
        slow_body = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
        reader = socket.socket()
        try:
            slow_body.sendall(
                f"POST /callback/{COMPUTE}/started HTTP/1.0\r\nContent-Length: 100\r\n\r\nab".encode()
            )
            reader.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            reader.connect(("127.0.0.1", srv.port))
            reader.sendall(b"GET /images/big.img HTTP/1.0\r\n\r\n")
            assert reader.recv(12) == b"HTTP/1.0 200"  # and then it reads no more
            assert call(srv.port, "GET", f"/ipxe/{COMPUTE}")[0] == 403
            slow_body.settimeout(30)
            assert slow_body.recv(64).split(b" ")[1] == b"408"
            wait_until("the reader cut off", lambda: bool(lines(caplog, "nothing read for 1 s")))
        finally:
            slow_body.close()
            reader.close()
    assert len(lines(caplog, "body not complete within 1 s (2 of 100 bytes) -> 408")) == 1
    assert store.events(host=COMPUTE) == []
    no_tracebacks(caplog)


def test_image_downloads_are_not_limited_to_the_worker_pool(
    tmp_path: Path, catalog: Catalog, store: StateStore
) -> None:
    """A rack boots at once: with 2 workers, 8 initrd downloads are all under way together (were a
    download to hold a worker, the third would wait for one of the first two to finish)."""
    (tmp_path / "initrd.img").write_bytes(bytes(32 << 20))
    clients = [socket.socket() for _ in range(8)]
    try:
        with BootServer(
            catalog, store, ("127.0.0.1", 0), images_dir=tmp_path, limits=Limits(workers=2)
        ) as srv:
            for s in clients:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                s.settimeout(10)
                s.connect(("127.0.0.1", srv.port))
                s.sendall(b"GET /images/initrd.img HTTP/1.0\r\n\r\n")
            assert [s.recv(12) for s in clients] == [b"HTTP/1.0 200"] * 8
            assert call(srv.port, "GET", f"/ipxe/{COMPUTE}")[0] == 403
    finally:
        for s in clients:
            s.close()


def test_garbage_and_oversized_heads_are_answered_400_and_431(
    catalog: Catalog, store: StateStore, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    with BootServer(catalog, store, ("127.0.0.1", 0)) as srv:
        for head, status in (
            (b"HELLO\r\n\r\n", b"400"),
            (b"GET / HTTP/1.0\r\nX: " + b"a" * 20_000 + b"\r\n\r\n", b"431"),
        ):
            with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as s:
                s.sendall(head)
                assert s.recv(64).split(b" ")[1] == status
        assert call(srv.port, "PUT", f"/ks/{COMPUTE}")[0] == 501
    assert len(lines(caplog, "-> 400")) == len(lines(caplog, "-> 431")) == 1
    no_tracebacks(caplog)


def test_a_handler_exception_is_a_500_and_one_line(
    catalog: Catalog, store: StateStore, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What an impossible address in hosts.yaml did to the kickstart render: the installer gets a
    500 (and retries), the log one line naming the request, the token redacted from both."""
    caplog.set_level(logging.INFO, logger=LOGGER)
    token = start_install(store, COMPUTE)

    def render(*args: object) -> str:
        raise ipaddress.AddressValueError(f"999.0.2.11/99 in the kickstart of token={token} {token}")

    monkeypatch.setattr(bootserver, "kickstart_for", render)
    with BootServer(catalog, store, ("127.0.0.1", 0)) as srv:
        assert call(srv.port, "GET", f"/ks/{COMPUTE}?token={token}") == (500, b"")
        assert call(srv.port, "GET", f"/ipxe/{COMPUTE}?token={token}")[0] == 200  # still serving
        assert [r.status for r in srv.requests] == [500, 200]
    (line,) = lines(caplog, f"/ks/{COMPUTE}")
    assert line.levelno == logging.ERROR
    assert line.getMessage().startswith(
        f"127.0.0.1 GET /ks/{COMPUTE}?token=<redacted> -> 500 (AddressValueError: "
    )
    assert token not in caplog.text
    no_tracebacks(caplog)


def test_the_engine_answers_500_when_the_handler_itself_raises(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)

    def handle(req: HttpRequest) -> Response:
        raise RuntimeError(f"bug while answering {req.target}")

    srv = HttpServer(("127.0.0.1", 0), handle, Limits(workers=2), redact, redact_text)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        assert call(srv.address[1], "GET", "/x?token=SECRET-1") == (500, b"")
        assert call(srv.address[1], "GET", "/y") == (500, b"")
    finally:
        srv.shutdown()
        thread.join(timeout=10)
    assert len(lines(caplog, "-> 500 (RuntimeError")) == 2 and "SECRET-1" not in caplog.text
    no_tracebacks(caplog)


def _every_byte(text: str) -> str:
    return "".join(f"%{b:02X}" for b in text.encode())


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ("?tok%65n={T}", 200),  # parse_qs decodes the name: the server takes it as the token
        ("?%74%6F%6B%65%6E={T}", 200),
        ("?token={E}", 200),
        ("?a=1&token={T}&token={T}", 200),
        ("?TOKEN={T}", 403),
        ("?tok%2565n={T}", 403),
        ("?token+={T}", 403),
        ("%3Ftoken%3D{T}", 404),
        ("/token={T}", 404),
        ("?next=%2Fks%3Ftoken%3D{T}", 403),
        ("?token={T}%0A127.0.0.1%20GET%20/forged%20-%3E%20200", 403),
    ],
)
def test_the_token_is_redacted_in_every_encoding(
    catalog: Catalog, store: StateStore, caplog: pytest.LogCaptureFixture, query: str, status: int
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    token = start_install(store, COMPUTE)
    target = f"/ipxe/{COMPUTE}" + query.format(T=token, E=_every_byte(token))
    with BootServer(catalog, store, ("127.0.0.1", 0)) as srv:
        assert call(srv.port, "GET", target)[0] == status
        (record,) = srv.requests
    (line,) = lines(caplog, "-> ")
    for secret in (token, _every_byte(token), token.replace("-", "%2D")):
        assert secret not in caplog.text and secret not in record.path
    assert "<redacted>" in record.path and record.path in line.getMessage()
    no_tracebacks(caplog)


def test_redact_decodes_before_it_redacts() -> None:
    assert redact("/ks/h?tok%65n=S3CRET&x=1") == "/ks/h?token=<redacted>&x=1"
    assert redact("/ks/h?x=a+b&Token=S3CRET") == "/ks/h?x=a%20b&Token=<redacted>"
    assert redact("/ks/h%3Ftoken%3DS3CRET") == "/ks/h?token=<redacted>"
    assert redact("/ks/h?token=S3%0d%0aCRET") == "/ks/h?token=<redacted>"
    assert redact("/images/vmlinuz") == "/images/vmlinuz"
    assert (
        redact_text("bad\nline token=S3CRET and S3CRET", "S3CRET")
        == "bad line token=<redacted> and <redacted>"
    )


def test_a_request_being_answered_when_the_server_stops_still_gets_its_answer() -> None:
    """An install callback's handler has recorded it (which wakes the run, which stops the embedded
    server): the installer must still get its 204, not a reset it would retry against no server."""
    entered, release = threading.Event(), threading.Event()

    def handle(req: HttpRequest) -> Response:
        if req.target == "/slow":
            entered.set()
            release.wait(10)
        return Response(204)

    srv = HttpServer(("127.0.0.1", 0), handle, Limits(workers=2), redact, redact_text)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    got: list[object] = []
    client = threading.Thread(target=lambda: got.append(_try_call(srv.address[1], "POST", "/slow")))
    client.start()
    try:
        assert entered.wait(10)
        stopping = threading.Thread(target=srv.shutdown)
        stopping.start()
        wait_until("the server to begin stopping", srv._draining.is_set)
        release.set()  # the handler ends after the stop began
        stopping.join(10)
        client.join(10)
        assert not stopping.is_alive() and thread.is_alive() is False
    finally:
        release.set()
        srv.shutdown()
        thread.join(timeout=10)
    assert got == [(204, b"")]


def _try_call(port: int, method: str, path: str) -> object:
    try:
        return call(port, method, path)
    except OSError as exc:
        return exc
