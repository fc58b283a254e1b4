"""Adapter: let a joining host's kubelet in. Approve its client CSR, then its serving CSR, by the rule
in `provision.handoff.csr` (never anything else), and wait for its Node to be Ready.

Polling, not a watch: a list of CSRs every interval, backing off (doubling up to `max_interval_s`)
while nothing changes, back to the shortest interval when something does. Every decision is told
once per CSR through `note`, approvals and refusals alike, with the reason. Approval is an UPDATE of
the `/approval` subresource carrying the resourceVersion we read, so a CSR someone else changed
meanwhile is re-read at the next poll, not overwritten.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from provision.handoff.csr import Csr, CsrKind, CsrState, Decision, NodeIdentity, decide, parse_csr
from provision.handoff.kube import ApiClient, _fail, client
from provision.model.errors import ExternalError

__all__ = ["Cancel", "JoinResult", "NodeIdentity", "approve", "await_node", "list_csrs"]

APPROVER = "inferno-provision"
# `since` is our clock, a CSR's creationTimestamp the API server's: a request made this much before
# the handoff began still counts as this install's. A stale one is from the install before (days).
CLOCK_SKEW = timedelta(minutes=2)


class Cancel(Protocol):
    """What a wait needs of provision.flow.waits.Cancel (handoff may not import flow)."""

    def sleep(self, seconds: float) -> None: ...

    def check(self) -> None: ...


@dataclass
class JoinResult:
    approved: list[str] = field(default_factory=list)  # CSR names, in the order approved
    refused: list[tuple[str, str]] = field(default_factory=list)  # (CSR name, reason)
    ready: bool = False


def list_csrs(api: ApiClient) -> list[Csr]:
    """Raw JSON, parsed by us: a malformed CSR someone else made must not break the client's models."""
    certs = client.CertificatesV1Api(api)
    try:
        resp = certs.list_certificate_signing_request(_preload_content=False)
        items = json.loads(resp.data).get("items") or []
    except (ApiException, HTTPError) as exc:
        raise _fail("certificatesigningrequests", exc) from None
    except ValueError as exc:
        raise ExternalError(f"kubernetes: certificatesigningrequests: not JSON ({exc})") from None
    return [parse_csr(item) for item in items if isinstance(item, dict)]


def approve(api: ApiClient, csr: Csr, host: str, reason: str) -> bool:
    """Approve through /approval; False when the CSR changed since it was read (409: look again)."""
    certs = client.CertificatesV1Api(api)
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    try:
        resp = certs.read_certificate_signing_request(csr.name, _preload_content=False)
        current = json.loads(resp.data)
        if (
            csr.resource_version is not None
            and current["metadata"].get("resourceVersion") != csr.resource_version
        ):
            return False
        conditions = list((current.get("status") or {}).get("conditions") or [])
        conditions.append(
            {
                "type": "Approved",
                "status": "True",
                "reason": "InfernoProvisionApproved",
                "message": f"approved by {APPROVER} for {host}: {reason}",
                "lastUpdateTime": now,
                "lastTransitionTime": now,
            }
        )
        current.setdefault("status", {})["conditions"] = conditions
        certs.replace_certificate_signing_request_approval(csr.name, current, _preload_content=False)
    except ApiException as exc:
        if exc.status == 409:
            return False
        raise _fail(f"certificatesigningrequests/{csr.name}/approval", exc) from None
    except HTTPError as exc:
        raise _fail(f"certificatesigningrequests/{csr.name}/approval", exc) from None
    except (ValueError, KeyError) as exc:
        raise ExternalError(
            f"kubernetes: certificatesigningrequests/{csr.name}: unreadable ({exc})"
        ) from None
    return True


def node_state(api: ApiClient, node: str) -> tuple[bool, bool]:
    """(exists, Ready)."""
    try:
        resp = client.CoreV1Api(api).read_node(node, _preload_content=False)
        status = json.loads(resp.data).get("status") or {}
    except ApiException as exc:
        if exc.status == 404:
            return False, False
        raise _fail(f"node {node}", exc) from None
    except HTTPError as exc:
        raise _fail(f"node {node}", exc) from None
    except ValueError as exc:
        raise ExternalError(f"kubernetes: node {node}: not JSON ({exc})") from None
    conditions = status.get("conditions") or []
    return True, any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def _fresh(csr: Csr, since: datetime) -> bool:
    return csr.created is not None and csr.created >= since - CLOCK_SKEW


def _ours(csr: Csr, node: str) -> bool:
    return csr.common_name == f"system:node:{node}"


