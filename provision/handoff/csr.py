"""The rule that approves a joining host's kubelet CertificateSigningRequests, and nothing else.

Pure: a CSR object (certificates.k8s.io/v1, as a dict) is parsed into `Csr`, and `decide` says
approve or refuse, always with the reason. Refusing means "not approved by us": the CSR is left
pending for whoever owns it, never denied.

The kubelet asks twice (kubelet TLS bootstrapping):
- the CLIENT certificate, signer kubernetes.io/kube-apiserver-client-kubelet, requested with the
  bootstrap credentials (OpenShift: the node-bootstrapper service account; kubeadm: a
  system:bootstrap:<token-id> user) or, on renewal, by the node itself. Approved when the subject is
  CN=system:node:<host>, O=system:nodes, there are no SANs, and the usages are exactly those a
  kubelet asks for;
- then the SERVING certificate, signer kubernetes.io/kubelet-serving, requested by the node itself
  (username system:node:<host>). Approved only once the client CSR was approved or the Node exists,
  with the same subject, and SANs that are all the host's names and addresses: every SAN must be one
  of the host's, at least one must be present, and no other SAN kind (email, URI) is allowed. Not
  every name and address need be present: the kubelet puts in the addresses it reports on the Node
  (often one of several interfaces), and that is no widening of what the host may claim.

Usages: kube-controller-manager's own kubelet-client check accepts {digital signature, client auth}
with or without key encipherment, and older kubelets add key encipherment to EC keys in their
bootstrap CSR; key encipherment grants nothing an EC key can use, so both sets are accepted, for
client and serving alike. In every case the host must be in its handoff step.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

CLIENT_SIGNER = "kubernetes.io/kube-apiserver-client-kubelet"
SERVING_SIGNER = "kubernetes.io/kubelet-serving"
NODE_PREFIX = "system:node:"
NODES_GROUP = "system:nodes"
# Who may ask for a node's first client certificate (then the node itself renews it).
BOOTSTRAPPERS = ("system:serviceaccount:openshift-machine-config-operator:node-bootstrapper",)
BOOTSTRAP_TOKEN_PREFIX = "system:bootstrap:"
CLIENT_USAGES = (
    frozenset({"digital signature", "client auth"}),
    frozenset({"digital signature", "key encipherment", "client auth"}),
)
SERVING_USAGES = (
    frozenset({"digital signature", "server auth"}),
    frozenset({"digital signature", "key encipherment", "server auth"}),
)
WAITS_FOR_CLIENT = "the node's client CSR is not approved yet and the Node does not exist"


@dataclass(frozen=True)
class NodeIdentity:
    node_name: str  # the host's name = the Node name
    dns_names: tuple[str, ...]  # names allowed as SANs in the serving CSR
    addresses: tuple[str, ...]  # IPs allowed as SANs in the serving CSR


class CsrState(StrEnum):
    pending = "pending"
    approved = "approved"
    denied = "denied"
    failed = "failed"


class CsrKind(StrEnum):
    client = "client"
    serving = "serving"
    other = "other"


@dataclass(frozen=True)
class Csr:
    name: str
    signer: str
    username: str
    usages: frozenset[str]
    state: CsrState
    resource_version: str | None = None
    common_name: str | None = None
    organizations: tuple[str, ...] = ()
    dns_names: tuple[str, ...] = ()
    ip_addresses: tuple[str, ...] = ()
    other_sans: tuple[str, ...] = ()  # email, URI, other names: never a kubelet's
    key: str = "unknown"  # "rsa", "ec" or the key's class name
    problem: str | None = None  # why the request could not be read (then it is never approved)
    created: datetime | None = None  # metadata.creationTimestamp (the API server's clock), aware

    @property
    def kind(self) -> CsrKind:
        if self.signer == CLIENT_SIGNER:
            return CsrKind.client
        if self.signer == SERVING_SIGNER:
            return CsrKind.serving
        return CsrKind.other


@dataclass(frozen=True)
class Decision:
    csr: str
    kind: CsrKind
    approve: bool
    reason: str
    early: bool = False  # a serving CSR asked before its client CSR was approved: ask again later
    again: bool = False  # refused for now (the host is not in its handoff step yet): decided again


def _state(status: dict[str, Any]) -> CsrState:
    types = {c.get("type") for c in status.get("conditions") or [] if c.get("status", "True") == "True"}
    for state in (CsrState.denied, CsrState.failed, CsrState.approved):
        if state.value.capitalize() in types:
            return state
    return CsrState.pending


def parse_csr(obj: dict[str, Any]) -> Csr:
    """A CSR object as the API returns it (camelCase keys); an unreadable request sets `problem`."""
    meta, spec = obj.get("metadata") or {}, obj.get("spec") or {}
    base = Csr(
        name=str(meta.get("name", "")),
        signer=str(spec.get("signerName", "")),
        username=str(spec.get("username", "")),
        usages=frozenset(str(u) for u in spec.get("usages") or ()),
        state=_state(obj.get("status") or {}),
        resource_version=meta.get("resourceVersion"),
        created=_timestamp(meta.get("creationTimestamp")),
    )
    try:
        pem = base64.b64decode(str(spec.get("request", "")), validate=True)
        req = x509.load_pem_x509_csr(pem)
    except (binascii.Error, ValueError) as exc:
        return _with(base, problem=f"spec.request is not a base64 PEM certificate request ({exc})")
    if not req.is_signature_valid:
        return _with(base, problem="the request's signature does not verify with its own key")
    cns = [a.value for a in req.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    orgs = tuple(str(a.value) for a in req.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME))
    dns: list[str] = []
    ips: list[str] = []
    other: list[str] = []
    try:
        sans = req.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        sans = None
    except ValueError as exc:
        return _with(base, problem=f"the request's extensions cannot be read ({exc})")
    for san in sans or ():
        if isinstance(san, x509.DNSName):
            dns.append(san.value)
        elif isinstance(san, x509.IPAddress):
            ips.append(str(san.value))
        else:
            other.append(f"{type(san).__name__}:{san.value}")
    key = req.public_key()
    kind = (
        "rsa"
        if isinstance(key, rsa.RSAPublicKey)
        else "ec"
        if isinstance(key, ec.EllipticCurvePublicKey)
        else type(key).__name__
    )
    return _with(
        base,
        common_name=str(cns[0]) if len(cns) == 1 else None,
        organizations=orgs,
        dns_names=tuple(dns),
        ip_addresses=tuple(ips),
        other_sans=tuple(other),
        key=kind,
        problem=None if len(cns) == 1 else f"the subject has {len(cns)} common names, expected 1",
    )


def _timestamp(value: object) -> datetime | None:
    """An RFC 3339 timestamp with its zone ("2026-12-03T07:00:00Z"); anything else is unknown."""
    if not isinstance(value, str):
        return None
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        return None
    return at if at.tzinfo is not None else None


def _with(csr: Csr, **changes: Any) -> Csr:
    return Csr(**{**csr.__dict__, **changes})


def _same_ip(a: str, b: str) -> bool:
    try:
        return ipaddress.ip_address(a) == ipaddress.ip_address(b)
    except ValueError:
        return False


def _subject_problem(csr: Csr, node: str) -> str | None:
    want = f"{NODE_PREFIX}{node}"
    if csr.common_name != want:
        return f"subject CN {csr.common_name!r} is not {want!r}"
    if csr.organizations != (NODES_GROUP,):
        return f"subject O {list(csr.organizations)} is not [{NODES_GROUP!r}]"
    return None


def _usages_problem(csr: Csr, allowed: tuple[frozenset[str], ...]) -> str | None:
    if csr.usages in allowed:
        return None
    shown = " or ".join(str(sorted(a)) for a in allowed)
    return f"usages {sorted(csr.usages)} are not {shown}"


def _client_problem(csr: Csr, node: str) -> str | None:
    own = f"{NODE_PREFIX}{node}"
    if (
        csr.username not in BOOTSTRAPPERS
        and csr.username != own
        and not csr.username.startswith(BOOTSTRAP_TOKEN_PREFIX)
    ):
        return f"requested by {csr.username!r}, not the node bootstrapper nor {own!r}"
    if csr.dns_names or csr.ip_addresses or csr.other_sans:
        sans = [*csr.dns_names, *csr.ip_addresses, *csr.other_sans]
        return f"a client certificate carries no SANs, got {sans}"
    return _usages_problem(csr, CLIENT_USAGES)


def _serving_problem(csr: Csr, identity: NodeIdentity, client_done: bool) -> str | None:
    own = f"{NODE_PREFIX}{identity.node_name}"
    if csr.username != own:
        return f"requested by {csr.username!r}, expected the node itself ({own!r})"
    if not client_done:
        return WAITS_FOR_CLIENT
    if csr.other_sans:
        return f"SANs {list(csr.other_sans)} are neither DNS names nor IP addresses"
    if not csr.dns_names and not csr.ip_addresses:
        return "no SANs: a serving certificate names the host"
    names = {n.lower() for n in identity.dns_names}
    extra = [n for n in csr.dns_names if n.lower() not in names]
    extra += [ip for ip in csr.ip_addresses if not any(_same_ip(ip, a) for a in identity.addresses)]
    if extra:
        allowed = [*identity.dns_names, *identity.addresses]
        return f"SANs {extra} are not the host's names and addresses {allowed}"
    return _usages_problem(csr, SERVING_USAGES)


def decide(csr: Csr, identity: NodeIdentity, in_handoff: bool, client_done: bool) -> Decision | None:
    """Approve or refuse, with the reason; None for a CSR already approved, denied or failed (left alone).

    `client_done`: this host's client CSR was approved or its Node exists (the serving CSR waits for it).
    """
    if csr.state is not CsrState.pending:
        return None
    kind = csr.kind

    def refuse(why: str) -> Decision:
        return Decision(csr.name, kind, False, why)

    if kind is CsrKind.other:
        return refuse(f"signer {csr.signer!r} is not a kubelet signer ({CLIENT_SIGNER}, {SERVING_SIGNER})")
    if csr.problem:
        return refuse(csr.problem)
    node = identity.node_name
    problem = _subject_problem(csr, node)
    if problem is None and not in_handoff:
        return Decision(csr.name, kind, False, f"host {node} is not in its handoff step", again=True)
    if problem is None:
        problem = (
            _client_problem(csr, node)
            if kind is CsrKind.client
            else _serving_problem(csr, identity, client_done)
        )
    if problem == WAITS_FOR_CLIENT:
        return Decision(csr.name, kind, False, problem, early=True)
    if problem:
        return refuse(problem)
    what = "client" if kind is CsrKind.client else "serving"
    return Decision(csr.name, kind, True, f"kubelet {what} certificate for {node} by the rule ({csr.signer})")
