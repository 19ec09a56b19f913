"""The sandbox cluster's certificates: one CA that signs the API server's serving certificate, the kubelet-client
certificate the API server presents to nodes, the node agent's serving certificate, and the service-account keys."""

from __future__ import annotations

import datetime
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from migration_pipeline.sandbox.certs import make_ca

# The first address of the service range: the ``kubernetes`` Service's ClusterIP, which in-cluster clients dial.
SERVICE_CIDR = "10.96.0.0/24"
KUBERNETES_SERVICE_IP = "10.96.0.1"


@dataclass(frozen=True)
class ClusterPki:
    """Paths of the PEM files; keys are mode 0600."""

    folder: Path

    def file(self, name: str) -> Path:
        return self.folder / name

    @property
    def ca(self) -> Path:
        return self.file("ca.pem")


def _write(path: Path, data: bytes, private: bool = False) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as out:
        out.write(data)


def _key_pem(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _name(common: str, organisation: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, common)]
    if organisation:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation))
    return x509.Name(attrs)


def make_cluster_pki(folder: Path, days: int = 3650) -> ClusterPki:
    """Make every certificate and key the control plane and the node agent need, in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    pki = ClusterPki(folder)
    now = datetime.datetime.now(datetime.UTC)
    start, end = now - datetime.timedelta(minutes=5), now + datetime.timedelta(days=days)
    ca_name = _name("migration sandbox kubernetes CA")
    ca_key, ca = make_ca(ca_name, start, end)
    _write(pki.ca, ca.public_bytes(serialization.Encoding.PEM))
    # The CA key signs the controller-manager's CSR approvals; nothing outside the sandbox trusts this CA.
    _write(pki.file("ca-key.pem"), _key_pem(ca_key), private=True)

    def leaf(stem: str, subject: x509.Name, usage: list[x509.ObjectIdentifier], sans: list[x509.GeneralName]) -> None:
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(ca_name)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(start).not_valid_after(end)
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                   .add_extension(x509.ExtendedKeyUsage(usage), critical=False)
                   .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                                  critical=False))
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        cert = builder.sign(ca_key, hashes.SHA256())
        _write(pki.file(f"{stem}.pem"), cert.public_bytes(serialization.Encoding.PEM))
        _write(pki.file(f"{stem}-key.pem"), _key_pem(key), private=True)

    loopback = [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
    leaf("apiserver", _name("kube-apiserver"), [ExtendedKeyUsageOID.SERVER_AUTH],
         [*loopback, x509.IPAddress(ipaddress.ip_address(KUBERNETES_SERVICE_IP)),
          *(x509.DNSName(n) for n in ("kubernetes", "kubernetes.default", "kubernetes.default.svc",
                                       "kubernetes.default.svc.cluster.local"))])
    leaf("apiserver-kubelet-client", _name("kube-apiserver-kubelet-client", "system:masters"),
         [ExtendedKeyUsageOID.CLIENT_AUTH], [])
    leaf("kubelet", _name("sandbox-node"), [ExtendedKeyUsageOID.SERVER_AUTH], loopback)
    # Service-account tokens are signed with RSA, which every client library verifies.
    sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    _write(pki.file("sa-key.pem"), _key_pem(sa_key), private=True)
    _write(pki.file("sa.pem"), sa_key.public_key().public_bytes(serialization.Encoding.PEM,
                                                                serialization.PublicFormat.SubjectPublicKeyInfo))
    return pki
