"""Edge cases of the join against the test Kubernetes API server (tests/support/kubeapi.py): a CSR
refused only because the host was not yet in its handoff step is decided again within the same wait;
on a reinstall, the Node still Ready from before and its old approved CSRs never end the wait; and a
Node read without a resourceVersion is a clear error, never a KeyError."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from provision.handoff.csr import NodeIdentity
from provision.handoff.join import await_node
from provision.handoff.kube import connect, patch_node
from provision.model.errors import ExternalError
from tests.support.kubeapi import ready_node, serving
from tests.support.kubecsr import client_csr, serving_csr

HOST = "inferno-host-compute-1"
IP = "10.0.1.11"
ID = NodeIdentity(HOST, (HOST,), (IP,))


def test_a_csr_held_while_the_host_was_not_in_handoff_is_approved_once_it_is(tmp_path: Path) -> None:
    asked: list[bool] = []

    def in_handoff() -> bool:  # the host's handoff step begins after the first two polls
        asked.append(len(asked) >= 2)
        return asked[-1]

    joining = {"node": HOST, "dns_names": [HOST], "addresses": [IP]}
    with serving(tmp_path, {"joining": [joining]}) as kube:
        notes: list[str] = []
        result = await_node(connect(kube.kubeconfig), ID, in_handoff, 30, notes.append, interval_s=0.05)
    assert result.ready and result.approved == [f"csr-{HOST}-client", f"csr-{HOST}-serving"]
    assert result.refused == []  # held, then let in: no refusal stands
    held = f"csr csr-{HOST}-client: not approved (host {HOST} is not in its handoff step)"
    assert notes.count(held) == 1  # told once, however many polls it waited
    assert notes.index(held) < notes.index(
        f"csr csr-{HOST}-client: approved (kubelet client certificate for {HOST} by the rule "
        "(kubernetes.io/kube-apiserver-client-kubelet))"
    )
    assert False in asked and asked[-1] is True


def _approved_yesterday(obj: dict[str, Any]) -> dict[str, Any]:
    made = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    obj["metadata"] = {**obj["metadata"], "creationTimestamp": made, "resourceVersion": "3"}
    obj["status"] = {"conditions": [{"type": "Approved", "status": "True", "reason": "InfernoProvision"}]}
    return obj


def test_a_stale_ready_node_and_its_old_csrs_do_not_end_the_wait_of_a_reinstall(tmp_path: Path) -> None:
    old = {
        "csr-old-client": _approved_yesterday(client_csr("csr-old-client", HOST)),
        "csr-old-serving": _approved_yesterday(serving_csr("csr-old-serving", HOST, [HOST], [IP])),
    }
    stale = {**ready_node(HOST), "metadata": {"name": HOST, "labels": {}, "resourceVersion": "5"}}
    seed = {
        "nodes": {HOST: stale},
        "certificatesigningrequests": old,
        "joining": [{"node": HOST, "dns_names": [HOST], "addresses": [IP]}],  # the reinstalled kubelet
    }
    with serving(tmp_path, seed) as kube:
        api = connect(kube.kubeconfig)
        notes: list[str] = []
        began = datetime.now(UTC)
        result = await_node(api, ID, lambda: True, 30, notes.append, interval_s=0.05, since=began)
    # This install's pair was approved before the wait ended, in order; the old pair never counted.
    assert result.approved == [f"csr-{HOST}-client", f"csr-{HOST}-serving"] and result.ready
    for name in old:
        assert sum(1 for n in notes if n.startswith(f"csr {name}: made ") and n.endswith("left alone")) == 1


def test_a_node_without_a_resource_version_is_a_clear_error(tmp_path: Path) -> None:
    node = ready_node(HOST)  # seeded as is: the server answers it without a resourceVersion
    assert "resourceVersion" not in node["metadata"]
    with serving(tmp_path, {"nodes": {HOST: node}}) as kube:
        with pytest.raises(ExternalError) as err:
            patch_node(connect(kube.kubeconfig), ready_node(HOST), set())
        patches = [c for c in kube.calls() if c["method"] == "PATCH"]
    assert str(err.value) == (
        f"kubernetes: node {HOST}: expected metadata.resourceVersion (to guard the patch against a "
        "concurrent change), got none: not patched"
    )
    assert patches == []
