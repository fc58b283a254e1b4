"""Real firmware, real chain: QEMU (TCG) PXE-boots through dnsmasq and the boot server.

BIOS: SeaBIOS + the NIC's iPXE ROM -> DHCP (iPXE tag, host reservation) -> HTTP iPXE script.
UEFI: OVMF's own PXE client (ROM off) -> DHCP (efi64) -> TFTP snponly.efi -> iPXE -> HTTP script.
Both then fetch the Debian kernel and the test's busybox initrd, which fetches the kickstart and
posts the callbacks the kickstart names, with the run's token. Then the BIOS host, left on PXE,
gets "boot from local disk" with its old token.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from provision.install.render import dnsmasq_for
from provision.model.catalog import load_catalog
from provision.store.state import HostState, StateStore
from tests.conftest import require_tool
from tests.support.netboot import Lab, Unavailable, build_initrd, debian_kernel, lab_network, wait_for_line
from tests.support.procs import running

pytestmark = pytest.mark.slow

BIOS_HOST, BIOS_IP = "inferno-host-compute-1", "10.77.0.11"
UEFI_HOST, UEFI_IP = "inferno-host-master", "10.77.0.12"
IPXE_DIR = Path("/usr/lib/ipxe")
OVMF_CODE = Path("/usr/share/OVMF/OVMF_CODE_4M.fd")
OVMF_VARS = Path("/usr/share/OVMF/OVMF_VARS_4M.fd")
BOOT_TIMEOUT_S = 150.0
REQUEST = re.compile(r" (\d+\.\d+\.\d+\.\d+) (GET|POST) (\S+) -> (\d+)(?: \((.*)\))?$")


@pytest.fixture(scope="module")
def payload(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """(images dir with vmlinuz + initrd.img, the installed host's public key line)."""
    for tool in ("qemu-system-x86_64", "dnsmasq", "ip", "cpio", "ssh-keygen"):
        require_tool(tool)
    for path in (IPXE_DIR / "snponly.efi", IPXE_DIR / "undionly.kpxe", OVMF_CODE, OVMF_VARS):
        if not path.exists():
            pytest.skip(f"{path} is missing (make setup installs ipxe and ovmf)")
    work = tmp_path_factory.mktemp("netboot")
    try:
        vmlinuz, modules = debian_kernel()
    except (Unavailable, subprocess.TimeoutExpired) as exc:
        pytest.skip(f"no Debian kernel for the PXE test: {exc}")
    key = work / "ssh_host_ed25519_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    pub = key.with_suffix(".pub").read_text()
    images = work / "images"
    images.mkdir()
    shutil.copy2(vmlinuz, images / "vmlinuz")
    try:
        build_initrd(work, modules, pub)
    except Unavailable as exc:
        pytest.skip(str(exc))
    shutil.move(work / "initrd.img", images / "initrd.img")
    return images, pub


@pytest.fixture
def lab() -> Iterator[Lab]:
    try:
        with lab_network() as net:
            yield net
    except Unavailable as exc:
        pytest.skip(str(exc))


def lab_profiles(profiles_copy: Path) -> Path:
    """The seed inventory, re-addressed into the lab subnet; kernel console on the serial port."""
    hosts = profiles_copy / "hosts.yaml"
    text = hosts.read_text()
    text = text.replace(
        "address: 10.0.2.11/24, gateway: 10.0.2.1", f"address: {BIOS_IP}/24, gateway: 10.77.0.1"
    )
    text = text.replace(
        "address: 10.0.1.11/24, gateway: 10.0.1.1", f"address: {UEFI_IP}/24, gateway: 10.77.0.1"
    )
    hosts.write_text(text)
    site = profiles_copy / "site.yaml"
    site.write_text(site.read_text().replace("console: null", "console: ttyS0,115200"))
    return profiles_copy


def qemu_argv(tap: str, mac: str, serial_log: Path, uefi_vars: Path | None) -> list[str]:
    argv = [
        "qemu-system-x86_64", "-machine", "q35,accel=tcg", "-m", "512", "-smp", "1",
        "-display", "none", "-nodefaults", "-serial", f"file:{serial_log}", "-monitor", "none",
        "-boot", "n", "-no-reboot",
        "-netdev", f"tap,id=n0,ifname={tap},script=no,downscript=no",
    ]  # fmt: skip
    if uefi_vars is None:
        return [*argv, "-device", f"virtio-net-pci,netdev=n0,mac={mac}"]
    # romfile= (none): OVMF's own PXE client boots, as a server's UEFI does.
    return [
        *argv,
        "-drive", f"if=pflash,format=raw,readonly=on,file={OVMF_CODE}",
        "-drive", f"if=pflash,format=raw,file={uefi_vars}",
        "-device", f"virtio-net-pci,netdev=n0,mac={mac},romfile=",
    ]  # fmt: skip


def requests_from(log: Path, client: str) -> list[str]:
    out = []
    for line in log.read_text().splitlines():
        m = REQUEST.search(line)
        if m and m.group(1) == client:
            out.append(f"{m.group(2)} {m.group(3)} {m.group(4)}")
    return out


def test_bios_and_uefi_pxe_fetch_script_kernel_initrd_kickstart_and_call_back(
    tmp_path: Path, profiles_copy: Path, payload: tuple[Path, str], lab: Lab
) -> None:
    images, host_pub = payload
    profiles = lab_profiles(profiles_copy)
    state = tmp_path / "state"
    catalog = load_catalog(profiles)
    url = f"http://{lab.server_ip}:8080"
    with StateStore.open(state) as store:
        tokens, runs = {}, {}
        for host in (BIOS_HOST, UEFI_HOST):
            run = store.create_run(host, "install")
            store.set_host_state(host, HostState.provisioning)
            runs[host] = run.id
            tokens[host] = store.issue_token(run.id, host, ttl_s=900)
    tftp = tmp_path / "tftp"
    tftp.mkdir()
    for name in ("undionly.kpxe", "snponly.efi"):
        shutil.copy2(IPXE_DIR / name, tftp / name)
    conf = tmp_path / "dnsmasq.conf"
    conf.write_text(
        dnsmasq_for(catalog, tokens, url, lab.veth_server, lab.subnet, str(tftp), ipv6_prefix="fd77::",
                    leasefile=str(tmp_path / "leases"))
    )  # fmt: skip
    conf.chmod(0o600)
    dns_log, http_log = tmp_path / "dnsmasq.log", tmp_path / "bootserver.log"
    serial = {h: tmp_path / f"{h}.serial" for h in (BIOS_HOST, UEFI_HOST)}
    uefi_vars = tmp_path / "OVMF_VARS.fd"
    shutil.copy2(OVMF_VARS, uefi_vars)
    in_srv = ["ip", "netns", "exec", lab.server_ns]
    in_rack = ["ip", "netns", "exec", lab.rack_ns]
    mac = {h: catalog.host(h).boot_mac for h in (BIOS_HOST, UEFI_HOST)}

    with ExitStack() as stack:
        stack.enter_context(
            running(
                [*in_srv, "dnsmasq", "-k", "--user=root", f"--conf-file={conf}", "--pid-file=",
                 f"--log-facility={dns_log}"],
                log=tmp_path / "dnsmasq.out",
            )
        )  # fmt: skip
        server = stack.enter_context(
            running(
                [*in_srv, sys.executable, "-m", "provision", "--profiles", str(profiles),
                 "--state", str(state), "serve", "--listen", f"{lab.server_ip}:8080", "--url", url,
                 "--images", str(images)],
                log=http_log,
            )
        )  # fmt: skip
        wait_for_line(http_log, "boot server listening", 30, server)
        bios = stack.enter_context(
            running([*in_rack, *qemu_argv(lab.tap("b"), mac[BIOS_HOST], serial[BIOS_HOST], None)],
                    log=tmp_path / "qemu-bios.out")
        )  # fmt: skip
        uefi = stack.enter_context(
            running([*in_rack, *qemu_argv(lab.tap("u"), mac[UEFI_HOST], serial[UEFI_HOST], uefi_vars)],
                    log=tmp_path / "qemu-uefi.out")
        )  # fmt: skip
        for host, vm in ((BIOS_HOST, bios), (UEFI_HOST, uefi)):
            try:
                vm.wait(timeout=BOOT_TIMEOUT_S)  # the initrd powers the VM off when it is done
            except subprocess.TimeoutExpired:
                pytest.fail(
                    f"{host} did not finish in {BOOT_TIMEOUT_S} s; serial:\n"
                    f"{serial[host].read_text(errors='replace')[-3000:]}\nserver:\n{http_log.read_text()}"
                )
            console = serial[host].read_text(errors="replace")
            assert "TEST-INIT: done" in console, console[-3000:]

        for host, ip in ((BIOS_HOST, BIOS_IP), (UEFI_HOST, UEFI_IP)):
            assert requests_from(http_log, ip) == [
                f"GET /ipxe/{host}?token=<redacted> 200",
                "GET /images/vmlinuz 200",
                "GET /images/initrd.img 200",
                f"GET /ks/{host}?token=<redacted> 200",
                f"POST /callback/{host}/started 204",
                f"POST /callback/{host}/finished 204",
            ]
        dhcp = dns_log.read_text()
        assert re.search(rf"sent \S*snponly\.efi to {re.escape(UEFI_IP)}", dhcp), dhcp[-3000:]
        for host, ip in ((BIOS_HOST, BIOS_IP), (UEFI_HOST, UEFI_IP)):
            assert re.search(rf"DHCPACK\(\S+\) {re.escape(ip)} {mac[host]} {host}", dhcp), dhcp[-3000:]

        # Left on PXE after the install, the BIOS host's iPXE gets "boot from local disk".
        local = stack.enter_context(
            running([*in_rack, *qemu_argv(lab.tap("l"), mac[BIOS_HOST], tmp_path / "again.serial", None)],
                    log=tmp_path / "qemu-again.out")
        )  # fmt: skip
        line = wait_for_line(
            http_log, rf"{BIOS_IP} GET /ipxe/{BIOS_HOST}\S* -> 200 \(local boot\)", 120, local
        )
        assert "token=<redacted>" in line

    fingerprint = subprocess.run(
        ["ssh-keygen", "-l", "-f", "/dev/stdin"], input=host_pub, capture_output=True, text=True, check=True
    ).stdout.split()[1]
    with StateStore.open(state) as store:
        for host in (BIOS_HOST, UEFI_HOST):
            events = store.events(host=host, run_id=runs[host])
            assert [e.kind for e in events] == ["install.started", "install.finished"]
            assert [k["fingerprint"] for k in events[1].payload["host_keys"]] == [fingerprint]
            assert store.get_host_state(host) is HostState.installed
    logs = http_log.read_text() + dns_log.read_text()
    for token in tokens.values():
        assert token not in logs
