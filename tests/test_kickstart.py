"""Kickstarts: every profile x seed host passes pykickstart's ksvalidator (RHEL9), goldens, storage."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pykickstart.parser import KickstartParser
from pykickstart.version import RHEL9, makeVersion

from provision.cli.main import main
from provision.install.render import kickstart_for
from provision.model.catalog import load_catalog
from provision.model.errors import BadInput
from tests.conftest import PROFILES

GOLDEN = Path(__file__).resolve().parent / "golden"
SEED_HOSTS = ("inferno-host-compute-1", "inferno-host-exper-1", "inferno-host-master")
PROFILE_NAMES = ("circle-1-limbo", "circle-2-lust", "circle-6-heresy")
TOKEN = "GOLDEN-TOKEN-0123456789"
SERVER = "http://10.0.1.5:8080"
KSVALIDATOR = Path(sys.executable).parent / "ksvalidator"
COMPUTE_DISKS = {"disk/by-id/wwn-0x5002538e40c1a201", "disk/by-id/wwn-0x5002538e40c1a202"}


def parse(text: str) -> KickstartParser:
    parser = KickstartParser(makeVersion(RHEL9))
    parser.readKickstartFromString(text)
    return parser


def render(profiles: Path, host: str, profile: str | None = None) -> str:
    catalog = load_catalog(profiles)
    entry = catalog.host(host)
    if profile is not None:
        entry = entry.model_copy(update={"profile": profile})
    return kickstart_for(catalog, entry, TOKEN, SERVER)


@pytest.mark.parametrize("profile", PROFILE_NAMES)
@pytest.mark.parametrize("host", SEED_HOSTS)
def test_every_profile_and_host_passes_ksvalidator_rhel9(tmp_path: Path, host: str, profile: str) -> None:
    ks = tmp_path / "ks.cfg"
    ks.write_text(render(PROFILES, host, profile))
    proc = subprocess.run(
        [str(KSVALIDATOR), "-v", "RHEL9", str(ks)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "error" not in (proc.stdout + proc.stderr).lower()


@pytest.mark.parametrize("host", SEED_HOSTS)
def test_seed_kickstarts_match_golden_files(
    host: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Regenerate after an intended change: UPDATE_GOLDEN=1 pytest tests/test_kickstart.py"""
    out = tmp_path / "ks.cfg"
    with pytest.raises(SystemExit) as done:
        main(
            [
                "--profiles",
                str(PROFILES),
                "kickstart",
                host,
                "--token",
                TOKEN,
                "--server",
                SERVER,
                "-o",
                str(out),
            ]
        )
    assert done.value.code == 0, capsys.readouterr().err
    assert out.stat().st_mode & 0o077 == 0  # it carries the run token
    golden = GOLDEN / f"{host}.ks"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_text(out.read_text())
    assert out.read_text() == golden.read_text()


def test_compute_mirrors_the_two_sata_ssds_and_never_names_an_nvme_drive() -> None:
    text = render(PROFILES, "inferno-host-compute-1")
    handler = parse(text).handler
    assert set(handler.ignoredisk.onlyuse) == COMPUTE_DISKS
    assert set(handler.clearpart.drives) == COMPUTE_DISKS
    members = {p.mountpoint: p.disk for p in handler.partition.partitions}
    assert set(members.values()) == COMPUTE_DISKS and len(members) == 6
    raids = {r.mountpoint: r for r in handler.raid.raidList}
    assert set(raids) == {"/boot/efi", "/boot", "/"}
    for raid in raids.values():
        assert raid.level == "RAID1"
        assert {members[m] for m in raid.members} == COMPUTE_DISKS  # one member on each disk
    assert raids["/boot/efi"].fstype == "efi"
    commands = [ln for ln in text.split("%packages")[0].splitlines() if not ln.startswith("#")]
    assert not [ln for ln in commands if "nvme" in ln.lower()]
    assert "/dev/sd" not in text and "/dev/nvme" not in text
    assert "nvme" not in " ".join(handler.ignoredisk.onlyuse + handler.clearpart.drives)


def test_gpu_hosts_get_the_driver_nouveau_blacklist_and_driver_mode() -> None:
    lust = render(PROFILES, "inferno-host-compute-1")
    heresy = render(PROFILES, "inferno-host-exper-1")
    limbo = render(PROFILES, "inferno-host-master")
    handler = parse(lust).handler
    assert "nvidia" in {r.name for r in handler.repo.repoList}
    assert "nvidia-open" in handler.packages.packageList
    assert "blacklist nouveau" in lust and "rd.driver.blacklist=nouveau" in handler.bootloader.appendLine
    assert "iommu=pt" in handler.bootloader.appendLine
    assert "echo keep > /etc/inferno/gpu-driver-mode" in lust
    assert "echo remove > /etc/inferno/gpu-driver-mode" in heresy
    assert "nvidia" not in limbo.lower() and "nouveau" not in limbo


