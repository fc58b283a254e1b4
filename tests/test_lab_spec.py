"""The lab's pure parts: the VM definitions agree with the lab profile and inventory, the libvirt XML
carries the hardware the profile promises, the DHCP config hands each host the right iPXE URL; and
its adapters' safety: a PID is stopped only while it still runs the recorded program; the BMC's TLS
chain and bcrypt digest are real."""

from __future__ import annotations

import json
import os
import socket
import ssl
import stat
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import bcrypt
import pytest

from provision.lab import ledger as ledgers
from provision.lab import system
from provision.lab.dhcp import published
from provision.lab.domain import node_paths, render_domain
from provision.lab.ledger import Ledger, Proc, load
from provision.lab.netconf import render_dnsmasq, script_urls
from provision.lab.spec import GIB, NODES, Firmware, LabNet, check_lab_id, node, swapped
from provision.lab.tls import BMC_USER, make_bmc_secrets
from provision.model.catalog import load_catalog
from provision.model.errors import BadInput
from provision.model.profile import DriveRole

REPO = Path(__file__).resolve().parent.parent
LAB_PROFILES = REPO / "profiles-lab"
QEMU_NS = "{http://libvirt.org/schemas/domain/qemu/1.0}"


def _xml(n: object, tmp_path: Path) -> ET.Element:
    assert hasattr(n, "name")
    paths = node_paths(n, tmp_path / "disks", tmp_path / "logs")  # type: ignore[arg-type]
    return ET.fromstring(render_domain(n, paths, "iplxbr"))  # type: ignore[arg-type]


def _qemu_args(root: ET.Element) -> list[str]:
    return [a.attrib["value"] for a in root.iter(f"{QEMU_NS}arg")]


def test_lab_profile_states_what_the_vms_present() -> None:
    catalog = load_catalog(LAB_PROFILES)
    profile = catalog.profiles["lab-vm"]
    for n in NODES:
        host = catalog.host(n.name)
        assert catalog.profile_of(host).name == "lab-vm"
        assert host.boot_mac == n.mac
        assert host.ssh_address == f"10.77.0.{n.ipv4}"
        assert profile.cpu.model == n.cpu_model_id
        assert profile.cpu.logical_cpus == n.vcpus
        assert profile.memory.dimm_count == len(n.dimms)
        assert profile.memory.total_gib * 1024 == n.memory_mib
        assert {d.part_number for d in n.dimms} == {profile.memory.part_number}
        assert {d.speed_mts for d in n.dimms} == {profile.memory.rated_mts}
        boot = profile.drives(DriveRole.boot)
        scratch = profile.drives(DriveRole.scratch)
        assert boot is not None and scratch is not None
        assert boot.count == len(n.boot_disks)
        assert {d.size_bytes for d in n.boot_disks} == {boot.capacity_bytes}
        assert scratch.count == len(n.nvme)
        assert {d.size_bytes for d in n.nvme} == {scratch.capacity_bytes}
        assert [d.serial for d in host.scratch_disks] == [d.serial for d in n.nvme]


def test_uefi_node_boots_ovmf_with_native_pxe(tmp_path: Path) -> None:
    n = node("lab-node-1")
    assert n.firmware is Firmware.uefi
    root = _xml(n, tmp_path)
    loader = root.find("os/loader")
    assert loader is not None and loader.text is not None and "OVMF_CODE" in loader.text
    assert root.find("devices/interface/rom").attrib == {"enabled": "no"}  # type: ignore[union-attr]
    assert "name=opt/org.tianocore/IPv6PXESupport,string=n" in _qemu_args(root)


def test_bios_node_keeps_the_ipxe_rom(tmp_path: Path) -> None:
    root = _xml(node("lab-node-2"), tmp_path)
    assert root.find("os/loader") is None
    assert root.find("devices/interface/rom") is None
    assert root.find("devices/interface/model").attrib["type"] == "virtio"  # type: ignore[union-attr]


