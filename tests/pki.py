"""A small PKI for tests: CAs, user certificates, proxies and CRLs made with ``cryptography``.

Elliptic-curve keys keep generation fast, so every test can make the certificates it needs.
"""

from __future__ import annotations

import datetime as dt
import subprocess
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass
class CA:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)


def _name(cn: str, org: str = "Glint Test Grid", ou: str | None = None) -> x509.Name:
    attrs = [
        x509.NameAttribute(NameOID.COUNTRY_NAME, "CA"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
    ]
    if ou:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, ou))
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    return x509.Name(attrs)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def make_ca(cn: str, *, parent: CA | None = None) -> CA:
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name(cn)
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(parent.cert.subject if parent else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_now() - dt.timedelta(days=1))
        .not_valid_after(_now() + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .add_extension(ski, critical=False)
    )
    signer = parent.key if parent else key
    issuer_key = parent.cert.public_key() if parent else key.public_key()
    builder = builder.add_extension(
        x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key), critical=False
    )
    return CA(builder.sign(signer, hashes.SHA256()), key)


def make_user_cert(
    ca: CA,
    cn: str,
    *,
    extra_ou: str | None = None,
    server_names: list[str] | None = None,
    days: int = 30,
    expired: bool = False,
    subject: x509.Name | None = None,
):
    """A leaf certificate: a client certificate, or a server one when ``server_names`` is given.

    ``expired`` makes one whose validity ended yesterday; ``subject`` replaces the usual
    ``C=CA, O=Glint Test Grid[, OU=…], CN=<cn>`` with any name.
    """
    key = ec.generate_private_key(ec.SECP256R1())
    not_before = _now() - dt.timedelta(days=days + 1 if expired else 1)
    not_after = _now() - dt.timedelta(days=1) if expired else _now() + dt.timedelta(days=days)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject if subject is not None else _name(cn, ou=extra_ou))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.cert.public_key()), critical=False
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if server_names:
        import ipaddress

        sans = []
        for n in server_names:
            try:
                sans.append(x509.IPAddress(ipaddress.ip_address(n)))
            except ValueError:
                sans.append(x509.DNSName(n))
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
    else:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
    return builder.sign(ca.key, hashes.SHA256()), key


def write_pem(path: Path, cert: x509.Certificate, key=None) -> Path:
    """Write a certificate (and its key, if given) as PEM; returns the path."""
    data = cert.public_bytes(serialization.Encoding.PEM)
    if key is not None:
        data += key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    path.write_bytes(data)
    path.chmod(0o600)
    return path


# RFC 3820 proxyCertInfo, DER of ProxyCertInfo { proxyPolicy { policyLanguage id-ppl-inheritAll } }:
# SEQUENCE { SEQUENCE { OID 1.3.6.1.5.5.7.21.1 } }, no path-length constraint.
PROXY_CERT_INFO_OID = x509.ObjectIdentifier("1.3.6.1.5.5.7.1.14")
PROXY_CERT_INFO_INHERIT_ALL = bytes.fromhex("300c300a06082b06010505071501")


def make_proxy_cert(user_cert: x509.Certificate, user_key, *, hours: int = 12, akid: bool = True):
    """An RFC 3820 proxy of ``user_cert``, as ``grid-proxy-init`` makes: returns (proxy cert, proxy
    key).

    Its subject is the user's subject plus ``CN=<serial digits>`` (the naming rule OpenSSL checks).
    ``akid=False`` leaves out the Authority Key Identifier, as many real proxy tools do (Python
    3.13's default ``VERIFY_X509_STRICT`` rejects those; research/x509.md §2.3).
    """
    key = ec.generate_private_key(ec.SECP256R1())
    serial = x509.random_serial_number()
    subject = x509.Name(
        list(user_cert.subject.rdns)
        + [
            x509.RelativeDistinguishedName(
                [x509.NameAttribute(NameOID.COMMON_NAME, str(serial % 10**10))]
            )
        ]
    )
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(user_cert.subject)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(_now() - dt.timedelta(minutes=5))
        .not_valid_after(_now() + dt.timedelta(hours=hours))
        .add_extension(
            x509.KeyUsage(True, False, True, False, False, False, False, False, False),
            critical=True,
        )
        .add_extension(
            x509.UnrecognizedExtension(PROXY_CERT_INFO_OID, PROXY_CERT_INFO_INHERIT_ALL),
            critical=True,
        )
    )
    if akid:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(user_cert.public_key()),
            critical=False,
        )
    return builder.sign(user_key, hashes.SHA256()), key


def make_crl(ca: CA, revoked: list[x509.Certificate] = ()) -> x509.CertificateRevocationList:
    """A current CRL of ``ca`` listing ``revoked``."""
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca.cert.subject)
        .last_update(_now() - dt.timedelta(minutes=5))
        .next_update(_now() + dt.timedelta(days=7))
    )
    for cert in revoked:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder()
            .serial_number(cert.serial_number)
            .revocation_date(_now())
            .build()
        )
    return builder.sign(ca.key, hashes.SHA256())


def write_chain_pem(path: Path, chain: list[x509.Certificate], key) -> Path:
    """A client credential file as grid tools write it: leaf first, then its issuers, then the
    key."""
    data = b"".join(cert.public_bytes(serialization.Encoding.PEM) for cert in chain)
    data += key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path.write_bytes(data)
    path.chmod(0o600)
    return path


def subject_hash(pem_path) -> str:
    return subprocess.run(
        ["openssl", "x509", "-hash", "-noout", "-in", str(pem_path)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


class CADirectory:
    """A hashed CA directory; ``publish_crl`` replaces a CRL the way fetch-crl does (write,
    rename)."""

    def __init__(self, path):
        self.path = path
        self.hashes = {}

    def add_ca(self, ca, revoked=()) -> None:
        staging = write_pem(self.path / "staging.pem", ca.cert)
        ca_hash = subject_hash(staging)
        staging.rename(self.path / f"{ca_hash}.0")
        self.hashes[ca.cert.subject] = ca_hash
        self.publish_crl(ca, revoked)

    def publish_crl(self, ca, revoked) -> None:
        ca_hash = self.hashes[ca.cert.subject]
        staging = self.path / f"{ca_hash}.r0.new"
        staging.write_bytes(make_crl(ca, list(revoked)).public_bytes(serialization.Encoding.PEM))
        staging.rename(self.path / f"{ca_hash}.r0")
