"""Handoff as data: the three seed hosts' manifests (labels, taints, reservations, namespace), the ZFS
pool's exact commands and refusals, the driver mode, the textfile metrics. The command and the apply
path are in test_handoff_apply.py."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from provision.handoff.manifests import QUARANTINE_TAINT, manifests, render_manifests, taints
from provision.handoff.metrics import textfile_metrics
from provision.handoff.zfs import zfs_plan
from provision.model.hosts import DiskId
from tests.support.bundle import catalog

SEED = {  # from the seed document: pool label, taint, namespace; 10% CPU and 1 GiB reserved
    "inferno-host-compute-1": (
        "2",
        "inferno-pool-gpu",
        ["inferno/gpu=true:NoSchedule"],
        "inferno-circle-2",
        384,
    ),
    "inferno-host-exper-1": (
        "6",
        "inferno-pool-exper",
        ["inferno/experiment=true:PreferNoSchedule"],
        "inferno-circle-6",
        64,
    ),
    "inferno-host-master": ("1", "inferno-pool-master", [], "inferno-circle-1", 128),
}


def nvme(i: int, capacity: int = 3840755982336) -> dict[str, Any]:
    return {
        "name": f"nvme{i}n1",
        "protocol": "NVMe",
        "model": "Micron_9550_MTFDKCC3T8TGQ",
        "serial": f"2451E8A{100 + i}",
        "wwn": f"eui.000000000000000100a07524{i:08x}",
        "capacity_bytes": capacity,
    }


def sata(i: int) -> dict[str, Any]:
    return {
        "name": f"sd{'ab'[i]}",
        "protocol": "SATA",
        "model": "SAMSUNG MZ7L3960HCJR-00A07",
        "serial": f"S6GNNA0X40112{2 + i}",
        "wwn": f"0x5002538f4310{i:04x}",
        "capacity_bytes": 960197124096,
    }


def record(
    host: str, verdict: str = "accepted", drives: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    profile = catalog().profile_of(catalog().host(host))
    scratch = next((d.count for d in profile.storage if d.role.value == "scratch"), 0)
    boot = next((d.count for d in profile.storage if d.role.value == "boot"), 0)
    return {
        "verdict": verdict,
        "run": {"run_id": f"20251128T120000Z-{host}", "started_at": 1764331200.0, "ended_at": 1764331420.0},
        "counts": {"pass": 100, "warn": 0, "fail": 0 if verdict == "accepted" else 2, "inconclusive": 0},
        "findings": [],
        "inventory": {
            "in_os": {
                "drives": drives
                if drives is not None
                else [sata(i) for i in range(boot)] + [nvme(i) for i in range(scratch)],
                "gpus": [{"driver_version": "575.57.08"}] if profile.gpus else [],
            }
        },
    }


def plan_of(host: str, rec: dict[str, Any], **host_changes: Any) -> Any:
    h = catalog().host(host)
    if host_changes:
        h = h.model_copy(update=host_changes)
    return zfs_plan(catalog().profile_of(h), h, rec)


@pytest.mark.parametrize("host", sorted(SEED))
def test_seed_hosts_carry_the_seed_labels_taints_and_reservations(host: str) -> None:
    circle, pool, seed_taints, namespace, cpus = SEED[host]
    h = catalog().host(host)
    profile = catalog().profile_of(h)
    docs = {d["kind"]: d for d in yaml.safe_load_all(render_manifests(manifests(profile, h, record(host))))}
    node = docs["Node"]
    assert node["metadata"]["name"] == host
    labels = node["metadata"]["labels"]
    assert labels["inferno.circle"] == circle and labels["inferno.io/pool"] == pool
    assert labels["inferno.io/acceptance"] == "accepted"
    assert labels["inferno.io/gpu.count"] == str(profile.gpu_count)
    assert [f"{t['key']}={t['value']}:{t['effect']}" for t in node["spec"]["taints"]] == seed_taints
    reserved = docs["KubeletConfig"]["spec"]["kubeletConfig"]["systemReserved"]
    assert reserved == {"cpu": f"{cpus * 100}m", "memory": "1024Mi"}  # 10% of the logical CPUs, 1 GiB
    selector = docs["KubeletConfig"]["spec"]["machineConfigPoolSelector"]["matchLabels"]
    assert docs["MachineConfigPool"]["metadata"]["labels"] == selector
    assert docs["MachineConfigPool"]["spec"]["nodeSelector"]["matchLabels"] == {
        f"node-role.kubernetes.io/{pool}": ""
    }
    assert labels[f"node-role.kubernetes.io/{pool}"] == ""
    assert docs["Namespace"]["metadata"]["name"] == namespace
    assert (
        docs["Namespace"]["metadata"]["annotations"]["openshift.io/node-selector"]
        == f"inferno.circle={circle}"
    )
    assert ("StorageClass" in docs) == (profile.platform.zfs is not None)


def test_gpu_labels_name_the_model_within_label_rules() -> None:
    h = catalog().host("inferno-host-compute-1")
    labels = manifests(catalog().profile_of(h), h, record(h.name))[0]["metadata"]["labels"]
    product = labels["inferno.io/gpu.product"]
    assert product == "NVIDIA-RTX-PRO-6000-Blackwell-Max-Q-Workstation-Edition" and len(product) <= 63


@pytest.mark.parametrize("verdict", ["rejected", "inconclusive"])
def test_a_host_not_accepted_keeps_our_noschedule_taint(verdict: str) -> None:
    profile = catalog().profile_of(catalog().host("inferno-host-compute-1"))
    assert QUARANTINE_TAINT in taints(profile, accepted=False)
    assert QUARANTINE_TAINT not in taints(profile, accepted=True)
    h = catalog().host("inferno-host-compute-1")
    node = manifests(profile, h, record(h.name, verdict))[0]
    assert {"key": "inferno.io/acceptance", "value": "pending", "effect": "NoSchedule"} in node["spec"][
        "taints"
    ]


def test_zfs_stripe_on_the_compute_host_by_wwn() -> None:
    plan = plan_of("inferno-host-compute-1", record("inferno-host-compute-1"))
    devices = [f"/dev/disk/by-id/nvme-eui.000000000000000100a07524{i:08x}" for i in range(4)]
    assert plan.refusals == [] and plan.devices == devices
    assert plan.commands[-2] == (
        "zpool create -o ashift=12 -O compression=lz4 -O atime=off -O xattr=sa -m none inferno-scratch "
        + " ".join(devices)
    )
    assert plan.commands[:4] == [f"test -b {d}" for d in devices]
    assert plan.commands[4] == f"! lsblk -nro MOUNTPOINTS {' '.join(devices)} | grep -q ."
    assert all("/dev/sd" not in c and "nvme0n1" not in c for c in plan.commands)


def test_zfs_scratch_disks_match_whatever_way_the_wwn_is_written() -> None:
    # hosts.yaml without the "eui." prefix and in upper case; lsblk with it, in lower case.
    listed = tuple(DiskId(wwn=f"000000000000000100A07524{i:08X}") for i in range(4))
    plan = plan_of(HOST, record(HOST), scratch_disks=listed)
    assert plan.refusals == [] and len(plan.devices) == 4
    boot = (DiskId(wwn="0x000000000000000100a0752400000002"),)
    plan = plan_of(HOST, record(HOST), boot_disks=boot)
    assert any("nvme2n1 (serial 2451E8A102): part of the boot mirror" in r for r in plan.refusals)


def test_zfs_mirror_on_the_experimental_host_by_serial_without_wwn() -> None:
    drives = [{**nvme(i), "wwn": None, "model": "Micron 9550 PRO"} for i in range(2)]
    plan = plan_of("inferno-host-exper-1", record("inferno-host-exper-1", drives=drives))
    assert plan.refusals == []
    assert plan.commands[-2].endswith(
        "inferno-scratch mirror /dev/disk/by-id/nvme-Micron_9550_PRO_2451E8A100 "
        "/dev/disk/by-id/nvme-Micron_9550_PRO_2451E8A101"
    )


@pytest.mark.parametrize(
    ("field", "value"), [("model", "Micron $(reboot)"), ("serial", "A1;rm -rf /"), ("wwn", "eui.00`id`")]
)
def test_zfs_refuses_a_reported_device_name_no_udev_name_could_be(field: str, value: str) -> None:
    """Model, serial and WWN come from the installed host and reach a root shell script."""
    drives = [{**nvme(i), "wwn": None, "model": "Micron 9550 PRO"} for i in range(2)]
    drives[1][field] = value
    plan = plan_of("inferno-host-exper-1", record("inferno-host-exper-1", drives=drives))
    assert plan.commands == [] and any("not a udev by-id device name" in r for r in plan.refusals)


def test_no_zfs_on_the_master() -> None:
    plan = plan_of("inferno-host-master", record("inferno-host-master"))
    assert plan.pool is None and plan.commands == [] and plan.refusals == []


HOST = "inferno-host-compute-1"


@pytest.mark.parametrize(
    ("case", "rec", "host_changes", "refusal"),
    [
        ("not accepted", record(HOST, "rejected"), {}, "is rejected, not accepted"),
        (
            "boot mirror member",
            record(HOST),
            {"boot_disks": (DiskId(serial="2451E8A102"),)},
            "nvme2n1 (serial 2451E8A102): part of the boot mirror",
        ),
        (
            "not allow-listed",
            record(HOST),
            {"scratch_disks": tuple(DiskId(serial=f"2451E8A{100 + i}") for i in range(3))},
            "nvme3n1 (serial 2451E8A103): not in hosts.yaml scratch_disks",
        ),
        (
            "allow-listed drive missing",
            record(HOST),
            {"scratch_disks": (DiskId(wwn="eui.ffff"),)},
            "scratch_disks {'wwn': 'eui.ffff'}: not among the accepted run's drives",
        ),
        (
            "one drive short",
            record(HOST, drives=[nvme(i) for i in range(3)]),
            {},
            "3 scratch NVMe drive(s) in the accepted run, the profile says 4",
        ),
        (
            "wrong capacity",
            record(HOST, drives=[nvme(0, 3200631791616)] + [nvme(i) for i in (1, 2, 3)]),
            {},
            "nvme0n1 (serial 2451E8A100): 3200631791616 bytes, the profile says 3840755982336",
        ),
        (
            "no identity",
            record(HOST, drives=[{**nvme(0), "serial": None, "wwn": None}] + [nvme(i) for i in (1, 2, 3)]),
            {},
            "no serial or WWN to address it by",
        ),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_zfs_refusals(case: str, rec: dict[str, Any], host_changes: dict[str, Any], refusal: str) -> None:
    plan = plan_of(HOST, rec, **host_changes)
    assert any(refusal in r for r in plan.refusals), plan.refusals
    assert plan.commands == [] and plan.devices == []


def test_zfs_refuses_a_drive_with_a_failed_check() -> None:
    rec = record(HOST)
    rec["findings"] = [{"component": "drive:nvme1n1 (serial 2451E8A101)", "verdict": "fail"}]
    assert (
        "nvme1n1 (serial 2451E8A101): a check failed on this drive in the accepted run"
        in plan_of(HOST, rec).refusals
    )


def test_mirror_needs_two_drives() -> None:
    rec = record("inferno-host-exper-1", drives=[nvme(0)])
    assert "layout mirror needs at least 2 drives, got 1" in plan_of("inferno-host-exper-1", rec).refusals


def test_textfile_metrics_are_prometheus_text() -> None:
    text = textfile_metrics(HOST, "accepted", record(HOST))
    samples = [line for line in text.splitlines() if not line.startswith("#")]
    parsed = {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in samples}
    assert parsed[f'inferno_acceptance_state{{host="{HOST}",state="accepted"}}'] == 1
    assert parsed[f'inferno_acceptance_state{{host="{HOST}",state="rejected"}}'] == 0
    assert parsed[f'inferno_acceptance_findings{{host="{HOST}",verdict="pass"}}'] == 100
    assert any(k.startswith("inferno_acceptance_last_run_timestamp_seconds") for k in parsed)
    assert all(line.startswith(("# HELP", "# TYPE")) for line in text.splitlines() if line.startswith("#"))


def test_driver_mode_is_stated() -> None:
    from provision.handoff.manifests import driver_mode

    keep = driver_mode(catalog().profile_of(catalog().host(HOST)), record(HOST))
    remove = driver_mode(
        catalog().profile_of(catalog().host("inferno-host-exper-1")), record("inferno-host-exper-1")
    )
    assert (
        keep["mode"] == "keep"
        and "driver.enabled=false" in keep["statement"]
        and "575.57.08" in keep["statement"]
    )
    assert remove["mode"] == "remove" and "driver.enabled=true" in remove["statement"] and remove["commands"]
