"""Handoff: the three seed hosts' manifests (labels, taints, reservations, namespace), the ZFS pool's
exact commands and refusals, the driver mode, the textfile metrics; and the apply path against a
small real HTTP server speaking the Kubernetes API endpoints the adapter uses (no cluster here)."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from provision.cli.main import cli
from provision.handoff.manifests import QUARANTINE_TAINT, manifests, render_manifests, taints
from provision.handoff.metrics import textfile_metrics
from provision.handoff.zfs import zfs_plan
from provision.model.errors import ProvisionError
from provision.model.hosts import DiskId
from tests.conftest import PROFILES
from tests.support.bundle import FIXTURES, catalog
from tests.support.procs import free_port, running

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


# -- the command, and the apply path against a real HTTP server speaking the Kubernetes API ----------------


@dataclass
class Ran:
    exit_code: int
    stdout: str
    output: str  # stdout, then the one line the CLI prints for a ProvisionError


def provision(*args: str, state: Path) -> Ran:
    """The CLI in-process, with main()'s mapping of ProvisionError to its line and exit code."""
    res = CliRunner().invoke(cli, ["--profiles", str(PROFILES), "--state", str(state), *args])
    if isinstance(res.exception, ProvisionError):
        return Ran(res.exception.exit_code, res.stdout, f"{res.stdout}provision: {res.exception}\n")
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        raise res.exception
    return Ran(res.exit_code, res.stdout, res.output)


def store_run(state: Path, tmp: Path, broken: bool = False) -> None:
    from provision.store.state import StateStore

    result = json.loads((FIXTURES / "lust-result.json").read_text())
    if broken:
        result["inventory"]["gpus"].pop()
    with StateStore.open(state) as store:
        run = store.create_run(HOST, "host")
        store.put_document(run.id, "result.json", json.dumps(result).encode())
        store.put_document(run.id, "telemetry.jsonl", (FIXTURES / "lust-telemetry.jsonl").read_bytes())
        store.put_document(
            run.id, "inventory-redfish.json", (FIXTURES / "lust-redfish-inventory.json").read_bytes()
        )
    res = provision("report", HOST, "--format", "json", "-o", str(tmp / "r.json"), state=state)
    assert res.exit_code == 0, res.output


def node(capacity: str = "4") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": HOST, "resourceVersion": "7", "labels": {"kubernetes.io/hostname": HOST}},
        "spec": {
            "taints": [
                {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"},
                {"key": "inferno.io/acceptance", "value": "pending", "effect": "NoSchedule"},
            ]
        },
        "status": {
            "conditions": [{"type": "Ready", "status": "True"}],
            "capacity": {"cpu": "384", "nvidia.com/gpu": capacity},
        },
    }


class Kube:
    def __init__(self, tmp: Path, port: int) -> None:
        self.log = tmp / "kubeapi.jsonl"
        self.kubeconfig = tmp / "kubeconfig"
        self.kubeconfig.write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "current-context": "lab",
                    "clusters": [{"name": "lab", "cluster": {"server": f"http://127.0.0.1:{port}"}}],
                    "users": [{"name": "op", "user": {"token": "s3cret-token"}}],
                    "contexts": [{"name": "lab", "context": {"cluster": "lab", "user": "op"}}],
                }
            )
        )

    def calls(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.log.read_text().splitlines()]

    def node(self) -> dict[str, Any]:
        return [c for c in self.calls() if c["method"] == "GET" and c["path"].endswith(f"/nodes/{HOST}")][-1]


@pytest.fixture
def kube(tmp_path: Path, request: pytest.FixtureRequest) -> Any:
    port = free_port()
    seed = tmp_path / "seed.json"
    seed.write_text(json.dumps({"nodes": {HOST: node(getattr(request, "param", "4"))}}))
    k = Kube(tmp_path, port)
    argv = [sys.executable, "-m", "tests.support.kubeapi", str(port), str(seed), str(k.log), "s3cret-token"]
    with running(argv, log=tmp_path / "kubeapi.out", port=port, cwd=Path(__file__).resolve().parent.parent):
        yield k


