"""`provision handoff HOST --kubeconfig` with `join: rhcos`, end to end on real parts: the accepted host's
BMC is a sushy-emulator system, the installer stand-in (tests/support/installer.py) plays the RHCOS
live installer and first boot (it fetches the iPXE script and the Ignition config with the token,
checks them, lets the kubelet ask to join, posts the `installed` callback), and the test Kubernetes
API server (tests/support/kubeapi.py) creates the Node once its real X.509 CSRs are approved. The
host ends a Ready, labelled Node without the quarantine taint, and is never reinstalled twice."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
import yaml

from provision.store.state import HostState, StateStore
from tests.conftest import PROFILES
from tests.support.bmcrig import emulator, fake_systems
from tests.support.kubeapi import Kube, serving
from tests.support.procs import free_port, running, stop_pid
from tests.test_rhcos_join import COMPUTE, KEY, accepted_run, files_of

REPO = Path(__file__).resolve().parent.parent
AUTH = {"Authorization": "Bearer s3cret-token"}
JOIN = {
    "node": COMPUTE,
    "dns_names": [COMPUTE],
    "addresses": ["10.0.2.11"],
    "capacity": {"nvidia.com/gpu": "4"},
}


@dataclass
class Rig:
    profiles: Path
    state: Path
    kube: Kube
    installs: Path
    env: dict[str, str]

    def handoff(self, *args: str) -> subprocess.CompletedProcess[str]:
        argv = [
            sys.executable,
            "-m",
            "provision",
            "--profiles",
            str(self.profiles),
            "--state",
            str(self.state),
        ]
        argv += ["handoff", COMPUTE, "--kubeconfig", str(self.kube.kubeconfig), "--json", *args]
        return subprocess.run(argv, capture_output=True, text=True, env=self.env, cwd=REPO, timeout=240)

    def records(self) -> list[dict[str, Any]]:
        text = self.installs.read_text() if self.installs.exists() else ""
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    def node(self) -> dict[str, Any]:
        got = requests.get(f"{self.api}/api/v1/nodes/{COMPUTE}", headers=AUTH, timeout=10)
        got.raise_for_status()
        node: dict[str, Any] = got.json()
        return node

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.kube.port}"


@contextmanager
def gpu_operator(r: Rig) -> Iterator[None]:
    """What the GPU Operator does once a GPU node has joined: its device plugin advertises the GPUs."""
    stop = threading.Event()

    def advertise() -> None:
        while not stop.wait(0.2):
            got = requests.get(f"{r.api}/api/v1/nodes/{COMPUTE}", headers=AUTH, timeout=10)
            if got.status_code != 200:
                continue
            patch = [{"op": "add", "path": "/status/capacity/nvidia.com~1gpu", "value": "4"}]
            headers = {**AUTH, "Content-Type": "application/json-patch+json"}
            requests.patch(
                f"{r.api}/api/v1/nodes/{COMPUTE}", data=json.dumps(patch), headers=headers, timeout=10
            )
            return

    thread = threading.Thread(target=advertise, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=10)


@contextmanager
def rig(tmp: Path, join: str = "rhcos") -> Iterator[Rig]:
    """compute-1 accepted, its BMC an emulator system, the boot server on loopback, the test cluster."""
    system = fake_systems([COMPUTE])[0]
    with emulator(tmp / "bmc", [system]) as emu, serving(tmp, {}) as kube:
        profiles = tmp / "profiles"
        profiles.mkdir()
        for f in PROFILES.glob("*.yaml"):
            (profiles / f.name).write_text(f.read_text())
        lust = profiles / "circle-2-lust.yaml"
        lust.write_text(
            lust.read_text().replace("join: rhcos", f"join: {join}").replace("poll_s: 5", "poll_s: 0.5")
        )
        hosts = yaml.safe_load((profiles / "hosts.yaml").read_text())
        entry = next(h for h in hosts["hosts"] if h["name"] == COMPUTE)
        entry["bmc"] = {
            "url": emu.url,
            "system": system.path,
            "credentials": "env:FLOW_TEST_BMC",
            "verify_tls": False,
            "attempts": 2,
            "retry_delay_s": 0.1,
            "power_timeout_s": 30,
        }
        (profiles / "hosts.yaml").write_text(yaml.safe_dump(hosts, sort_keys=False))
        site = yaml.safe_load((profiles / "site.yaml").read_text())
        site["boot_server_url"] = f"http://127.0.0.1:{free_port()}"
        (profiles / "site.yaml").write_text(yaml.safe_dump(site, sort_keys=False))
        state = tmp / "state"
        accepted_run(state, tmp)
        (tmp / "host_keys.pub").write_text(KEY)
        (tmp / "join.json").write_text(json.dumps(JOIN))
        installs = tmp / "installs.jsonl"
        installer = [
            sys.executable, "-m", "tests.support.installer", "--bmc", emu.url, "--system", system.path,
            "--ipxe-url-file", str(state / "netboot" / f"{COMPUTE}.url"),
            "--host-keys", str(tmp / "host_keys.pub"),
            "--record", str(installs), "--kube-url", f"http://127.0.0.1:{kube.port}",
            "--kube-token", "s3cret-token", "--join-file", str(tmp / "join.json"),
        ]  # fmt: skip
        with running(installer, log=tmp / "installer.log", cwd=REPO):
            env = {**os.environ, "FLOW_TEST_BMC": "admin:password", "PYTHONPATH": str(REPO)}
            yield Rig(profiles, state, kube, installs, env)


def test_rhcos_join_ends_with_a_ready_labelled_node_and_never_reinstalls_twice(tmp_path: Path) -> None:
    with rig(tmp_path) as r:
        res = r.handoff()
        assert res.returncode == 0, res.stderr[-3000:]
        out = json.loads(res.stdout)
        assert out["join"] == "rhcos" and out["state"] == "handed-off"
        assert out["steps"] == ["rhcos_boot", "rhcos_install", "join_node", "label_node"]
        assert out["ready"] is True and out["gpu_capacity"] == "4"
        assert f"node/{COMPUTE}: quarantine taint dropped" in out["applied"]

        # The stand-in fetched the RHCOS script and the Ignition config with the token, found nothing
        # wrong in them, and called back as the installed RHCOS.
        (rec,) = r.records()
        assert rec["kind"] == "rhcos" and rec["ignition_status"] == 200 and rec["problems"] == []
        assert rec["join_status"] == 201 and rec["installed_status"] == 204

        # The client CSR, then the serving CSR, approved by us; the Node Ready, labelled, released.
        calls = r.kube.calls()
        approvals = [c["path"] for c in calls if c["method"] == "PUT" and c["path"].endswith("/approval")]
        assert [p.split("/")[-2] for p in approvals] == [f"csr-{COMPUTE}-client", f"csr-{COMPUTE}-serving"]
        node = r.node()
        assert any(c["type"] == "Ready" and c["status"] == "True" for c in node["status"]["conditions"])
        assert node["metadata"]["labels"]["inferno.circle"] == "2"
        assert node["metadata"]["labels"]["inferno.io/gpu.count"] == "4"
        taints = {(t["key"], t.get("value"), t["effect"]) for t in node["spec"]["taints"]}
        assert ("inferno/gpu", "true", "NoSchedule") in taints
        assert not [t for t in taints if t[0] == "inferno.io/acceptance"]
        # Before the GPUs were counted, the new node carried the quarantine taint.
        patches = [c for c in calls if c["method"] == "PATCH" and c["path"].endswith(f"/nodes/{COMPUTE}")]
        first = next(op["value"] for op in patches[0]["body"] if op["path"] == "/spec/taints")
        assert {"key": "inferno.io/acceptance", "value": "pending", "effect": "NoSchedule"} in first
        with StateStore.open(r.state) as store:
            assert store.get_host_state(COMPUTE) is HostState.handed_off
            docs = {d.name for d in store.documents(out["handoff_run"])}
            ignition = json.loads(store.get_document(out["handoff_run"], "ignition.json"))
        assert {"rhcos.ipxe", "ignition.json", "rhcos_boot.json"} <= docs
        # The stored copy carries the placeholder: the run's token is never written.
        header = files_of(ignition)["/etc/inferno/callback.header"]
        assert header == (0o600, "Authorization: Bearer NO-RUN-TOKEN\n")
        assert not (r.state / "netboot" / f"{COMPUTE}.url").exists()

        # Again: the node is Ready, so the host is never reinstalled; only the labels are checked.
        again = r.handoff()
        assert again.returncode == 0, again.stderr[-3000:]
        assert json.loads(again.stdout)["steps"] == ["label_node"]
        assert "already Ready: not reinstalling" in again.stderr
        assert len(r.records()) == 1


def test_a_controller_killed_after_the_rhcos_boot_resumes_without_a_second_power_cycle(
    tmp_path: Path,
) -> None:
    with rig(tmp_path) as r:
        argv = [sys.executable, "-m", "provision", "--profiles", str(r.profiles), "--state", str(r.state)]
        argv += ["handoff", COMPUTE, "--kubeconfig", str(r.kube.kubeconfig), "--json"]
        proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=r.env, cwd=REPO,
            start_new_session=True,
        )  # fmt: skip
        try:
            assert proc.stderr is not None
            for line in proc.stderr:
                if "rhcos_boot: ok" in line:
                    os.kill(proc.pid, signal.SIGKILL)
                    break
            proc.wait(timeout=60)
        finally:
            stop_pid(proc.pid)
        assert proc.returncode == -signal.SIGKILL
        res = r.handoff()
        assert res.returncode == 0, res.stderr[-3000:]
        out = json.loads(res.stdout)
        assert out["steps"] == ["rhcos_install", "join_node", "label_node"]
        assert "rhcos_boot: skipped (already done)" in res.stderr
        (rec,) = r.records()  # one RHCOS install: the rerun never power-cycled the host again
        assert rec["installed_status"] == 204
        with StateStore.open(r.state) as store:
            runs = store.list_runs(COMPUTE, "handoff")
            assert [str(x.status) for x in runs] == ["succeeded"]
            boots = [s for s in store.steps(runs[0].id) if s.step == "rhcos_boot"]
        assert len(boots) == 1


def test_metal3_join_creates_the_baremetalhost_follows_it_and_labels_the_node(tmp_path: Path) -> None:
    with rig(tmp_path, join="metal3") as r, gpu_operator(r):
        res = r.handoff()
        assert res.returncode == 0, res.stderr[-3000:]
        out = json.loads(res.stdout)
        assert out["join"] == "metal3"
        assert out["steps"] == ["metal3_register", "join_node", "label_node"]
        assert out["ready"] is True and out["gpu_capacity"] == "4"
        for state in ("registering", "inspecting", "available", "provisioning", "provisioned"):
            assert f"baremetalhost {COMPUTE}: {state}" in res.stderr
        created = {c["path"]: c["body"] for c in r.kube.calls() if c["method"] == "POST"}
        bmh = next(b for p, b in created.items() if p.endswith("/baremetalhosts"))
        assert bmh["spec"]["online"] is True and bmh["spec"]["bootMACAddress"] == "3c:ec:ef:20:01:10"
        assert bmh["spec"]["rootDeviceHints"] == {"serialNumber": "S6KLNA0W100201"}
        assert next(b for p, b in created.items() if p.endswith("/secrets"))["data"] == "<redacted>"
        node = r.node()
        assert node["metadata"]["labels"]["inferno.circle"] == "2"
        assert not [t for t in node["spec"]["taints"] if t["key"] == "inferno.io/acceptance"]
        assert r.records() == []  # the cluster provisioned it: our boot chain never ran


def test_provision_hosts_handoff_step_runs_the_handoff_steps_on_an_accepted_host(tmp_path: Path) -> None:
    """The `handoff` step of `provision host --kubeconfig` is the same journaled handoff: here on a host
    whose Node is already Ready (it joined before), so it is labelled, never reinstalled."""
    import io

    from provision.flow.accept_steps import AcceptSteps
    from provision.flow.engine import Cancel, StepCall, StepName, Waiter
    from provision.flow.hostenv import HostEnv, StepContext
    from provision.flow.logprogress import PlainProgress
    from provision.model.catalog import load_catalog
    from tests.support.kubeapi import ready_node

    state = tmp_path / "state"
    accepted_run(state, tmp_path)
    catalog = load_catalog(PROFILES)
    host = catalog.host(COMPUTE)
    node = ready_node(COMPUTE, {"nvidia.com/gpu": "4"})
    node["metadata"]["resourceVersion"] = "7"
    seed = {"nodes": {COMPUTE: node}}
    with serving(tmp_path, seed) as kube, StateStore.open(state) as store:
        run = store.list_runs(COMPUTE)[-1]
        log = io.StringIO()
        env = HostEnv(
            store=store, host=host, profile=catalog.profile_of(host),
            timeouts=catalog.profile_of(host).timeouts, progress=PlainProgress(log), catalog=catalog,
            boot_url="http://127.0.0.1:9", netboot_dir=tmp_path,
            profiles_dir=PROFILES, extras={"kubeconfig": str(kube.kubeconfig)},
        )  # fmt: skip
        cancel = Cancel()
        call = StepCall(COMPUTE, run.id, StepName.handoff, {"verdict": "accepted"},
                        Waiter(COMPUTE, "handoff", env.progress, cancel), 1)  # fmt: skip
        result = AcceptSteps(StepContext(env, run)).handoff(call)
        assert result.facts["handed_off"] is True
        assert "handed off (join rhcos): node Ready" in result.message
        assert re.search(
            r"rhcos_boot: skipped after [0-9.]+ s: node \S+ is already Ready: not reinstalling",
            log.getvalue(),
        )
        handoff = store.get_run(result.facts["handoff_run"])
        assert handoff.kind == "handoff" and str(handoff.status) == "succeeded"
        assert store.get_host_state(COMPUTE) is HostState.handed_off
        assert [c for c in kube.calls() if c["method"] == "PATCH" and "/nodes/" in c["path"]]
