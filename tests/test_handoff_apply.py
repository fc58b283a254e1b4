"""`provision handoff`: the command, and the apply path against a small real HTTP server speaking the
Kubernetes API endpoints the adapter uses (tests/support/kubeapi.py: there is no cluster here)."""

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
from provision.model.errors import ProvisionError
from tests.conftest import PROFILES
from tests.support.bundle import FIXTURES
from tests.support.procs import free_port, running

HOST = "inferno-host-compute-1"


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
    assert res.exit_code == (1 if broken else 0), res.output  # exit 0 only for accepted


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
