"""Real X.509 certificate signing requests, made with `cryptography` as a kubelet makes them (EC P-256
keys), wrapped in certificates.k8s.io/v1 CertificateSigningRequest objects. Used by the test API
server's simulated kubelet and by tests that inject CSRs of their own (hostile ones included)."""

from __future__ import annotations

import base64
import ipaddress
from collections.abc import Sequence
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

CLIENT_SIGNER = "kubernetes.io/kube-apiserver-client-kubelet"
SERVING_SIGNER = "kubernetes.io/kubelet-serving"
BOOTSTRAPPER = "system:serviceaccount:openshift-machine-config-operator:node-bootstrapper"
CLIENT_USAGES = ["digital signature", "client auth"]
SERVING_USAGES = ["digital signature", "server auth"]


def request_b64(
    cn: str,
    orgs: Sequence[str] = ("system:nodes",),
    dns: Sequence[str] = (),
    ips: Sequence[str] = (),
    emails: Sequence[str] = (),
    key: str = "ec",
) -> str:
    """spec.request: base64 of the PEM CSR, signed with a fresh key ("ec": P-256, "rsa": 2048 bits)."""
    private: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey = (
        ec.generate_private_key(ec.SECP256R1())
        if key == "ec"
        else rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )
    names = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in orgs]
    names.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(names))
    sans: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
    sans += [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    sans += [x509.RFC822Name(e) for e in emails]
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    pem = builder.sign(private, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)
    return base64.b64encode(pem).decode()


def csr_object(
    name: str, request: str, signer: str, username: str, usages: Sequence[str], groups: Sequence[str] = ()
) -> dict[str, Any]:
    return {
        "apiVersion": "certificates.k8s.io/v1",
        "kind": "CertificateSigningRequest",
        "metadata": {"name": name},
        "spec": {
            "request": request,
            "signerName": signer,
            "username": username,
            "groups": list(groups) or ["system:authenticated"],
            "usages": list(usages),
        },
        "status": {},
    }


def client_csr(name: str, node: str, username: str = BOOTSTRAPPER, **kw: Any) -> dict[str, Any]:
    """A kubelet's bootstrap CSR for its client certificate (no SANs)."""
    return csr_object(
        name,
        request_b64(f"system:node:{node}", **kw),
        CLIENT_SIGNER,
        username,
        CLIENT_USAGES,
        ["system:serviceaccounts", "system:authenticated"],
    )


def serving_csr(
    name: str, node: str, dns: Sequence[str], ips: Sequence[str], username: str | None = None, **kw: Any
) -> dict[str, Any]:
    """A kubelet's CSR for its serving certificate, asked as the node itself."""
    return csr_object(
        name,
        request_b64(f"system:node:{node}", dns=dns, ips=ips, **kw),
        SERVING_SIGNER,
        username or f"system:node:{node}",
        SERVING_USAGES,
        ["system:nodes", "system:authenticated"],
    )
