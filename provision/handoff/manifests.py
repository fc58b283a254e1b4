"""Handoff of an accepted host to OpenShift, as data: Node labels and taints, the kubelet's daemon
reservations (KubeletConfig for the pool's MachineConfigPool), the namespace, the ZFS LocalPV
StorageClass; the ZFS pool's exact commands on the scratch NVMe (by WWN/serial, never the boot
mirror) with its refusals; the GPU driver mode; the node-exporter textfile.

Pure. `provision.handoff.kube` applies the manifests; the ZFS commands run on the host over SSH.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from burnin.hardware import normalize_wwn
from provision.model.hosts import Host
from provision.model.profile import DriveRole, GpuDriverMode, Profile, Taint, TaintEffect

LABEL_PREFIX = "inferno.io"
# Ours while a host is not accepted: nothing schedules there by accident.
QUARANTINE_TAINT = Taint(key=f"{LABEL_PREFIX}/acceptance", value="pending", effect=TaintEffect.NoSchedule)
ZFS_PROVISIONER = "zfs.csi.openebs.io"
ZFS_TOPOLOGY_KEY = f"{LABEL_PREFIX}/zfs-pool"
MCP_ROLE = "node-role.kubernetes.io/"
_LABEL_VALUE = re.compile(r"[^A-Za-z0-9_.-]+")


def label_value(text: str) -> str:
    """Kubernetes label values: at most 63 of [A-Za-z0-9_.-], alphanumeric at both ends."""
    return _LABEL_VALUE.sub("-", text).strip("-_.")[:63].rstrip("-_.")


def taints(profile: Profile, accepted: bool) -> list[Taint]:
    out = list(profile.platform.taints)
    return out if accepted else [*out, QUARANTINE_TAINT]


def reserved_cpu_millicores(profile: Profile) -> int:
    return round(profile.cpu.logical_cpus * profile.platform.reserved_cpu_pct * 10)


def node_labels(profile: Profile, host: Host, record: dict[str, Any]) -> dict[str, str]:
    p = profile.platform
    labels = dict(p.labels)
    labels.update(
        {
            f"{LABEL_PREFIX}/pool": p.pool,
            f"{MCP_ROLE}{p.pool}": "",  # joins the pool's MachineConfigPool (its kubelet config)
            f"{LABEL_PREFIX}/profile": profile.name,
            f"{LABEL_PREFIX}/rack": label_value(host.rack),
            f"{LABEL_PREFIX}/acceptance": record["verdict"],
            f"{LABEL_PREFIX}/acceptance-run": label_value(record["run"]["run_id"]),
            f"{LABEL_PREFIX}/cpu.model": label_value(profile.cpu.model),
            f"{LABEL_PREFIX}/memory-gib": str(profile.memory.total_gib),
            f"{LABEL_PREFIX}/gpu.count": str(profile.gpu_count),
        }
    )
    if profile.gpus:
        labels[f"{LABEL_PREFIX}/gpu.product"] = label_value(profile.gpus.name)
        labels[f"{LABEL_PREFIX}/gpu.driver-mode"] = profile.gpus.driver_mode.value
    if p.zfs:
        labels[ZFS_TOPOLOGY_KEY] = p.zfs.name
    return labels


def node_patch(profile: Profile, host: Host, record: dict[str, Any]) -> dict[str, Any]:
    accepted = record["verdict"] == "accepted"
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": host.name, "labels": node_labels(profile, host, record)},
        "spec": {
            "taints": [
                {"key": t.key, "value": t.value, "effect": t.effect.value} for t in taints(profile, accepted)
            ]
        },
    }


def manifests(profile: Profile, host: Host, record: dict[str, Any]) -> list[dict[str, Any]]:
    p = profile.platform
    pool_selector = {f"pools.operator.machineconfiguration.openshift.io/{p.pool}": ""}
    out: list[dict[str, Any]] = [
        node_patch(profile, host, record),
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {
                "name": p.namespace,
                "labels": {**p.labels, f"{LABEL_PREFIX}/pool": p.pool},
                # OpenShift pins the namespace's pods to the pool's nodes.
                "annotations": {
                    "openshift.io/node-selector": ",".join(f"{k}={v}" for k, v in p.labels.items())
                },
            },
        },
        {
            "apiVersion": "machineconfiguration.openshift.io/v1",
            "kind": "MachineConfigPool",
            "metadata": {"name": p.pool, "labels": pool_selector},
            "spec": {
                "machineConfigSelector": {
                    "matchExpressions": [
                        {
                            "key": "machineconfiguration.openshift.io/role",
                            "operator": "In",
                            "values": ["worker", p.pool],
                        }
                    ]
                },
                "nodeSelector": {"matchLabels": {f"{MCP_ROLE}{p.pool}": ""}},
            },
        },
        {
            "apiVersion": "machineconfiguration.openshift.io/v1",
            "kind": "KubeletConfig",
            "metadata": {"name": f"{p.pool}-reserved"},
            "spec": {
                "machineConfigPoolSelector": {"matchLabels": pool_selector},
                "kubeletConfig": {
                    "systemReserved": {
                        "cpu": f"{reserved_cpu_millicores(profile)}m",
                        "memory": f"{p.reserved_memory_mib}Mi",
                    }
                },
            },
        },
    ]
    if p.zfs:
        out.append(
            {
                "apiVersion": "storage.k8s.io/v1",
                "kind": "StorageClass",
                "metadata": {"name": p.zfs.storage_class},
                "provisioner": ZFS_PROVISIONER,
                "parameters": {"poolname": p.zfs.name, "fstype": "zfs"},
                "volumeBindingMode": "WaitForFirstConsumer",
                "allowVolumeExpansion": True,
                "allowedTopologies": [
                    {"matchLabelExpressions": [{"key": ZFS_TOPOLOGY_KEY, "values": [p.zfs.name]}]}
                ],
            }
        )
    return out


def render_manifests(docs: list[dict[str, Any]]) -> str:
    return yaml.safe_dump_all(docs, sort_keys=False, default_flow_style=False)


def driver_mode(profile: Profile, record: dict[str, Any]) -> dict[str, Any]:
    if profile.gpus is None:
        return {"mode": "none", "statement": "no GPUs: the GPU Operator is not involved", "commands": []}
    gpus = (record["inventory"].get("in_os") or {}).get("gpus", [])
    version = next((g.get("driver_version") for g in gpus if g.get("driver_version")), None)
    if profile.gpus.driver_mode is GpuDriverMode.keep:
        return {
            "mode": "keep",
            "statement": f"keep the burn-in NVIDIA driver ({version or 'version not reported'}); "
            "deploy the GPU Operator with driver.enabled=false",
            "commands": [],
        }
    return {
        "mode": "remove",
        "statement": f"remove the burn-in NVIDIA driver ({version or 'version not reported'}) before "
        "joining; the GPU Operator installs its own (driver.enabled=true)",
        "commands": ["dnf -y remove 'nvidia-driver*' 'kmod-nvidia*' 'cuda-drivers*'", "dracut --force"],
    }


@dataclass
class ZfsPlan:
    pool: str | None
    devices: list[str] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)


def _ident(d: dict[str, Any]) -> set[str]:
    """The drive's identities, comparable across hosts.yaml, lsblk and Redfish spellings."""
    ids: set[str] = set()
    serial = str(d.get("serial") or "").strip().upper()
    if serial:
        ids.add(f"serial:{serial}")
    wwn = normalize_wwn(str(d["wwn"])) if d.get("wwn") else None
    if wwn:
        ids.add(f"wwn:{wwn}")
    return ids