def test_security_network_packages_and_callbacks() -> None:
    text = render(PROFILES, "inferno-host-master")
    h = parse(text).handler
    assert h.rootpw.lock is True and not h.rootpw.password
    assert h.selinux.selinux == 1  # enforcing
    assert h.firewall.enabled and h.firewall.services == ["ssh"]
    # The controller logs in as the host's ssh_user (root by default): key only, like the admin.
    assert [k.username for k in h.sshkey.sshUserList] == ["inferno", "root"]
    assert "PermitRootLogin prohibit-password" in text and "PasswordAuthentication no" in text
    assert h.user.userList[0].name == "inferno" and h.user.userList[0].groups == ["wheel"]
    for pkg in ("stress-ng", "fio", "memtester", "nvme-cli", "smartmontools", "dmidecode", "gcc", "python3"):
        assert pkg in h.packages.packageList
    eth0, eth1 = h.network.network[:2]
    assert (eth0.device, eth0.bootProto, eth0.ip, eth0.gateway) == (
        "3c:ec:ef:10:01:10",
        "static",
        "10.0.1.11",
        "10.0.1.1",
    )
    assert eth0.nodefroute is False and eth1.nodefroute is True
    assert h.network.network[-1].hostname == "inferno-host-master"
    assert h.url.url == "http://10.0.1.5/rocky/9.3/BaseOS/x86_64/os"
    assert [s.ntp_server for s in h.timesource.dataList()] == ["10.0.1.53"] or "timesource" in text
    assert h.reboot.action is not None
    scripts = {(s.type, s.lineno): s.script for s in h.scripts}
    bodies = " ".join(scripts.values())
    for event in ("started", "finished", "failed"):
        assert f"{SERVER}/callback/inferno-host-master/{event}" in bodies
    assert bodies.count(f"Authorization: Bearer {TOKEN}") == 3
    assert "ssh-keygen -A" in bodies and "ssh_host_*_key.pub" in bodies


def test_root_password_hash_is_used_crypted(profiles_copy: Path) -> None:
    crypted = "$6$saltsalt$" + "a" * 86
    site = profiles_copy / "site.yaml"
    site.write_text(site.read_text().replace("root_password_hash: null", f"root_password_hash: '{crypted}'"))
    h = parse(render(profiles_copy, "inferno-host-master")).handler
    assert h.rootpw.isCrypted and h.rootpw.password == crypted and not h.rootpw.lock


def test_plaintext_root_password_is_refused_without_echoing_it(profiles_copy: Path) -> None:
    site = profiles_copy / "site.yaml"
    site.write_text(site.read_text().replace("root_password_hash: null", "root_password_hash: hunter2"))
    with pytest.raises(BadInput) as err:
        load_catalog(profiles_copy)
    msg = str(err.value)
    assert "site.yaml:" in msg and "root_password_hash: expected a SHA-512 crypt hash" in msg
    assert "hunter2" not in msg


def test_bad_ssh_key_in_site_names_file_line_and_field(profiles_copy: Path) -> None:
    site = profiles_copy / "site.yaml"
    site.write_text(site.read_text().replace("- ssh-ed25519 AAAA", "- ssh-dsa AAAA"))
    with pytest.raises(BadInput, match=r"site\.yaml:\d+: admin\.ssh_keys: expected OpenSSH public keys"):
        load_catalog(profiles_copy)


def test_without_site_file_defaults_apply_and_the_kickstart_wants_a_key(profiles_copy: Path) -> None:
    (profiles_copy / "site.yaml").unlink()
    catalog = load_catalog(profiles_copy)
    assert catalog.site.mirror_url == "https://dl.rockylinux.org/vault/rocky/9.3"
    assert catalog.site.root_password_hash is None
    with pytest.raises(BadInput, match="admin SSH keys: expected at least one operator key, got none"):
        kickstart_for(catalog, catalog.host("inferno-host-master"), TOKEN, SERVER)


def _drop_boot_disks(profiles: Path, host: str) -> None:
    path = profiles / "hosts.yaml"
    out, current, skipping = [], None, False
    for line in path.read_text().splitlines():
        if line.startswith("  - name: "):
            current = line.split(": ", 1)[1]
        if current == host and line.startswith("    boot_disks:"):
            skipping = True
            continue
        if skipping and line.startswith("      - "):
            continue
        skipping = False
        out.append(line)
    path.write_text("\n".join(out) + "\n")


