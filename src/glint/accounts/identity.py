"""Where a request's identity comes from: the TLS chain, or a trusted reverse proxy's headers.

Direct mode: ``glint.server`` verifies the client certificate during the TLS handshake and puts the
verified chain (leaf first) into the WSGI environ under ``glint.client_chain``. A client cannot set
environ keys without the ``HTTP_`` prefix, so that key is trustworthy.

Proxy mode: nginx or Apache verify the certificate and pass ``X-SSL-Client-Verify``,
``X-SSL-Client-S-DN``, ``X-SSL-Client-I-DN`` and ``X-SSL-Client-Cert``. These are believed only from
an address in ``GLINT_TRUSTED_PROXIES`` (``unix`` stands for Glint's own unix socket), and only
with a verify status of exactly ``SUCCESS``. The server drops header names containing ``_`` before
they reach here, because WSGI would otherwise merge ``X_SSL_Client_S_DN`` with the real header.
"""

from __future__ import annotations

import ipaddress
import logging

from glint.accounts.certificates import (
    CertificateIdentity,
    IdentityError,
    identity_from_chain,
    identity_from_pem_header,
)
from glint.accounts.dn import DNError, canonical_from_string

__all__ = ["identity_from_environ", "is_trusted_proxy"]

logger = logging.getLogger("glint.accounts")


def is_trusted_proxy(environ: dict, trusted: list[str]) -> bool:
    """True when the request came straight from a configured reverse proxy."""
    if environ.get("glint.unix_socket"):
        return "unix" in trusted
    try:
        peer = ipaddress.ip_address(environ.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    for entry in trusted:
        if entry == "unix":
            continue
        try:
            if peer in ipaddress.ip_network(entry, strict=False):
                return True
        except ValueError:
            continue
    return False


def _fix_wsgi_latin1(value: str) -> str:
    """Apache passes raw UTF-8 bytes, which WSGI decodes as latin-1 (research/x509.md §3)."""
    try:
        return value.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return value


def _identity_from_headers(environ: dict) -> CertificateIdentity | None:
    """The certificate header when there is one (cross-checked with the DN header), else the DN header.

    A DN header that names someone else than the certificate means the front end is misconfigured
    or something in between rewrote a header: refuse rather than guess which one to believe.
    """
    if environ.get("HTTP_X_SSL_CLIENT_VERIFY") != "SUCCESS":
        return None
    subject = environ.get("HTTP_X_SSL_CLIENT_S_DN", "").strip()
    subject_dn = canonical_from_string(_fix_wsgi_latin1(subject)) if subject else ""
    cert = environ.get("HTTP_X_SSL_CLIENT_CERT", "").strip()
    if cert:
        identity = identity_from_pem_header(cert)
        if subject_dn and subject_dn != identity.subject_dn:
            logger.warning(
                "proxy headers disagree: certificate of %s, DN header %s; refused",
                identity.subject_dn,
                subject_dn,
            )
            return None
        return identity
    if not subject_dn:
        return None
    issuer = environ.get("HTTP_X_SSL_CLIENT_I_DN", "").strip()
    return CertificateIdentity(
        subject_dn, canonical_from_string(_fix_wsgi_latin1(issuer)) if issuer else ""
    )


def identity_from_environ(environ: dict, trusted_proxies: list[str]) -> CertificateIdentity | None:
    """The verified identity of this request, or None when it carries none we can believe."""
    try:
        chain = environ.get("glint.client_chain")
        if chain:
            return identity_from_chain(chain)
        if is_trusted_proxy(environ, trusted_proxies):
            return _identity_from_headers(environ)
    except (IdentityError, DNError):
        return None
    return None
