"""`provision host` with `handoff.join: rhcos`, end to end on real parts, to a Ready, labelled Node.

The host is this machine (tests.support.machine_profile): its profile is written from the agent's own
inventory of it, its BMC (sushy-emulator) shows its CPUs and NIC, and what neither can give evidence
for here is waived in the lab profile with the reason, so the verdict is an honest `accepted`. Then
the same `provision host` process hands it off: the installer stand-in plays the RHCOS live
installer (it fetches the iPXE script and the Ignition config with the handoff run's token, checks
them, posts the callbacks) and the first boot's kubelet, whose CSRs the test Kubernetes API server
(tests.support.kubeapi) turns into a Node once they are approved by the rule.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import requests

from provision.model.catalog import load_catalog
from provision.store.lifecycle import HostState
from provision.store.state import StateStore
from tests.support.flowhost import flow_host
from tests.support.machine_profile import machine_profile, waivers
from tests.test_rhcos_join import files_of

pytestmark = pytest.mark.slow


def test_provision_host_accepts_this_machine_and_hands_it_off_to_a_ready_labelled_node(
    tmp_path: Path,
) -> None:
    with flow_host(tmp_path, accepted=True, join=True) as h:
        assert h.kube is not None
        ran = h.run("--kubeconfig", str(h.kube.kubeconfig))
        # Accepted on evidence: every required finding passed; what was waived is shown, with why.
        run_dir = h.state / "runs" / str(ran.summary["run_id"])
        record = json.loads((run_dir / "acceptance.json").read_text())
        findings = record["findings"]
        short = [
            (f["id"], f["verdict"], f["observed"])
            for f in findings
            if f["required"] and f["verdict"] != "pass"
        ]
        assert record["verdict"] == "accepted" and not short, short
        assert ran.rc == 0, ran.stderr[-3000:]
        assert ran.summary["outcome"] == "ok" and ran.summary["verdict"] == "accepted"
        by_id = {f["id"]: f for f in findings}
        assert by_id["cpu_views_agree:node"]["verdict"] == "pass"  # the BMC's CPUs are the OS's
        assert by_id["cpu_socket_count:node"]["verdict"] == "pass"
        for suite in ("cpu", "memory"):  # the contract: each suite of the plan, run to its end
            assert by_id[f"contract_suite:suite:{suite}"]["verdict"] == "pass"
            assert by_id[f"suite_completed:suite:{suite}"]["verdict"] == "pass"
        assert by_id["nic_views_agree:node"]["verdict"] == "pass"  # the BMC's NIC is the OS's
        waived = [f for f in findings if f["waived"]]
        assert waived and all(f["verdict"] != "fail" and f["waived"] for f in waived)

        # The handoff run: RHCOS reinstall, the join, the labels; journaled as its own run.
        with StateStore.open(h.state) as store:
            (handoff,) = store.list_runs(h.name, "handoff")
            steps = [(s.step, str(s.outcome)) for s in store.steps(handoff.id)]
            ignition = json.loads(store.get_document(handoff.id, "ignition.json"))
            assert store.get_host_state(h.name) is HostState.handed_off
        assert str(handoff.status) == "succeeded"
        done = [step for step, outcome in steps if outcome == "ok"]
        assert done == ["rhcos_boot", "rhcos_install", "join_node", "label_node"], steps
        assert ("metal3_register", "skipped") in steps
        header = files_of(ignition)["/etc/inferno/callback.header"]  # the stored copy: never the token
        assert header == (0o600, "Authorization: Bearer NO-RUN-TOKEN\n")

        # One Rocky install, then one RHCOS install: the stand-in fetched the script and the Ignition
        # config with the token, found nothing wrong in them, joined, and called back.
        records = [json.loads(x) for x in h.installs.read_text().splitlines() if x.strip()]
        assert [r.get("kind", "kickstart") for r in records] == ["kickstart", "rhcos"]
        rhcos = records[1]
        assert rhcos["ignition_status"] == 200 and rhcos["problems"] == []
        assert rhcos["join_status"] == 201 and rhcos["installed_status"] == 204

        # The client CSR, then the serving CSR, approved; the Node Ready, labelled, released.
        calls = h.kube.calls()
        approvals = [c["path"] for c in calls if c["method"] == "PUT" and c["path"].endswith("/approval")]
        assert [p.split("/")[-2] for p in approvals] == [f"csr-{h.name}-client", f"csr-{h.name}-serving"]
        node = _node(h.kube.port, h.name)
        assert any(c["type"] == "Ready" and c["status"] == "True" for c in node["status"]["conditions"])
        profile = load_catalog(h.profiles).profile_of(load_catalog(h.profiles).host(h.name))
        labels = node["metadata"]["labels"]
        assert profile.platform.labels and profile.platform.labels.items() <= labels.items()
        assert not [t for t in node["spec"].get("taints", []) if t["key"] == "inferno.io/acceptance"]
        patches = [c for c in calls if c["method"] == "PATCH" and c["path"].endswith(f"/nodes/{h.name}")]
        first = next(op["value"] for op in patches[0]["body"] if op["path"] == "/spec/taints")
        assert {"key": "inferno.io/acceptance", "value": "pending", "effect": "NoSchedule"} in first


def _node(port: int, name: str) -> dict[str, Any]:
    got = requests.get(
        f"http://127.0.0.1:{port}/api/v1/nodes/{name}",
        headers={"Authorization": "Bearer s3cret-token"},
        timeout=10,
    )
    got.raise_for_status()
    node: dict[str, Any] = got.json()
    return node


BASE: dict[str, Any] = {
    "name": "p",
    "chassis": {"vendor": "Supermicro", "model": "m", "height_u": 2},
    "cpu": {"model": "AMD EPYC 9354 32-Core Processor", "vendor": "AuthenticAMD", "cpuid_family": 25},
    "memory": {"dimm_count": 8, "part_number": "X"},
    "gpus": {"count": 8},
}
VM = {
    "cpus": [{"model": "AMD EPYC", "vendor": "AuthenticAMD", "cores": 2, "threads": 2, "family": 25}],
    "memory_total_mib": 24105,
    "dimms": [],
    "nics": [
        {"name": "eth0", "mac": "02:fc:00:00:00:01", "speed_mbps": None, "link_up": True, "driver": "v"}
    ],
    "gaps": {"memory.dimms": "dmidecode: no SMBIOS entry point", "gpus": "nvmlInit failed"},
}
METAL = {
    "cpus": [
        {
            "model": "AMD EPYC 9354 32-Core Processor",
            "vendor": "AuthenticAMD",
            "cores": 32,
            "threads": 64,
            "family": 25,
            "model_id": 17,
            "max_speed_mhz": 3800,
        },
    ]
    * 2,
    "memory_total_mib": 262144,
    "dimms": [{"present": True, "size_mib": 32768, "type": "DDR5", "ecc": True, "configured_mts": 4800}] * 8,
    "nics": [{"name": "eth0", "mac": "3c:ec:ef:20:01:10", "speed_mbps": 10000, "link_up": True}],
    "gaps": {},
}


def test_the_machine_profile_is_what_the_inventory_shows_and_waives_only_its_gaps() -> None:
    vm = machine_profile(BASE, VM, cpu_s=2)
    assert vm["lab"] is True and vm["storage"] == [] and "gpus" not in vm
    assert (vm["cpu"]["model"], vm["cpu"]["sockets"], vm["cpu"]["cores_per_socket"]) == ("AMD EPYC", 1, 2)
    assert vm["cpu"]["threads_per_core"] == 1
    assert vm["memory"]["ecc"] is False  # no DIMM seen: no ECC claimed, so EDAC is not held against it
    checks = {w["check"]: w["reason"] for w in vm["acceptance"]["not_required"]}
    assert {"dimm_count", "memory_total_mib", "gpu_count", "nic_link", "peak_power"} <= set(checks)
    assert "no SMBIOS entry point" in checks["dimm_count"] and "nvmlInit failed" in checks["gpu_count"]
    assert vm["burnin"]["acceptance"] == vm["burnin"]["quick"]  # the contract is the plan it runs
    assert [x["suite"] for x in vm["burnin"]["acceptance"]["suites"]] == ["cpu", "memory"]

    metal = machine_profile(BASE, METAL, cpu_s=2)
    assert (metal["cpu"]["sockets"], metal["cpu"]["threads_per_core"], metal["cpu"]["base_mhz"]) == (
        2,
        2,
        3800,
    )
    assert metal["memory"]["dimm_count"] == 8 and metal["memory"]["ecc"] is True
    assert metal["network"][0]["speed_gbps"] == 10
    kept = {w["check"] for w in waivers(METAL)}
    assert not kept & {"dimm_count", "memory_total_mib", "gpu_count", "nic_link"}
