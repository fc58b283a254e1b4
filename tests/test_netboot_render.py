"""Renderers and their refusals: iPXE script, dnsmasq config, kickstart specs; boot disks from an
inspection inventory; `provision serve`'s bad-input and busy-port paths."""

from __future__ import annotations

import json
import os
import socket
from dataclasses import replace
from pathlib import Path

import pytest

from burnin.hardware import Drive, HardwareInventory
from kickstart.netboot import IpxeSpec, render_ipxe, render_ipxe_local
from kickstart.render import RenderError, render_kickstart
from kickstart.spec import InstallSpec
from provision.cli.main import main
from provision.install.render import dnsmasq_for, kickstart_for
from provision.install.spec import boot_disks_from_inventory, build_install_spec
from provision.model.catalog import load_catalog
from provision.model.errors import BadInput
from tests.conftest import PROFILES
from tests.support.procs import free_port
from tests.test_kickstart import GOLDEN, SERVER, TOKEN, _drop_boot_disks, parse

COMPUTE = "inferno-host-compute-1"
SATA = 960197124096
NVME = 3840755982336


def test_ipxe_script_matches_golden(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Regenerate after an intended change: UPDATE_GOLDEN=1 pytest tests/test_netboot_render.py"""
    with pytest.raises(SystemExit) as done:
        main(
            [
                "--profiles",
                str(PROFILES),
                "kickstart",
                COMPUTE,
                "--ipxe",
                "--token",
                TOKEN,
                "--server",
                SERVER,
            ]
        )
    assert done.value.code == 0
    text = capsys.readouterr().out
    golden = GOLDEN / f"{COMPUTE}.ipxe"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_text(text)
    assert text == golden.read_text()
    kernel = next(line for line in text.splitlines() if line.startswith("kernel "))
    assert " initrd=initrd.img " in kernel  # without it the UEFI kernel finds no initrd
    assert f"inst.ks={SERVER}/ks/{COMPUTE}?token={TOKEN} " in kernel
    assert " ip=10.0.2.11::10.0.2.1:255.255.255.0:inferno-host-compute-1::none " in kernel
    assert " nameserver=10.0.1.53" in kernel and "BOOTIF=01-${netX/mac:hexhyp}" in kernel


def test_local_boot_script_exits_to_the_next_boot_device() -> None:
    text = render_ipxe_local(COMPUTE)
    assert text.startswith("#!ipxe\n") and text.rstrip().endswith("exit 1")
    assert "kernel" not in text and "chain" not in text
    with pytest.raises(RenderError, match="host: expected letters"):
        render_ipxe_local("a host; shell")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"ks_url": "http://x/ks/h?token=a b"}, "kickstart URL: expected no spaces or quotes"),
        ({"kernel_url": "http://x/$(reboot)"}, "kernel URL: expected letters"),
        ({"extra_args": ("console=tty0 rm",)}, "kernel argument: expected letters"),
    ],
)
def test_ipxe_refuses_unsafe_values(change: dict[str, object], message: str) -> None:
    spec = IpxeSpec("h", "http://x/k", "http://x/i", "http://x/ks/h?token=t", "http://m/os", "dhcp")
    with pytest.raises(RenderError, match=message.replace("(", r"\(")):
        render_ipxe(replace(spec, **change))  # type: ignore[arg-type]


def _spec() -> InstallSpec:
    catalog = load_catalog(PROFILES)
    host = catalog.host(COMPUTE)
    disks = ("disk/by-id/wwn-0x5002538e40c1a201", "disk/by-id/wwn-0x5002538e40c1a202")
    return build_install_spec(catalog.profile_of(host), host, catalog.site, disks, TOKEN, SERVER)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"callback": "token"}, "callback token: expected 8-128 URL-safe characters"),
        ({"boot_disks": ("disk/by-id/wwn-0x1",)}, "boot disks: expected 2 for the RAID1 mirror, got 1"),
        ({"boot_disks": ("/dev/sda", "/dev/sdb")}, "boot disk: expected a disk/by-id/ name, got '/dev/sda'"),
        ({"kernel_args": ('quiet"; reboot',)}, "kernel argument: expected no spaces or quotes"),
        ({"admin_ssh_keys": ()}, "admin SSH keys: expected at least one operator key, got none"),
    ],
)
def test_kickstart_renderer_refuses_unsafe_specs(change: dict[str, object], message: str) -> None:
    spec = _spec()
    if change.get("callback") == "token":
        change = {"callback": replace(spec.callback, token="short;rm")}
    with pytest.raises(RenderError, match=message):
        render_kickstart(replace(spec, **change))  # type: ignore[arg-type]


def _drives(sata: int) -> list[Drive]:
    drives = [
        Drive(f"nvme{i}n1", "NVMe", "SSD", "Micron 7450", f"NV{i}", f"0x00a075{i:010x}", NVME)
        for i in range(4)
    ]
    drives += [
        Drive(
            f"sd{'ab'[i]}",
            "SATA",
            "SSD",
            "SAMSUNG MZ7L3960HCJR-00A07",
            f"S6KL{i}",
            f"0x5002538e40d0000{i}",
            SATA,
        )
        for i in range(sata)
    ]
    return drives


def test_boot_pair_from_inspection_is_the_two_sata_drives_of_the_profile_size() -> None:
    catalog = load_catalog(PROFILES)
    lust = catalog.profiles["circle-2-lust"]
    disks = boot_disks_from_inventory(lust, COMPUTE, _drives(2))
    assert [d.wwn for d in disks] == ["0x5002538e40d00000", "0x5002538e40d00001"]
    with pytest.raises(BadInput) as err:
        boot_disks_from_inventory(lust, COMPUTE, _drives(1))
    assert str(err.value).startswith(
        f"inspection of {COMPUTE}: expected 2 sata drives of {SATA} bytes with a wwn or serial for the boot "
        "mirror, got 1 among: nvme0n1 (NVMe, 3840755982336 B, wwn 0x00a0750000000000)"
    )
    assert boot_disks_from_inventory(catalog.profiles["circle-6-heresy"], "x", _drives(2)) == ()


def test_cli_takes_the_boot_pair_from_an_inventory_file(
    profiles_copy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _drop_boot_disks(profiles_copy, COMPUTE)
    inv = HardwareInventory(source="redfish", collected_at=0.0, drives=_drives(2))
    path = tmp_path / "inventory.json"
    path.write_text(json.dumps(inv.to_dict()))
    with pytest.raises(SystemExit) as done:
        main(["--profiles", str(profiles_copy), "kickstart", COMPUTE, "--inventory", str(path)])
    assert done.value.code == 0
    handler = parse(capsys.readouterr().out).handler
    assert handler.ignoredisk.onlyuse == [
        "disk/by-id/wwn-0x5002538e40d00000",
        "disk/by-id/wwn-0x5002538e40d00001",
    ]
    path.write_text("{not json")
    with pytest.raises(SystemExit) as done:
        main(["--profiles", str(profiles_copy), "kickstart", COMPUTE, "--inventory", str(path)])
    assert done.value.code == 2
    assert capsys.readouterr().err.startswith(f"provision: {path}: expected a hardware inventory JSON, got ")


def test_dnsmasq_refuses_hosts_it_cannot_reserve(profiles_copy: Path) -> None:
    catalog = load_catalog(PROFILES)
    with pytest.raises(BadInput, match=r"subnet: expected an IPv4 network like 10\.77\.0\.0/24, got 'ten'"):
        dnsmasq_for(catalog, {COMPUTE: TOKEN}, SERVER, "eth0", "ten", "/srv/tftp")
    with pytest.raises(
        BadInput, match=rf"hosts\[{COMPUTE}\]: expected an address in 10\.9\.0\.0/24, got 10\.0\.2\.11"
    ):
        dnsmasq_for(catalog, {COMPUTE: TOKEN}, SERVER, "eth0", "10.9.0.0/24", "/srv/tftp")
    hosts = profiles_copy / "hosts.yaml"
    hosts.write_text(hosts.read_text().replace("address: 10.0.2.11/24, gateway: 10.0.2.1, ", ""))
    dhcp_catalog = load_catalog(profiles_copy)
    line = hosts.read_text().splitlines().index("    interfaces:") + 1  # the compute host's, the first
    with pytest.raises(
        BadInput,
        match=rf"hosts\.yaml:{line}: hosts\[inferno-host-compute-1\]\.interfaces: expected the "
        r"boot MAC 3c:ec:ef:20:01:10 with an address to reserve, got none",
    ):
        dnsmasq_for(dhcp_catalog, {COMPUTE: TOKEN}, SERVER, "eth0", "10.0.2.0/24", "/srv/tftp")
    # ... while its kickstart configures that interface by DHCP.
    h = parse(kickstart_for(dhcp_catalog, dhcp_catalog.host(COMPUTE), TOKEN, SERVER)).handler
    assert h.network.network[0].bootProto == "dhcp"


def test_serve_bad_listen_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--profiles", str(PROFILES), "--state", str(tmp_path), "serve", "--listen", "8080"])
    assert done.value.code == 2
    assert capsys.readouterr().err == (
        "provision: --listen: expected ADDRESS:PORT like 127.0.0.1:8080, got '8080'\n"
    )


def test_serve_on_a_busy_port_is_exit_3(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    port = free_port()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", port))
        busy.listen(1)
        with pytest.raises(SystemExit) as done:
            main(
                [
                    "--profiles",
                    str(PROFILES),
                    "--state",
                    str(tmp_path),
                    "serve",
                    "--listen",
                    f"127.0.0.1:{port}",
                ]
            )
    assert done.value.code == 3
    assert capsys.readouterr().err == (
        f"provision: boot server: cannot listen on 127.0.0.1:{port}: Address already in use\n"
    )
