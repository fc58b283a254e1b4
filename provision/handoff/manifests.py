"""Handoff of an accepted host to OpenShift, as data: Node labels and taints, the kubelet's daemon
reservations (KubeletConfig for the pool's MachineConfigPool), the namespace, the ZFS LocalPV
StorageClass; the GPU driver mode. The ZFS pool's own plan is in `provision.handoff.zfs`, the
node-exporter textfile in `provision.handoff.metrics`.

Pure. `provision.handoff.kube` applies the manifests.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from provision.model.hosts import Host
from provision.model.profile import GpuDriverMode, Platform, Profile, Taint, TaintEffect, ZfsPool

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


def _namespace(p: Platform) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": p.namespace,
            "labels": {**p.labels, f"{LABEL_PREFIX}/pool": p.pool},
            # OpenShift pins the namespace's pods to the pool's nodes.
            "annotations": {"openshift.io/node-selector": ",".join(f"{k}={v}" for k, v in p.labels.items())},
        },
    }


def _pool_selector(p: Platform) -> dict[str, str]:
    return {f"pools.operator.machineconfiguration.openshift.io/{p.pool}": ""}


def _machine_config_pool(p: Platform) -> dict[str, Any]:
    return {
        "apiVersion": "machineconfiguration.openshift.io/v1",
        "kind": "MachineConfigPool",
        "metadata": {"name": p.pool, "labels": _pool_selector(p)},
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
    }


def _kubelet_config(profile: Profile) -> dict[str, Any]:
    p = profile.platform
    return {
        "apiVersion": "machineconfiguration.openshift.io/v1",
        "kind": "KubeletConfig",
        "metadata": {"name": f"{p.pool}-reserved"},
        "spec": {
            "machineConfigPoolSelector": {"matchLabels": _pool_selector(p)},
            "kubeletConfig": {
                "systemReserved": {
                    "cpu": f"{reserved_cpu_millicores(profile)}m",
                    "memory": f"{p.reserved_memory_mib}Mi",
                }
            },
        },
    }


def _storage_class(zfs: ZfsPool) -> dict[str, Any]:
    return {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {"name": zfs.storage_class},
        "provisioner": ZFS_PROVISIONER,
        "parameters": {"poolname": zfs.name, "fstype": "zfs"},
        "volumeBindingMode": "WaitForFirstConsumer",
        "allowVolumeExpansion": True,
        "allowedTopologies": [{"matchLabelExpressions": [{"key": ZFS_TOPOLOGY_KEY, "values": [zfs.name]}]}],
    }


def manifests(profile: Profile, host: Host, record: dict[str, Any]) -> list[dict[str, Any]]:
    p = profile.platform
    out = [
        node_patch(profile, host, record),
        _namespace(p),
        _machine_config_pool(p),
        _kubelet_config(profile),
    ]
    if p.zfs:
        out.append(_storage_class(p.zfs))
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