def test_profile_without_boot_pair_needs_disks_named_in_the_inventory(profiles_copy: Path) -> None:
    _drop_boot_disks(profiles_copy, "inferno-host-exper-1")
    catalog = load_catalog(profiles_copy)
    with pytest.raises(BadInput) as err:
        kickstart_for(catalog, catalog.host("inferno-host-exper-1"), TOKEN, SERVER)
    lines = (profiles_copy / "hosts.yaml").read_text().splitlines()
    line = lines.index("  - name: inferno-host-exper-1") + 1  # the entry: its boot_disks is absent
    assert str(err.value) == (
        f"{profiles_copy / 'hosts.yaml'}:{line}: hosts[inferno-host-exper-1].boot_disks: "
        "profile circle-6-heresy declares no boot drive pair, so the OS disks must be named here "
        "(two, by wwn or model and serial), got none"
    )


def test_host_without_boot_disk_ids_is_refused_with_a_pointer_to_inspect(profiles_copy: Path) -> None:
    _drop_boot_disks(profiles_copy, "inferno-host-compute-1")
    catalog = load_catalog(profiles_copy)
    with pytest.raises(
        BadInput,
        match=r"expected the 2 sata boot disks by wwn or serial \(listed here or read "
        r"by `provision inspect inferno-host-compute-1`\), got none",
    ):
        kickstart_for(catalog, catalog.host("inferno-host-compute-1"), TOKEN, SERVER)


@pytest.mark.parametrize(
    ("replace", "message"),
    [
        ('wwn: "0x5002538e40c1a102"', r"boot_disks\[1\]: expected a WWN of 16 or 32 hex digits"),
        ("serial: S6KLNA0W100102}", r"expected two different disks|boot_disks: expected"),
    ],
)
def test_bad_boot_disk_ids_are_refused(profiles_copy: Path, replace: str, message: str) -> None:
    path = profiles_copy / "hosts.yaml"
    text = path.read_text()
    if replace.startswith("wwn"):
        text = text.replace(replace, 'wwn: "0xnothex"')
    else:
        text = text.replace(
            'wwn: "0x5002538e40c1a102", model: SAMSUNG MZ7L3960HCJR-00A07, serial: S6KLNA0W100102',
            'wwn: "0x5002538e40c1a101", model: SAMSUNG MZ7L3960HCJR-00A07, serial: S6KLNA0W100101',
        )
    path.write_text(text)
    catalog = load_catalog(profiles_copy)
    with pytest.raises(BadInput, match=message):
        kickstart_for(catalog, catalog.host("inferno-host-master"), TOKEN, SERVER)


def test_boot_disk_that_is_also_scratch_is_refused(profiles_copy: Path) -> None:
    path = profiles_copy / "hosts.yaml"
    anchor = '    boot_disks:\n      - {wwn: "0x5002538e40c1a201"'
    assert anchor in path.read_text()
    text = path.read_text().replace(anchor, "    scratch_disks: [{serial: S6KLNA0W100201}]\n" + anchor)
    path.write_text(text)
    catalog = load_catalog(profiles_copy)
    with pytest.raises(BadInput, match="expected disks apart from scratch_disks"):
        kickstart_for(catalog, catalog.host("inferno-host-compute-1"), TOKEN, SERVER)


def test_cli_unknown_host_is_one_line_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--profiles", str(PROFILES), "kickstart", "nope"])
    assert done.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("provision: ") and "host: expected one of inferno-host-compute-1" in err
    assert err.count("\n") == 1


def test_cli_prints_to_stdout_with_the_placeholder_token(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--profiles", str(PROFILES), "kickstart", "inferno-host-master"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert "Authorization: Bearer NO-RUN-TOKEN" in out and out.startswith(
        "# Kickstart for inferno-host-master"
    )


def test_ssh_user_must_be_an_account_the_kickstart_keys(profiles_copy: Path) -> None:
    hosts = profiles_copy / "hosts.yaml"
    hosts.write_text(hosts.read_text() + "    ssh_user: inferno\n")
    catalog = load_catalog(profiles_copy)
    h = parse(kickstart_for(catalog, catalog.host("inferno-host-master"), TOKEN, SERVER)).handler
    assert [k.username for k in h.sshkey.sshUserList] == ["inferno"]
    hosts.write_text(hosts.read_text().replace("    ssh_user: inferno\n", "    ssh_user: bob\n"))
    catalog = load_catalog(profiles_copy)
    with pytest.raises(BadInput) as err:
        kickstart_for(catalog, catalog.host("inferno-host-master"), TOKEN, SERVER)
    line = len(hosts.read_text().splitlines())
    assert str(err.value) == (
        f"{hosts}:{line}: hosts[inferno-host-master].ssh_user: expected root or the site's admin 'inferno' "
        "(the accounts the kickstart gives the operators' keys), got 'bob'"
    )