def _by_id(d: dict[str, Any]) -> str:
    """The udev by-id name: stable across reboots, unlike nvmeXnY."""
    wwn = str(d.get("wwn") or "")
    if wwn.startswith(("eui.", "nguid.", "uuid.")):
        return f"/dev/disk/by-id/nvme-{wwn}"
    model = re.sub(r"\s+", "_", str(d.get("model") or "").strip())
    return f"/dev/disk/by-id/nvme-{model}_{d.get('serial')}"


def zfs_plan(profile: Profile, host: Host, record: dict[str, Any]) -> ZfsPlan:
    zfs = profile.platform.zfs
    if zfs is None:
        return ZfsPlan(None)
    plan = ZfsPlan(zfs.name)
    cls = profile.drives(DriveRole.scratch)
    inv = record["inventory"].get("in_os") or {}
    drives = [d for d in inv.get("drives", []) if str(d.get("protocol", "")).lower() == "nvme"]
    if record["verdict"] != "accepted":
        plan.refusals.append(f"run {record['run']['run_id']} is {record['verdict']}, not accepted")
    if cls is None:
        plan.refusals.append("the profile names a ZFS pool but no scratch drives")
        return plan
    boot_ids = {i for d in host.boot_disks for i in _ident(d.model_dump())}
    boot_ids |= {
        i for d in inv.get("drives", []) if str(d.get("protocol", "")).upper() == "SATA" for i in _ident(d)
    }
    allowed = [_ident(d.model_dump()) for d in host.scratch_disks]
    failed = {f["component"] for f in record["findings"] if f["verdict"] == "fail"}
    for d in drives:
        ids, name = _ident(d), f"{d.get('name')} (serial {d.get('serial')})"
        if not ids:
            plan.refusals.append(f"{name}: no serial or WWN to address it by")
        if ids & boot_ids:
            plan.refusals.append(f"{name}: part of the boot mirror")
        if allowed and not any(ids & a for a in allowed):
            plan.refusals.append(f"{name}: not in hosts.yaml scratch_disks")
        if d.get("capacity_bytes") != cls.capacity_bytes:
            plan.refusals.append(
                f"{name}: {d.get('capacity_bytes')} bytes, the profile says {cls.capacity_bytes}"
            )
        if any(str(d.get("serial")) in c for c in failed if d.get("serial")):
            plan.refusals.append(f"{name}: a check failed on this drive in the accepted run")
    for disk, a in zip(host.scratch_disks, allowed, strict=True):
        if not any(_ident(d) & a for d in drives):
            listed = disk.model_dump(exclude_none=True)
            plan.refusals.append(f"scratch_disks {listed}: not among the accepted run's drives")
    if len(drives) != cls.count:
        plan.refusals.append(
            f"{len(drives)} scratch NVMe drive(s) in the accepted run, the profile says {cls.count}"
        )
    minimum = {"stripe": 1, "mirror": 2, "raidz1": 3}.get(zfs.layout)
    if minimum is None:
        plan.refusals.append(f"layout {zfs.layout!r}: expected stripe, mirror or raidz1")
    elif len(drives) < minimum:
        plan.refusals.append(f"layout {zfs.layout} needs at least {minimum} drives, got {len(drives)}")
    if plan.refusals:
        return plan
    plan.devices = [_by_id(d) for d in sorted(drives, key=lambda d: str(d.get("serial")))]
    vdev = [] if zfs.layout == "stripe" else [zfs.layout]
    plan.commands = [
        # Run on the host as root. The first three refuse to go on if any device is in use.
        *(f"test -b {dev}" for dev in plan.devices),
        f"! lsblk -nro MOUNTPOINTS {' '.join(plan.devices)} | grep -q .",
        f"! zpool list -H -o name {zfs.name} 2>/dev/null",
        " ".join(
            [
                "zpool create -o ashift=12 -O compression=lz4 -O atime=off -O xattr=sa -m none",
                zfs.name,
                *vdev,
                *plan.devices,
            ]
        ),
        f"zpool status -P {zfs.name}",
    ]
    return plan


def textfile_metrics(host: str, state: str, record: dict[str, Any]) -> str:
    """node-exporter textfile collector: acceptance state, last run, findings by verdict."""
    states = ("accepted", "rejected", "inconclusive", "handed-off")
    run = record["run"]
    lines = [
        "# HELP inferno_acceptance_state Acceptance state of the host: 1 for the current state.",
        "# TYPE inferno_acceptance_state gauge",
        *(f'inferno_acceptance_state{{host="{host}",state="{s}"}} {int(s == state)}' for s in states),
        "# HELP inferno_acceptance_last_run_timestamp_seconds When the last acceptance run ended.",
        "# TYPE inferno_acceptance_last_run_timestamp_seconds gauge",
        f'inferno_acceptance_last_run_timestamp_seconds{{host="{host}",run_id="{run["run_id"]}"}} '
        f"{run['ended_at'] or run['started_at']}",
        "# HELP inferno_acceptance_findings Findings of the last acceptance run, by verdict.",
        "# TYPE inferno_acceptance_findings gauge",
        *(
            f'inferno_acceptance_findings{{host="{host}",verdict="{v}"}} {n}'
            for v, n in record["counts"].items()
        ),
    ]
    return "\n".join(lines) + "\n"