def await_node(
    api: ApiClient,
    identity: NodeIdentity,
    in_handoff: Callable[[], bool],
    timeout_s: float,
    note: Callable[[str], None],
    cancel: Cancel | None = None,
    interval_s: float = 1.0,
    max_interval_s: float = 10.0,
    since: datetime | None = None,
) -> JoinResult:
    """Approve the host's client CSR, then its serving CSR, by the rule; return once the Node is Ready
    and its serving certificate approved. Timeout: ExternalError naming what is still missing.

    `since` (aware): when this install began (the handoff run's start). CSRs made before it (or whose
    creation time is unknown) are the host's previous install's: never approved, never counted as
    done, so a stale Node still Ready from before and its old certificates do not end the wait."""
    node = identity.node_name
    result = JoinResult()
    decided: set[str] = set()  # each CSR is decided (and told) once
    stale: set[str] = set()  # made before `since`: told once, left alone
    held: set[str] = set()  # refused while the host was not in handoff: told once, decided again
    client_done = serving_done = False
    deadline = time.monotonic() + timeout_s
    wait = interval_s
    last = ""
    while True:
        if cancel is not None:
            cancel.check()
        exists, ready = node_state(api, node)
        changed = False
        csrs = list_csrs(api)
        if since is not None:
            for csr in csrs:
                if not _fresh(csr, since) and _ours(csr, node) and csr.name not in stale:
                    stale.add(csr.name)
                    made = csr.created.isoformat() if csr.created else "at an unknown time"
                    note(f"csr {csr.name}: made {made}, before this install began: left alone")
            csrs = [c for c in csrs if _fresh(c, since)]
        # Already approved (by us in an earlier run, or by the cluster's own approver) counts as done.
        for csr in csrs:
            if _ours(csr, node) and csr.state is CsrState.approved and csr.name not in decided:
                client_done |= csr.kind is CsrKind.client
                serving_done |= csr.kind is CsrKind.serving
        # Client CSRs first: a serving CSR listed before its client's approval waits for the next poll.
        for csr in sorted(csrs, key=lambda c: c.kind is not CsrKind.client):
            if csr.name in decided:
                continue
            decision = decide(csr, identity, in_handoff(), client_done or exists)
            if decision is None:
                continue
            if decision.early:
                continue  # not a refusal: asked again once the client CSR is approved
            if decision.again:  # the host may enter its handoff step before this wait ends
                if csr.name not in held:
                    held.add(csr.name)
                    _record(result, decision, note)
                    changed = True
                continue
            changed = True
            decided.add(csr.name)
            if decision.approve and not approve(api, csr, node, decision.reason):
                decided.discard(csr.name)  # changed under us: read again
                continue
            _record(result, decision, note)
            client_done |= decision.approve and decision.kind is CsrKind.client
            serving_done |= decision.approve and decision.kind is CsrKind.serving
        result.ready = ready
        if ready and serving_done:
            note(f"node {node} is Ready")
            return result
        status = _missing(node, client_done, serving_done, exists, ready)
        if status != last:
            note(f"waiting: {status}")
            last, changed = status, True
        if time.monotonic() >= deadline:
            refused = f"; refused {len(result.refused)} CSR(s)" if result.refused else ""
            raise ExternalError(f"kubernetes: node {node}: waited {timeout_s:g} s for {status}{refused}")
        wait = interval_s if changed else min(wait * 2, max_interval_s)
        pause = max(0.0, min(wait, deadline - time.monotonic()))
        if cancel is not None:
            cancel.sleep(pause)
        else:
            time.sleep(pause)


def _record(result: JoinResult, decision: Decision, note: Callable[[str], None]) -> None:
    if decision.approve:
        result.approved.append(decision.csr)
        result.refused = [r for r in result.refused if r[0] != decision.csr]  # held, then let in
        note(f"csr {decision.csr}: approved ({decision.reason})")
    else:
        result.refused.append((decision.csr, decision.reason))
        note(f"csr {decision.csr}: not approved ({decision.reason})")


def _missing(node: str, client_done: bool, serving_done: bool, exists: bool, ready: bool) -> str:
    if not client_done and not exists:
        return f"the kubelet client CSR of {node} (signer kubernetes.io/kube-apiserver-client-kubelet)"
    if not serving_done:
        return f"the kubelet serving CSR of {node} (signer kubernetes.io/kubelet-serving)"
    if not exists:
        return f"node {node} to register"
    return f"node {node} to be Ready" if not ready else f"node {node}"
