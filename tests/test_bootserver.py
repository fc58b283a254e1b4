"""The boot server over real HTTP on loopback: tokens, local boot after install, callbacks, images."""

from __future__ import annotations

import base64
import hashlib
import http.client
import logging
import select
import socket
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from pykickstart.constants import KS_SCRIPT_PRE

from provision.install.bootserver import CALLBACKS, BootServer, parse_host_keys
from provision.install.render import dnsmasq_for, kickstart_for
from provision.model.catalog import Catalog, load_catalog
from provision.model.hosts import DiskId
from provision.store.state import HostState, RunStatus, StateStore
from tests.conftest import require_tool
from tests.support.procs import free_port
from tests.test_kickstart import _drop_boot_disks, parse

COMPUTE = "inferno-host-compute-1"
MASTER = "inferno-host-master"


@pytest.fixture
def server(tmp_path: Path, catalog: Catalog, store: StateStore) -> Iterator[BootServer]:
    images = tmp_path / "images"
    images.mkdir()
    (images / "vmlinuz").write_bytes(b"KERNEL" * 1000)
    (images / "initrd.img").write_bytes(b"INITRD" * 1000)
    with BootServer(catalog, store, ("127.0.0.1", 0), images_dir=images) as srv:
        yield srv


def call(
    srv: BootServer, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def start_install(store: StateStore, host: str, ttl_s: float = 600) -> tuple[str, str]:
    run = store.create_run(host, "install")
    store.set_host_state(host, HostState.provisioning)
    return run.id, store.issue_token(run.id, host, ttl_s)


@pytest.fixture
def host_keys(tmp_path: Path) -> tuple[str, list[str]]:
    """Real host keys and the fingerprints ssh-keygen itself prints for them."""
    keygen = require_tool("ssh-keygen")
    lines, prints = [], []
    for kind in ("ed25519", "ecdsa"):
        key = tmp_path / f"ssh_host_{kind}_key"
        subprocess.run([keygen, "-q", "-t", kind, "-N", "", "-f", str(key)], check=True)
        lines.append(key.with_suffix(".pub").read_text().strip())
        out = subprocess.run([keygen, "-l", "-f", f"{key}.pub"], check=True, capture_output=True, text=True)
        prints.append(out.stdout.split()[1])
    return "\n".join(lines) + "\n", prints


def test_ipxe_and_kickstart_only_with_the_runs_token(server: BootServer, store: StateStore) -> None:
    _, token = start_install(store, COMPUTE)
    status, body = call(server, "GET", f"/ipxe/{COMPUTE}?token={token}")
    assert status == 200
    script = body.decode()
    assert script.startswith("#!ipxe\n")
    assert f"kernel {server.url}/images/vmlinuz initrd=initrd.img " in script
    assert f"inst.ks={server.url}/ks/{COMPUTE}?token={token} " in script
    assert "BOOTIF=01-${netX/mac:hexhyp}" in script and "inst.repo=http://10.0.1.5/rocky/9.3/BaseOS" in script
    assert f"initrd --name initrd.img {server.url}/images/initrd.img" in script
    status, body = call(server, "GET", f"/ks/{COMPUTE}?token={token}")
    assert status == 200
    assert f"Authorization: Bearer {token}" in body.decode()
    assert f"{server.url}/callback/{COMPUTE}/finished" in body.decode()


@pytest.mark.parametrize("kind", ["ipxe", "ks"])
def test_missing_wrong_expired_and_other_hosts_tokens_get_403_and_nothing(
    server: BootServer, store: StateStore, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="provision.install.bootserver")
    _, compute_token = start_install(store, COMPUTE)
    _, master_token = start_install(store, MASTER)
    _, expired = start_install(store, COMPUTE, ttl_s=0.05)
    time.sleep(0.2)  # past the expiry; the status asserted is 403, not any timing
    for path in (
        f"/{kind}/{COMPUTE}",
        f"/{kind}/{COMPUTE}?token=",
        f"/{kind}/{COMPUTE}?token=not-the-token-at-all",
        f"/{kind}/{COMPUTE}?token={master_token}",
        f"/{kind}/{COMPUTE}?token={expired}",
    ):
        status, body = call(server, "GET", path)
        assert (status, body) == (403, b""), path
    assert call(server, "GET", f"/{kind}/no-such-host?token={compute_token}") == (404, b"")
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "-> 403" in logged and "token=<redacted>" in logged
    for token in (compute_token, master_token, expired):
        assert token not in logged
        assert all(token not in r.path for r in server.requests)


def test_finished_callback_pins_host_keys_and_then_pxe_boots_local(
    server: BootServer, store: StateStore, host_keys: tuple[str, list[str]]
) -> None:
    body, fingerprints = host_keys
    run_id, token = start_install(store, COMPUTE)
    auth = {"Authorization": f"Bearer {token}", "Content-Type": "text/plain"}
    assert call(server, "POST", f"/callback/{COMPUTE}/started", b"anaconda started", auth)[0] == 204
    assert call(server, "POST", f"/callback/{COMPUTE}/finished", body.encode(), auth)[0] == 204
    events = store.events(host=COMPUTE, run_id=run_id)
    assert [e.kind for e in events] == ["install.started", "install.finished"]
    assert [k["fingerprint"] for k in events[1].payload["host_keys"]] == fingerprints
    assert store.get_host_state(COMPUTE) is HostState.installed
    # Left on PXE, the host boots its disk; its old token opens nothing any more.
    status, script = call(server, "GET", f"/ipxe/{COMPUTE}?token={token}")
    assert status == 200 and script.decode().splitlines()[-1] == "exit 1"
    assert "kernel" not in script.decode()
    assert call(server, "GET", f"/ipxe/{COMPUTE}")[0] == 200
    assert call(server, "GET", f"/ks/{COMPUTE}?token={token}") == (403, b"")
    assert call(server, "POST", f"/callback/{COMPUTE}/finished", body.encode(), auth)[0] == 403
    assert store.get_run(run_id).status is RunStatus.running  # the host run goes on to burn-in


def test_failed_callback_records_the_log_tail_and_closes_the_token(
    server: BootServer, store: StateStore
) -> None:
    run_id, token = start_install(store, MASTER)
    tail = "storage.log: DeviceError: no disks found\n"
    assert call(server, "POST", f"/callback/{MASTER}/failed?token={token}", tail.encode())[0] == 204
    (event,) = store.events(host=MASTER, kind="install.failed")
    assert event.payload["log_tail"] == tail and event.run_id == run_id
    assert store.get_host_state(MASTER) is HostState.provisioning
    assert call(server, "GET", f"/ipxe/{MASTER}?token={token}") == (403, b"")


def test_finished_without_host_keys_is_refused_and_not_recorded(
    server: BootServer, store: StateStore
) -> None:
    _, token = start_install(store, MASTER)
    auth = {"Authorization": f"Bearer {token}"}
    assert call(server, "POST", f"/callback/{MASTER}/finished", b"no keys here\n", auth)[0] == 400
    assert store.events(host=MASTER) == []
    assert call(server, "POST", f"/callback/{MASTER}/rebooted", b"", auth) == (404, b"")
    assert call(server, "POST", f"/callback/{MASTER}/started", b"x" * (65 * 1024), auth)[0] == 413


def test_a_recorded_callback_rings_its_runs_bell_and_a_refused_one_does_not(
    server: BootServer, store: StateStore
) -> None:
    """What wakes `wait_install` in the same controller: the ring comes after the event is committed."""
    run_id, token = start_install(store, MASTER)
    bell = CALLBACKS.listen(run_id)
    try:
        auth = {"Authorization": f"Bearer {token}"}
        assert call(server, "POST", f"/callback/{MASTER}/finished", b"no keys here\n", auth)[0] == 400
        wrong = {"Authorization": "Bearer not-the-token"}
        assert call(server, "POST", f"/callback/{MASTER}/started", b"anaconda started", wrong)[0] == 403
        assert not bell.is_set()
        assert call(server, "POST", f"/callback/{MASTER}/started", b"anaconda started", auth)[0] == 204
        assert bell.is_set()
        assert [e.kind for e in store.events(run_id=run_id)] == ["install.started"]
    finally:
        CALLBACKS.forget(run_id)


def test_images_are_served_by_plain_name_only(server: BootServer) -> None:
    assert call(server, "GET", "/images/vmlinuz") == (200, b"KERNEL" * 1000)
    assert call(server, "GET", "/images/initrd.img")[1] == b"INITRD" * 1000
    for path in (
        "/images/..%2fstate",
        "/images/../images/vmlinuz",
        "/images/missing",
        "/images/.hidden",
        "/",
    ):
        assert call(server, "GET", path) == (404, b""), path


def test_concurrent_hosts_each_get_their_own_answer(server: BootServer, store: StateStore) -> None:
    tokens = {h: start_install(store, h)[1] for h in (COMPUTE, MASTER)}

    def fetch(i: int) -> tuple[str, int, str]:
        host = (COMPUTE, MASTER)[i % 2]
        kind = ("ipxe", "ks")[(i // 2) % 2]
        status, body = call(server, "GET", f"/{kind}/{host}?token={tokens[host]}")
        return host, status, body.decode()

    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(fetch, range(64)))
    assert all(status == 200 for _, status, _ in results)
    for host, _, body in results:
        assert f"/ks/{host}?token={tokens[host]}" in body or f"Kickstart for {host} " in body


def test_parse_host_keys_skips_lines_that_are_not_keys() -> None:
    keys = parse_host_keys("garbage\nssh-ed25519 !!!notbase64\nssh-rsa AAAAB3NzaC1yc2E= root@h\n")
    assert keys == [
        {
            "type": "ssh-rsa",
            "key": "AAAAB3NzaC1yc2E=",
            "fingerprint": "SHA256:" + _fp(b"\x00\x00\x00\x07ssh-rsa"),
        }
    ]


def _fp(blob: bytes) -> str:
    return base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def test_dnsmasq_config_passes_dnsmasq_own_check(tmp_path: Path, catalog: Catalog) -> None:
    dnsmasq = require_tool("dnsmasq")
    text = dnsmasq_for(
        catalog,
        {COMPUTE: "tok-aaaaaaaaaaaa"},
        "http://10.0.2.5:8080",
        "eth9",
        "10.0.2.0/24",
        str(tmp_path),
        ipv6_prefix="fd77::",
    )
    assert "dhcp-host=3c:ec:ef:20:01:10,set:h-inferno-host-compute-1,10.0.2.11,inferno-host-compute-1" in text
    assert (
        "dhcp-boot=tag:ipxe,tag:h-inferno-host-compute-1,"
        "http://10.0.2.5:8080/ipxe/inferno-host-compute-1?token=tok-aaaaaaaaaaaa"
    ) in text
    assert (
        "dhcp-boot=tag:!ipxe,tag:efi64,snponly.efi" in text
        and "dhcp-boot=tag:!ipxe,tag:!efi64,undionly.kpxe" in text
    )
    assert "enable-ra" in text and "dhcp-range=10.0.2.0,static,255.255.255.0,1h" in text
    conf = tmp_path / "dnsmasq.conf"
    conf.write_text(text)
    proc = subprocess.run([dnsmasq, "--test", "-C", str(conf)], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0 and "syntax check OK" in proc.stderr, proc.stderr


def test_kickstart_takes_the_inspected_boot_pair_when_the_inventory_has_none(
    tmp_path: Path, profiles_copy: Path, store: StateStore
) -> None:
    _drop_boot_disks(profiles_copy, COMPUTE)
    pair = (DiskId(wwn="0x5000c500aaaa0001"), DiskId(wwn="0x5000c500aaaa0002"))
    asked: list[str] = []

    def inspected(host: str) -> tuple[DiskId, ...]:
        asked.append(host)
        return pair

    catalog = load_catalog(profiles_copy)
    with BootServer(catalog, store, ("127.0.0.1", 0), inspected=inspected) as srv:
        _, token = start_install(store, COMPUTE)
        status, body = call(srv, "GET", f"/ks/{COMPUTE}?token={token}")
        assert status == 200 and asked == [COMPUTE]
        assert (
            "ignoredisk --only-use=disk/by-id/wwn-0x5000c500aaaa0001,disk/by-id/wwn-0x5000c500aaaa0002\n"
            in (body.decode())
        )
        assert call(srv, "GET", f"/images/nothing?token={token}") == (404, b"")
        assert all(token not in r.path for r in srv.requests)


def test_kickstart_callback_survives_a_boot_server_that_is_not_listening_yet(
    tmp_path: Path, catalog: Catalog, store: StateStore
) -> None:
    """The real %pre script, run by bash with the real curl, first meets a refused port (the
    controller restarting), then the boot server comes up and the callback still lands."""
    bash, _ = require_tool("bash"), require_tool("curl")
    run_id, token = start_install(store, COMPUTE)
    port = free_port()
    text = kickstart_for(catalog, catalog.hosts[COMPUTE], token, f"http://127.0.0.1:{port}")
    handler = parse(text).handler
    (pre,) = [s.script for s in handler.scripts if s.type == KS_SCRIPT_PRE]
    trace = tmp_path / "curl.trace"
    # The trace shows when curl has met the refused port; the script is otherwise the kickstart's own.
    script = pre.replace("curl ", f"curl --trace-ascii {trace} ", 1)
    proc = subprocess.Popen([bash, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 30
        while "Connection refused" not in (trace.read_text() if trace.exists() else ""):
            if proc.poll() is not None or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        with BootServer(catalog, store, ("127.0.0.1", port)):
            out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "Connection refused" in trace.read_text()
    assert "started callback failed" not in out, out
    (event,) = store.events(host=COMPUTE, run_id=run_id, kind="install.started")
    assert event.payload["message"].startswith("anaconda started on ")


def test_a_burst_of_connections_queues_while_the_server_is_not_accepting(
    catalog: Catalog, store: StateStore
) -> None:
    """A 200-host fleet PXE-boots at once: connections that arrive while the server is not
    accepting (busy, or between accepts) must wait in the listen queue, not be dropped."""
    burst = 100
    srv = BootServer(catalog, store, ("127.0.0.1", 0))  # listening, but nobody accepts yet
    socks: list[socket.socket] = []
    try:
        for _ in range(burst):
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", srv.port))
            socks.append(s)
        # A connect completes once the kernel queued it; a short listen queue leaves the rest pending.
        pending = set(socks)
        deadline = time.monotonic() + 5
        while pending and time.monotonic() < deadline:
            _, ready, _ = select.select([], list(pending), [], 0.5)
            pending -= {s for s in ready if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0}
        assert not pending, f"{len(pending)} of {burst} connections were not queued"
        for s in socks:
            s.setblocking(True)
            s.sendall(f"GET /ipxe/{COMPUTE} HTTP/1.0\r\n\r\n".encode())
        srv.start()
        for s in socks:
            s.settimeout(30)
            assert s.recv(64).split(b" ")[1] == b"403"  # no token, not installed: every one answered
    finally:
        for s in socks:
            s.close()
        srv.stop()  # also when it never started