def test_domain_carries_cpu_string_smbios_dimm_and_drive_serials(tmp_path: Path) -> None:
    n = node("lab-node-2")
    root = _xml(n, tmp_path)
    args = _qemu_args(root)
    assert f"qemu64,model-id={n.cpu_model_id}" in args
    dimm = n.dimms[0]
    assert any(a.startswith("type=17,") and f"serial={dimm.serial}" in a and "speed=3200" in a for a in args)
    assert any(f"nvme,drive=labnvme0,serial={n.nvme[0].serial}" in a for a in args)
    serials = [e.text for e in root.iter("serial") if e.text]
    assert serials == [d.serial for d in n.boot_disks]
    assert [t.attrib["bus"] for t in root.iter("target") if "bus" in t.attrib] == ["sata", "sata"]
    system_entries = {e.attrib["name"]: e.text for e in root.iter("entry")}
    assert system_entries["serial"] == n.system_serial
    assert system_entries["uuid"] == n.uuid == root.findtext("uuid")


def test_swapped_parts_reach_the_domain(tmp_path: Path) -> None:
    n = node("lab-node-1")
    new = swapped(swapped(n, "dimm", "NEWDIMM9"), "nvme", "NEWNVME9")
    args = _qemu_args(_xml(new, tmp_path))
    assert any("serial=NEWDIMM9" in a for a in args)
    assert any("serial=NEWNVME9" in a for a in args)
    assert not any(n.dimms[0].serial in a or n.nvme[0].serial in a for a in args)
    with pytest.raises(BadInput, match="part: expected dimm or nvme, got 'gpu'"):
        swapped(n, "gpu", "X")


@pytest.mark.parametrize("bad", ["", "UPPER", "has-dash", "toolongname", "a b"])
def test_lab_id_is_checked(bad: str) -> None:
    with pytest.raises(BadInput, match=f"lab id: expected 1-8 lowercase letters or digits, got {bad!r}"):
        check_lab_id(bad)


def test_lab_names_fit_linux_interface_names() -> None:
    net = LabNet("abcdefgh")
    for name in (net.bridge, net.veth_srv, net.veth_rack):
        assert len(name) <= 15


def test_unknown_lab_host_is_one_line() -> None:
    with pytest.raises(
        BadInput, match="lab host: expected one of lab-node-1, lab-node-2, lab-node-3, got 'x'"
    ):
        node("x")


def test_dhcp_hands_the_published_url_or_the_tokenless_one(tmp_path: Path) -> None:
    netboot = tmp_path / "netboot"
    netboot.mkdir()
    (netboot / "lab-node-2.url").write_text("http://10.77.0.1:8080/ipxe/lab-node-2?token=abcDEF123\n")
    (netboot / "lab-node-3.url").write_text("http://evil/ x\n")  # spaces: never reaches dnsmasq
    urls = script_urls(NODES, "http://10.77.0.1:8080/", published(netboot))
    assert urls == {
        "lab-node-1": "http://10.77.0.1:8080/ipxe/lab-node-1",
        "lab-node-2": "http://10.77.0.1:8080/ipxe/lab-node-2?token=abcDEF123",
        "lab-node-3": "http://10.77.0.1:8080/ipxe/lab-node-3",
    }
    conf = render_dnsmasq(LabNet("x"), NODES, tftp_root=tmp_path, leases=tmp_path / "l", urls=urls)
    assert "dhcp-host=52:54:00:1a:b0:02,set:h-lab-node-2,10.77.0.12,lab-node-2" in conf
    assert "dhcp-boot=tag:ipxe,tag:h-lab-node-2,http://10.77.0.1:8080/ipxe/lab-node-2?token=abcDEF123" in conf
    assert "dhcp-range=10.77.0.0,static,255.255.255.0,1h" in conf
    assert "enable-ra" in conf and "interface=iplxs" in conf


def test_ledger_round_trip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ledgers, "REGISTRY", tmp_path / "registry")  # never the machine's own
    led = Ledger(lab_id="x", directory=str(tmp_path))
    led.add_proc(Proc("dnsmasq", 123, "dnsmasq", "ipl-x-srv"))
    led.swapped["lab-node-1"] = {"dimm": "S1"}
    led.save()
    back = load(tmp_path / "lab.json")
    assert back is not None and back.procs == led.procs and back.swapped == led.swapped
    assert load(tmp_path / "registry" / "x.json") == back  # the copy a later `lab up` finds
    assert load(tmp_path / "missing.json") is None
    (tmp_path / "bad.json").write_text("{nope")
    with pytest.raises(BadInput, match=r"bad\.json: expected the lab's JSON state file"):
        load(tmp_path / "bad.json")


