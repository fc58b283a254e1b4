"""A host's Ignition config (spec 3.4.0) for `join: rhcos`. Pure: a spec in, a JSON-ready dict out.

The config is a pointer, as OpenShift's own worker.ign is: `ignition.config.merge` fetches the pool's
rendered config from the machine-config server, trusting the cluster's CA when one is given. On top
of it this host gets what the machine-config server cannot know: its name, static NetworkManager
keyfiles for its interfaces (matched by MAC: RHCOS names NICs its own way), the RAID1 boot mirror
over its two boot disks, and a one-shot unit that tells the boot server RHCOS booted.

The mirror is laid out exactly as Butane's `boot_device.mirror` translates it for x86_64
(coreos/butane config/fcos/v1_3/translate.go, processBootDevice): per disk bios-N (1 MiB, BIOS boot
type), esp-N (127 MiB, EFI system type), boot-N (384 MiB), root-N (the rest), wipeTable; RAID1 md-boot
(--metadata=1.0, so BIOS GRUB reads one half as a plain partition) and md-root; filesystems esp-N vfat,
md-boot ext4 "boot", md-root xfs "root". The disks are named by /dev/disk/by-id only, and only the two
boot disks are ever named: no scratch drive appears anywhere in the config.

Every text that reaches a file is carried in a base64 data: URL, and the whole config is JSON: no
catalog text is spliced into a line-based language here.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

IGNITION_VERSION = "3.4.0"
BIOS_BOOT_GUID = "21686148-6449-6E6F-744E-656564454649"
ESP_GUID = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
BIOS_MIB, ESP_MIB, BOOT_MIB = 1, 127, 384  # Butane's v1 layout: never change (offsets must match)
CALLBACK_UNIT = "inferno-rhcos-installed.service"
CALLBACK_HEADER = "/etc/inferno/callback.header"


@dataclass(frozen=True)
class Keyfile:
    """One interface's NetworkManager connection, from the inventory."""

    name: str  # the inventory's name, used as the connection id and file name
    mac: str
    address: str | None  # CIDR; None: DHCP
    gateway: str | None
    nameservers: tuple[str, ...]


@dataclass(frozen=True)
class IgnitionSpec:
    hostname: str
    merge_url: str  # https://api-int.<domain>:22623/config/<pool>
    root_ca: str | None  # PEM
    boot_disks: tuple[str, str]  # /dev/disk/by-id/... of the mirror's two halves
    interfaces: tuple[Keyfile, ...]
    callback_url: str  # the boot server's POST for "RHCOS booted", token in the header file only
    token: str


def data_url(text: str) -> str:
    return "data:text/plain;charset=utf-8;base64," + base64.b64encode(text.encode()).decode()


def keyfile_text(k: Keyfile) -> str:
    """A NetworkManager keyfile; the connection binds to the MAC, not to a name RHCOS may change."""
    lines = [
        "[connection]",
        f"id={k.name}",
        "type=ethernet",
        "autoconnect=true",
        "",
        "[ethernet]",
        f"mac-address={k.mac.upper()}",
        "",
        "[ipv4]",
    ]
    if k.address is None:
        lines.append("method=auto")
    else:
        gateway = f",{k.gateway}" if k.gateway else ""
        lines += ["method=manual", f"address1={k.address}{gateway}"]
        if k.nameservers:
            lines.append("dns=" + "".join(f"{ns};" for ns in k.nameservers))
    lines += ["may-fail=false", "", "[ipv6]", "method=disabled", ""]
    return "\n".join(lines)


def _file(path: str, text: str, mode: int) -> dict[str, Any]:
    return {"path": path, "mode": mode, "overwrite": True, "contents": {"source": data_url(text)}}


def mirror_storage(disks: tuple[str, str]) -> dict[str, Any]:
    """Butane's `boot_device.mirror` (x86_64 layout) over `disks`, as Ignition storage."""
    out: dict[str, Any] = {"disks": [], "raid": [], "filesystems": []}
    for i, device in enumerate(disks, start=1):
        out["disks"].append(
            {
                "device": device,
                "wipeTable": True,
                "partitions": [
                    {"label": f"bios-{i}", "sizeMiB": BIOS_MIB, "typeGuid": BIOS_BOOT_GUID},
                    {"label": f"esp-{i}", "sizeMiB": ESP_MIB, "typeGuid": ESP_GUID},
                    {"label": f"boot-{i}", "sizeMiB": BOOT_MIB},
                    {"label": f"root-{i}"},
                ],
            }
        )
        out["filesystems"].append(
            {
                "device": f"/dev/disk/by-partlabel/esp-{i}",
                "format": "vfat",
                "label": f"esp-{i}",
                "wipeFilesystem": True,
            }
        )
    halves = range(1, len(disks) + 1)
    out["raid"] = [
        {
            "name": "md-boot",
            "level": "raid1",
            "devices": [f"/dev/disk/by-partlabel/boot-{i}" for i in halves],
            "options": ["--metadata=1.0"],
        },
        {
            "name": "md-root",
            "level": "raid1",
            "devices": [f"/dev/disk/by-partlabel/root-{i}" for i in halves],
        },
    ]
    out["filesystems"] += [
        {"device": "/dev/md/md-boot", "format": "ext4", "label": "boot", "wipeFilesystem": True},
        {"device": "/dev/md/md-root", "format": "xfs", "label": "root", "wipeFilesystem": True},
    ]
    return out


def callback_unit(url: str) -> str:
    """Runs once on the first boot of the installed RHCOS: posts its SSH host keys to the boot server
    (the token rides in a root-only header file, which the unit deletes once it has been used)."""
    return "\n".join(
        [
            "[Unit]",
            "Description=Tell the inferno boot server that RHCOS is installed",
            "Wants=network-online.target",
            "After=network-online.target",
            f"ConditionPathExists={CALLBACK_HEADER}",
            "",
            "[Service]",
            "Type=oneshot",
            "ExecStart=/bin/sh -c 'cat /etc/ssh/ssh_host_*_key.pub | /usr/bin/curl -fsS --retry 10 "
            f"--retry-delay 5 -X POST -H @{CALLBACK_HEADER} --data-binary @- {url}'",
            f"ExecStartPost=/usr/bin/rm -f {CALLBACK_HEADER}",
            "",
            "[Install]",
            "WantedBy=multi-user.target",
            "",
        ]
    )


def render_ignition(spec: IgnitionSpec) -> dict[str, Any]:
    ignition: dict[str, Any] = {
        "version": IGNITION_VERSION,
        "config": {"merge": [{"source": spec.merge_url}]},
    }
    if spec.root_ca:
        ignition["security"] = {"tls": {"certificateAuthorities": [{"source": data_url(spec.root_ca)}]}}
    storage = mirror_storage(spec.boot_disks)
    storage["files"] = [
        _file("/etc/hostname", spec.hostname + "\n", 0o644),
        *(
            _file(f"/etc/NetworkManager/system-connections/{k.name}.nmconnection", keyfile_text(k), 0o600)
            for k in spec.interfaces
        ),
        _file(CALLBACK_HEADER, f"Authorization: Bearer {spec.token}\n", 0o600),
    ]
    unit = {"name": CALLBACK_UNIT, "enabled": True, "contents": callback_unit(spec.callback_url)}
    return {"ignition": ignition, "storage": storage, "systemd": {"units": [unit]}}
