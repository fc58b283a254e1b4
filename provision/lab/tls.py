"""Adapter: the lab BMC's credentials: a self-signed CA made by the lab, a server certificate for
127.0.0.1 signed by it, and an htpasswd file with a bcrypt digest (the only kind sushy accepts).

The password never reaches a log: it is written once, mode 0600, to the file the inventory's
`credentials: file:...` names.
"""

from __future__ import annotations

import datetime
import ipaddress
import secrets
from dataclasses import dataclass
from pathlib import Path

import bcrypt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from provision.model.files import write_private

BMC_USER = "lab-admin"


@dataclass(frozen=True)
class BmcSecrets:
    ca_cert: Path
    server_cert: Path
    server_key: Path
    htpasswd: Path
    credentials: Path  # "user:password", for the inventory's `credentials: file:`


def _write_private(path: Path, data: bytes) -> None:
    # By replace: O_TRUNC on a file left from an earlier lab would keep its mode and follow a symlink.
    write_private(path, data)


def _name(cn: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Inferno lab"),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


def make_bmc_secrets(directory: Path, lab_id: str, listen_ip: str) -> BmcSecrets:
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name(f"Inferno lab {lab_id} CA")
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(f"lab {lab_id} BMC"))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address(listen_ip)), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    secrets_ = BmcSecrets(
        ca_cert=directory / "ca.pem",
        server_cert=directory / "bmc.pem",
        server_key=directory / "bmc.key",
        htpasswd=directory / "htpasswd",
        credentials=directory / "bmc.credentials",
    )
    secrets_.ca_cert.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    secrets_.server_cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_private(
        secrets_.server_key,
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
    )
    password = secrets.token_urlsafe(18)
    digest = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=10)).decode()
    _write_private(secrets_.htpasswd, f"{BMC_USER}:{digest}\n".encode())
    _write_private(secrets_.credentials, f"{BMC_USER}:{password}\n".encode())
    return secrets_