def test_apply_labels_taints_and_reserves_then_checks_ready_and_gpus(tmp_path: Path, kube: Kube) -> None:
    from provision.store.state import HostState, StateStore

    state = tmp_path / "state"
    store_run(state, tmp_path)
    res = provision("handoff", HOST, "--kubeconfig", str(kube.kubeconfig), "--json", state=state)
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["ready"] is True and out["gpu_capacity"] == "4" and out["state"] == "handed-off"
    calls = kube.calls()
    created = {c["path"].rsplit("/", 1)[-1] for c in calls if c["method"] == "POST"}
    assert created == {"namespaces", "machineconfigpools", "kubeletconfigs", "storageclasses"}
    kubelet = next(c for c in calls if c["method"] == "POST" and c["path"].endswith("kubeletconfigs"))
    assert kubelet["body"]["spec"]["kubeletConfig"]["systemReserved"] == {"cpu": "38400m", "memory": "1024Mi"}
    patch = next(c for c in calls if c["method"] == "PATCH" and "/nodes/" in c["path"])
    assert patch["content_type"] == "application/json-patch+json"
    assert patch["body"][0] == {"op": "test", "path": "/metadata/resourceVersion", "value": "7"}
    taints_after = next(op["value"] for op in patch["body"] if op["path"] == "/spec/taints")
    assert taints_after == [
        {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"},  # not ours: kept
        {"key": "inferno/gpu", "value": "true", "effect": "NoSchedule"},  # the pool's; our quarantine is gone
    ]
    labels = {op["path"]: op["value"] for op in patch["body"] if op["path"].startswith("/metadata/labels/")}
    assert labels["/metadata/labels/inferno.circle"] == "2"
    assert labels["/metadata/labels/inferno.io~1gpu.count"] == "4"
    assert all("Bearer" not in json.dumps(c) for c in calls)  # the log has no secrets (nor does our output)
    assert "s3cret-token" not in res.output
    with StateStore.open(state) as store:
        assert store.get_host_state(HOST) is HostState.handed_off
    files = state / "handoff" / HOST
    assert {p.name for p in files.iterdir()} == {"manifests.yaml", "zfs-create.sh", "inferno_acceptance.prom"}


@pytest.mark.parametrize("kube", ["3"], indirect=True)
def test_gpu_capacity_short_of_the_profile_is_not_handed_off(tmp_path: Path, kube: Kube) -> None:
    state = tmp_path / "state"
    store_run(state, tmp_path)
    res = provision("handoff", HOST, "--kubeconfig", str(kube.kubeconfig), "--wait", "0", state=state)
    assert res.exit_code == 1
    assert "with nvidia.com/gpu=3, expected Ready with nvidia.com/gpu=4" in res.output


def test_rejected_host_is_refused_and_keeps_the_quarantine_taint(tmp_path: Path, kube: Kube) -> None:
    state = tmp_path / "state"
    store_run(state, tmp_path, broken=True)
    res = provision("handoff", HOST, "--kubeconfig", str(kube.kubeconfig), state=state)
    assert res.exit_code == 1
    assert "not handed off: run 20251128T120000Z-compute-1 is rejected (host state rejected)" in res.output
    patch = next(c for c in kube.calls() if c["method"] == "PATCH")
    taints_after = next(op["value"] for op in patch["body"] if op["path"] == "/spec/taints")
    assert {"key": "inferno.io/acceptance", "value": "pending", "effect": "NoSchedule"} in taints_after
    assert not [c for c in kube.calls() if c["method"] == "POST"]


def test_wrong_credentials_are_an_external_error(tmp_path: Path, kube: Kube) -> None:
    state = tmp_path / "state"
    store_run(state, tmp_path)
    kube.kubeconfig.write_text(kube.kubeconfig.read_text().replace("s3cret-token", "wrong"))
    res = provision("handoff", HOST, "--kubeconfig", str(kube.kubeconfig), state=state)
    assert res.exit_code == 3
    assert "HTTP 401" in res.output and "wrong" not in res.output


def test_dry_run_prints_manifests_and_changes_nothing(tmp_path: Path) -> None:
    state = tmp_path / "state"
    store_run(state, tmp_path)
    res = provision("handoff", HOST, "--dry-run", state=state)
    assert res.exit_code == 0
    docs = [d for d in yaml.safe_load_all(res.stdout) if d]
    assert [d["kind"] for d in docs] == [
        "Node",
        "Namespace",
        "MachineConfigPool",
        "KubeletConfig",
        "StorageClass",
    ]
    assert "# GPU driver: keep the burn-in NVIDIA driver (575.57.08)" in res.stdout
    assert "zpool create" in res.stdout
    assert not (state / "handoff").exists()


def test_missing_kubeconfig_is_bad_input(tmp_path: Path) -> None:
    state = tmp_path / "state"
    store_run(state, tmp_path)
    res = provision("handoff", HOST, "--kubeconfig", str(tmp_path / "nope"), state=state)
    assert res.exit_code == 2
    assert "expected a kubeconfig file, got no such file" in res.output


def test_a_second_handoff_changes_only_what_drifted(tmp_path: Path, kube: Kube) -> None:
    import urllib.request

    state = tmp_path / "state"
    store_run(state, tmp_path)
    assert provision("handoff", HOST, "--kubeconfig", str(kube.kubeconfig), state=state).exit_code == 0
    server = yaml.safe_load(kube.kubeconfig.read_text())["clusters"][0]["cluster"]["server"]
    drift = json.dumps([{"op": "replace", "path": "/spec/kubeletConfig/systemReserved/cpu", "value": "1"}])
    req = urllib.request.Request(
        f"{server}/apis/machineconfiguration.openshift.io/v1/kubeletconfigs/inferno-pool-gpu-reserved",
        data=drift.encode(),
        method="PATCH",
        headers={"Authorization": "Bearer s3cret-token", "Content-Type": "application/json-patch+json"},
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 200
    before = len(kube.calls())
    res = provision("handoff", HOST, "--kubeconfig", str(kube.kubeconfig), "--json", state=state)
    assert res.exit_code == 0, res.output
    applied = json.loads(res.stdout)["applied"]
    assert "kubeletconfigs/inferno-pool-gpu-reserved updated" in applied
    assert "namespace/inferno-circle-2 unchanged" in applied
    assert "machineconfigpools/inferno-pool-gpu unchanged" in applied
    assert "storageclass/openebs-zfspv unchanged" in applied
    calls = kube.calls()[before:]
    assert not [c for c in calls if c["method"] == "POST"]
    fix = next(c for c in calls if c["method"] == "PATCH" and "kubeletconfigs" in c["path"])
    assert fix["content_type"] == "application/merge-patch+json"
    assert fix["body"]["metadata"]["resourceVersion"]  # the precondition
    reserved = fix["body"]["spec"]["kubeletConfig"]["systemReserved"]
    assert reserved == {"cpu": "38400m", "memory": "1024Mi"}


def test_unreadable_kubeconfig_is_bad_input(tmp_path: Path) -> None:
    state = tmp_path / "state"
    store_run(state, tmp_path)
    bad = tmp_path / "kubeconfig"
    bad.write_text("apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\n")
    res = provision("handoff", HOST, "--kubeconfig", str(bad), state=state)
    assert res.exit_code == 2
    assert f"--kubeconfig {bad}: expected a valid kubeconfig, got" in res.output


def test_handoff_without_any_run_is_not_found(tmp_path: Path) -> None:
    from provision.store.state import StateStore

    with StateStore.open(tmp_path / "state"):
        pass
    res = provision("handoff", HOST, "--dry-run", state=tmp_path / "state")
    assert res.exit_code == 2
    assert f"{HOST}: expected a run holding acceptance.json, got none" in res.output
