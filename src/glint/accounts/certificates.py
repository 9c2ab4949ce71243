"""Who a verified certificate chain belongs to (research/x509.md §2.7).

A grid user often connects with an RFC 3820 proxy certificate signed by their own certificate, or a
proxy of a proxy. The person is the first certificate in the verified chain that is not a proxy
(the end-entity certificate). TLS verification has already checked signatures and proxy naming
rules; here we only walk the chain, and refuse it if it holds no end-entity certificate.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

from cryptography import x509
from cryptography.x509.oid import ObjectIdentifier

from glint.accounts.dn import canonical_from_name

__all__ = [
    "CertificateIdentity",
    "IdentityError",
    "crls_present",
    "identity_from_chain",
    "identity_from_pem_header",
]

PROXY_CERT_INFO = ObjectIdentifier("1.3.6.1.5.5.7.1.14")  # RFC 3820
PROXY_CERT_INFO_GT3 = ObjectIdentifier("1.3.6.1.4.1.3536.1.222")  # pre-RFC Globus proxies
LEGACY_PROXY_CNS = ("proxy", "limited proxy")  # Globus GT2 proxies
# OpenSSL's hashed-directory names: <hash>.0 for certificates, <hash>.r0 for CRLs.
CRL_IN_CA_DIR = re.compile(r"^[0-9a-f]{8}\.r\d+$")
CRL_PEM_MARKER = "-----BEGIN X509 CRL-----"


def crls_present(ca_file: str | None, ca_dir: str | None) -> bool:
    """True when revocation lists sit beside the CAs (``<hash>.rN`` files, or CRL blocks in the
    file): then every chain verified against this trust store is checked for revocation."""
    if ca_dir and any(CRL_IN_CA_DIR.match(entry.name) for entry in Path(ca_dir).iterdir()):
        return True
    return bool(ca_file) and CRL_PEM_MARKER in Path(ca_file).read_text(errors="replace")


class IdentityError(ValueError):
    """The certificate material does not name a person."""


@dataclass(frozen=True)
class CertificateIdentity:
    """The canonical subject and issuer DNs of the person's end-entity certificate."""

    subject_dn: str
    issuer_dn: str


def _is_proxy(cert: x509.Certificate) -> bool:
    for extension in cert.extensions:
        if extension.oid in (PROXY_CERT_INFO, PROXY_CERT_INFO_GT3):
            return True
    last_rdn = cert.subject.rdns[-1] if cert.subject.rdns else None
    if last_rdn is not None and len(last_rdn) == 1:
        ava = next(iter(last_rdn))
        if str(ava.value) in LEGACY_PROXY_CNS:
            # GT2 proxies: issuer is exactly the subject minus that last CN.
            return x509.Name(cert.subject.rdns[:-1]) == cert.issuer
    return False


def identity_from_chain(chain: list[x509.Certificate]) -> CertificateIdentity:
    """Identity of a verified chain given leaf first.

    Raises:
        IdentityError: the chain is empty or made only of proxies.
        DNError: the subject or issuer has no canonical form (empty, or over ``MAX_DN_LENGTH``).
    """
    for cert in chain:
        if not _is_proxy(cert):
            return CertificateIdentity(
                canonical_from_name(cert.subject), canonical_from_name(cert.issuer)
            )
    raise IdentityError("the certificate chain holds no end-entity certificate")


def identity_from_pem_header(value: str) -> CertificateIdentity:
    """Identity from a proxy's certificate header.

    nginx sends ``$ssl_client_escaped_cert`` (URL-encoded PEM); Apache's ``SSL_CLIENT_CERT``
    arrives with its newlines turned into spaces. Both are accepted. Behind a reverse proxy only the
    leaf is forwarded, and stock nginx/Apache refuse RFC 3820 proxies, so the leaf is the person.
    """
    text = unquote(value).strip()
    begin, end = "-----BEGIN CERTIFICATE-----", "-----END CERTIFICATE-----"
    if begin not in text or end not in text:
        raise IdentityError("the certificate header is not a PEM certificate")
    body = text.split(begin, 1)[1].split(end, 1)[0]
    pem = begin + "\n" + "\n".join(body.split()) + "\n" + end + "\n"
    try:
        cert = x509.load_pem_x509_certificate(pem.encode())
    except ValueError as exc:
        raise IdentityError(f"the certificate header cannot be parsed: {exc}") from None
    return identity_from_chain([cert])
