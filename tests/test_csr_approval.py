"""CSR approval by the rule (provision.handoff.csr) with real X.509 CSRs made by `cryptography`, and
`await_node` against the test Kubernetes API server, whose simulated kubelet asks for its client and
serving certificates and registers its Node as they are approved."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from provision.handoff.csr import CsrKind, CsrState, NodeIdentity, decide, parse_csr
from provision.handoff.join import approve, await_node, list_csrs
from provision.handoff.kube import client, connect
from provision.model.errors import ExternalError
from tests.support.kubeapi import serving
from tests.support.kubecsr import (
    BOOTSTRAPPER,
    SERVING_SIGNER,
    client_csr,
    csr_object,
    request_b64,
    serving_csr,
)

HOST = "inferno-host-compute-1"
OTHER = "inferno-host-compute-2"
IP = "10.0.1.11"
ID = NodeIdentity(HOST, (HOST, f"{HOST}.lab.example"), (IP, "10.0.2.11"))


def good_serving(name: str = "s") -> dict[str, Any]:
    return serving_csr(name, HOST, [HOST], [IP])


def with_spec(obj: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {**obj, "spec": {**obj["spec"], **spec}}


# (case, CSR object, in handoff, client done, expected approve, words the reason holds)
CASES: list[tuple[str, dict[str, Any], bool, bool, bool, str]] = [
    ("client", client_csr("c", HOST), True, False, True, "kubelet client certificate for " + HOST),
    ("client renewal by the node", client_csr("c", HOST, f"system:node:{HOST}"), True, True, True, "client"),
    (
        "client rsa with key encipherment",
        with_spec(
            client_csr("c", HOST, key="rsa"), usages=["digital signature", "key encipherment", "client auth"]
        ),
        True,
        False,
        True,
        "client",
    ),
    ("serving after client", good_serving(), True, True, True, "kubelet serving certificate"),
    (
        "serving with a subset of names",
        serving_csr("s", HOST, [f"{HOST}.lab.example"], []),
        True,
        True,
        True,
        "serving",
    ),
    (
        "another node's client",
        client_csr("c", OTHER),
        True,
        False,
        False,
        f"subject CN 'system:node:{OTHER}' is not 'system:node:{HOST}'",
    ),
    ("another node's serving", serving_csr("s", OTHER, [OTHER], [IP]), True, True, False, "subject CN"),
    (
        "extra SAN",
        serving_csr("s", HOST, [HOST, "evil.example.com"], [IP]),
        True,
        True,
        False,
        "SANs ['evil.example.com'] are not the host's names and addresses",
    ),
    ("unknown IP SAN", serving_csr("s", HOST, [HOST], ["10.9.9.9"]), True, True, False, "SANs ['10.9.9.9']"),
    ("no SAN", serving_csr("s", HOST, [], []), True, True, False, "no SANs"),
    (
        "email SAN",
        csr_object(
            "s",
            request_b64(f"system:node:{HOST}", dns=[HOST], emails=["a@b.c"]),
            SERVING_SIGNER,
            f"system:node:{HOST}",
            ["digital signature", "server auth"],
        ),
        True,
        True,
        False,
        "neither DNS names nor IP addresses",
    ),
    (
        "client with SANs",
        with_spec(client_csr("c", HOST), request=request_b64(f"system:node:{HOST}", dns=[HOST])),
        True,
        False,
        False,
        "a client certificate carries no SANs",
    ),
    (
        "wrong signer",
        with_spec(client_csr("c", HOST), signerName="kubernetes.io/kube-apiserver-client"),
        True,
        False,
        False,
        "signer 'kubernetes.io/kube-apiserver-client' is not a kubelet signer",
    ),
    (
        "serving by the bootstrapper",
        serving_csr("s", HOST, [HOST], [IP], username=BOOTSTRAPPER),
        True,
        True,
        False,
        "expected the node itself",
    ),
    (
        "client by a stranger",
        client_csr("c", HOST, "system:serviceaccount:default:builder"),
        True,
        False,
        False,
        "not the node bootstrapper",
    ),
    ("not in handoff", client_csr("c", HOST), False, False, False, f"host {HOST} is not in its handoff step"),
    ("serving before client", good_serving(), True, False, False, "client CSR is not approved yet"),
    (
        "wrong organization",
        with_spec(client_csr("c", HOST), request=request_b64(f"system:node:{HOST}", orgs=["system:masters"])),
        True,
        False,
        False,
        "subject O ['system:masters']",
    ),
    (
        "server auth on a client",
        with_spec(client_csr("c", HOST), usages=["digital signature", "server auth"]),
        True,
        False,
        False,
        "usages ['digital signature', 'server auth'] are not",
    ),
    (
        "garbage request",
        with_spec(client_csr("c", HOST), request=base64.b64encode(b"junk").decode()),
        True,
        False,
        False,
        "not a base64 PEM certificate request",
    ),
]


@pytest.mark.parametrize(
    ("case", "obj", "in_handoff", "client_done", "approve", "reason"), CASES, ids=[c[0] for c in CASES]
)
def test_the_rule(
    case: str, obj: dict[str, Any], in_handoff: bool, client_done: bool, approve: bool, reason: str
) -> None:
    decision = decide(parse_csr(obj), ID, in_handoff, client_done)
    assert decision is not None
    assert (decision.approve, decision.csr) == (approve, obj["metadata"]["name"])
    assert reason in decision.reason


def test_decided_csrs_are_left_alone() -> None:
    for kind in ("Approved", "Denied", "Failed"):
        obj = {**client_csr("c", HOST), "status": {"conditions": [{"type": kind, "status": "True"}]}}
        csr = parse_csr(obj)
        assert csr.state is CsrState(kind.lower())
        assert decide(csr, ID, True, False) is None


def test_parse_reads_the_request() -> None:
    csr = parse_csr(serving_csr("s", HOST, [HOST], [IP]))
    assert (csr.kind, csr.common_name, csr.organizations, csr.key) == (
        CsrKind.serving,
        f"system:node:{HOST}",
        ("system:nodes",),
        "ec",
    )
    assert (csr.dns_names, csr.ip_addresses, csr.state) == ((HOST,), (IP,), CsrState.pending)


def csr_state(kube_api: Any, name: str) -> list[str]:
    raw = client.CertificatesV1Api(kube_api).read_certificate_signing_request(name, _preload_content=False)
    return [c["type"] for c in (json.loads(raw.data).get("status") or {}).get("conditions") or []]


def test_await_node_approves_the_pair_in_order_and_ignores_hostile_csrs(tmp_path: Path) -> None:
    joining = {"node": HOST, "dns_names": [HOST], "addresses": [IP], "capacity": {"nvidia.com/gpu": "4"}}
    hostile = [
        serving_csr("evil-extra-san", HOST, [HOST, "evil.example.com"], [IP]),
        client_csr("evil-other-node", OTHER),
        with_spec(client_csr("evil-signer", HOST), signerName="example.com/anything"),
    ]
    with serving(tmp_path, {"joining": [joining], "certificatesigningrequests": {}}) as kube:
        api = connect(kube.kubeconfig)
        certs = client.CertificatesV1Api(api)
        for obj in hostile:
            certs.create_certificate_signing_request(obj)
        notes: list[str] = []
        result = await_node(api, ID, lambda: True, 30, notes.append, interval_s=0.05, max_interval_s=0.2)
        assert result.ready is True
        assert result.approved == [f"csr-{HOST}-client", f"csr-{HOST}-serving"]
        refused = dict(result.refused)
        assert set(refused) == {"evil-extra-san", "evil-other-node", "evil-signer"}
        assert "evil.example.com" in refused["evil-extra-san"]
        for obj in hostile:  # never denied: still pending for whoever owns them
            assert csr_state(api, obj["metadata"]["name"]) == []
        assert csr_state(api, f"csr-{HOST}-client") == ["Approved"]
        node = client.CoreV1Api(api).read_node(HOST)
        assert node.metadata.labels["kubernetes.io/hostname"] == HOST
        puts = [c for c in kube.calls() if c["method"] == "PUT"]
        assert [c["path"].rsplit("/", 2)[-2:] for c in puts] == [
            [f"csr-{HOST}-client", "approval"],
            [f"csr-{HOST}-serving", "approval"],
        ]
        message = puts[0]["body"]["status"]["conditions"][-1]["message"]
        assert message.startswith(f"approved by inferno-provision for {HOST}")
    assert any(n.startswith(f"csr csr-{HOST}-client: approved") for n in notes)
    assert any(n.startswith("csr evil-other-node: not approved (subject CN") for n in notes)
    assert notes[-1] == f"node {HOST} is Ready"


def test_a_host_not_in_handoff_gets_nothing_and_the_wait_times_out(tmp_path: Path) -> None:
    with serving(tmp_path, {"joining": [{"node": HOST, "addresses": [IP]}]}) as kube:
        api = connect(kube.kubeconfig)
        notes: list[str] = []
        with pytest.raises(ExternalError) as err:
            await_node(api, ID, lambda: False, 0.5, notes.append, interval_s=0.05, max_interval_s=0.1)
        assert csr_state(api, f"csr-{HOST}-client") == []
    assert str(err.value) == (
        f"kubernetes: node {HOST}: waited 0.5 s for the kubelet client CSR of {HOST} "
        "(signer kubernetes.io/kube-apiserver-client-kubelet); refused 1 CSR(s)"
    )
    assert f"csr csr-{HOST}-client: not approved (host {HOST} is not in its handoff step)" in notes


def test_cancel_stops_the_wait(tmp_path: Path) -> None:
    from provision.flow.waits import Cancel, FlowInterrupted

    cancel = Cancel()
    cancel.set("operator pressed ctrl-c")
    with serving(tmp_path, {}) as kube, pytest.raises(FlowInterrupted, match="operator pressed ctrl-c"):
        await_node(connect(kube.kubeconfig), ID, lambda: True, 30, lambda _: None, cancel=cancel)


def test_a_serving_csr_before_its_client_is_asked_again_not_refused_for_good() -> None:
    early = decide(parse_csr(good_serving()), ID, True, False)
    assert early is not None and (early.approve, early.early) == (False, True)
    hostile = decide(parse_csr(serving_csr("s", HOST, [HOST], [IP], username=BOOTSTRAPPER)), ID, True, False)
    assert hostile is not None and (hostile.approve, hostile.early) == (False, False)


def test_a_client_csr_approved_by_the_cluster_is_left_alone_and_the_serving_one_follows(
    tmp_path: Path,
) -> None:
    with serving(tmp_path, {"joining": [{"node": HOST, "dns_names": [HOST], "addresses": [IP]}]}) as kube:
        api = connect(kube.kubeconfig)
        certs = client.CertificatesV1Api(api)
        theirs = json.loads(
            certs.read_certificate_signing_request(f"csr-{HOST}-client", _preload_content=False).data
        )
        theirs["status"] = {
            "conditions": [{"type": "Approved", "status": "True", "reason": "MachineApprover"}]
        }
        certs.replace_certificate_signing_request_approval(f"csr-{HOST}-client", theirs)
        result = await_node(api, ID, lambda: True, 30, lambda _: None, interval_s=0.05, max_interval_s=0.2)
        assert (result.approved, result.refused, result.ready) == ([f"csr-{HOST}-serving"], [], True)
        reasons = [
            c.reason for c in (certs.read_certificate_signing_request(f"csr-{HOST}-client").status.conditions)
        ]
    assert reasons == ["MachineApprover"]  # ours was not added on top


def test_approval_of_a_csr_changed_since_it_was_read_is_not_sent(tmp_path: Path) -> None:
    with serving(tmp_path, {"joining": [{"node": HOST, "addresses": [IP]}]}) as kube:
        api = connect(kube.kubeconfig)
        stale = next(c for c in list_csrs(api) if c.name == f"csr-{HOST}-client")
        stale = parse_csr(
            {**client_csr(stale.name, HOST), "metadata": {"name": stale.name, "resourceVersion": "1"}}
        )
        assert approve(api, stale, HOST, "test") is False
        assert not [c for c in kube.calls() if c["method"] == "PUT"]