def test_stop_signals_only_the_recorded_program() -> None:
    marker = "lab-stop-test"
    proc = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)", marker], start_new_session=True
    )
    try:
        deadline = time.monotonic() + 10
        while not system.is_ours(proc.pid, marker) and time.monotonic() < deadline:
            time.sleep(0.02)  # until exec has replaced the forked child's command line
        assert system.is_ours(proc.pid, marker)
        # the PID runs this marker, not dnsmasq: it must not be signalled
        assert system.stop(proc.pid, "dnsmasq") is False
        assert proc.poll() is None
        assert system.stop(proc.pid, marker) is True
        assert proc.wait(timeout=5) is not None
        assert not system.is_ours(proc.pid, marker)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_bmc_secrets_are_a_real_chain_and_bcrypt(tmp_path: Path) -> None:
    s = make_bmc_secrets(tmp_path, "x", "127.0.0.1")
    user, password = s.credentials.read_text().strip().split(":", 1)
    assert user == BMC_USER
    name, digest = s.htpasswd.read_text().strip().split(":", 1)
    assert name == BMC_USER and digest.startswith("$2b$")
    assert bcrypt.checkpw(password.encode(), digest.encode())
    assert not bcrypt.checkpw(b"wrong", digest.encode())
    for private in (s.credentials, s.htpasswd, s.server_key):
        assert stat.S_IMODE(os.stat(private).st_mode) == 0o600
    # a TLS server with the lab's certificate; a client trusting only the lab CA verifies it
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(s.server_cert, s.server_key)
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        conn, _ = listener.accept()
        try:
            with server_ctx.wrap_socket(conn, server_side=True) as tls:
                tls.recv(1)
        except (ssl.SSLError, OSError):
            pass

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    client_ctx = ssl.create_default_context(cafile=str(s.ca_cert))
    with (
        socket.create_connection(("127.0.0.1", port)) as raw,
        client_ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        assert tls.version() is not None
        tls.send(b"x")
    t.join(timeout=5)
    listener.close()
    # and a client with only the system CAs refuses it
    t = threading.Thread(target=serve, daemon=True)
    listener = socket.create_server(("127.0.0.1", port))
    t.start()
    with (
        pytest.raises(ssl.SSLCertVerificationError),
        socket.create_connection(("127.0.0.1", port)) as raw,
        ssl.create_default_context().wrap_socket(raw, server_hostname="127.0.0.1"),
    ):
        pass
    t.join(timeout=5)
    listener.close()
    assert GIB == 1 << 30


def _cli(*args: str, state: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "provision", "--state", str(state), "lab", *args],
        capture_output=True,
        text=True,
        check=False,
    )


def test_lab_cli_bad_input_is_one_line(tmp_path: Path) -> None:
    out = _cli("up", "--id", "Bad-Id", state=tmp_path)
    assert out.returncode == 2
    assert out.stderr == "provision: lab id: expected 1-8 lowercase letters or digits, got 'Bad-Id'\n"
    out = _cli("swap", "--id", "x", "lab-node-1", "dimm", "S1", state=tmp_path)
    assert out.returncode == 2
    assert out.stderr == "provision: lab x: expected it up, got it down\n"
    out = _cli("swap", "--id", "x", "nohost", "dimm", "S1", state=tmp_path)
    assert out.returncode == 2
    assert "lab host: expected one of lab-node-1, lab-node-2, lab-node-3, got 'nohost'" in out.stderr


def test_lab_status_and_down_of_a_lab_never_up(tmp_path: Path) -> None:
    out = _cli("status", "--id", "x", "--json", state=tmp_path)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["up"] is False
    out = _cli("down", "--id", "x", state=tmp_path)
    assert out.returncode == 0 and out.stdout == "lab x: nothing to stop\n"
