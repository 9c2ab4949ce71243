"""Where a request's identity comes from: the TLS chain, or a trusted reverse proxy's headers.

Direct mode: ``glint.server`` verifies the client certificate during the TLS handshake and puts the
verified chain (leaf first) into the WSGI environ under ``glint.client_chain``. A client cannot set
environ keys without the ``HTTP_`` prefix, so that key is trustworthy.

Proxy mode: nginx or Apache verify the certificate and pass ``X-SSL-Client-Verify``,
``X-SSL-Client-S-DN``, ``X-SSL-Client-I-DN`` and ``X-SSL-Client-Cert``. These are believed only from
an address in ``GLINT_TRUSTED_PROXIES`` (``unix`` stands for Glint's own unix socket), and only
with a verify status of exactly ``SUCCESS``. The server drops header names containing ``_`` before
they reach here, because WSGI would otherwise merge ``X_SSL_Client_S_DN`` with the real header.

The certificate header is the identity; the DN header is then only checked against it. Without a
certificate header, the DN header must be in RFC 2253/4514 form (what nginx's ``$ssl_client_s_dn``
and Apache's ``SSL_CLIENT_S_DN`` give): OpenSSL escapes every special character there. The legacy
slash form (``$ssl_client_s_dn_legacy``, ``+LegacyDNStringFormat``) is refused on its own, because
two different subjects can print the same slash string: OpenSSL before 3.0 does not escape ``/`` or
``+`` inside values, and no version escapes a backslash.
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


def _header_dn(value: str, *, allow_slash: bool) -> str:
    """The canonical DN of a DN header ('' when absent)."""
    value = _fix_wsgi_latin1(value.strip())
    if not value:
        return ""
    if value.startswith("/") and not allow_slash:
        raise DNError(
            f"a slash-form DN header without a certificate header is ambiguous ({value[:200]!r}): "
            f"forward the certificate, or the DN in RFC 2253 form"
        )
    return canonical_from_string(value)


def _identity_from_headers(environ: dict) -> CertificateIdentity | None:
    """The certificate header when there is one (cross-checked with the DN header), else the DN
    header.

    A DN header that names someone else than the certificate means the front end is misconfigured
    or something in between rewrote a header: refuse rather than guess which one to believe.
    """
    if environ.get("HTTP_X_SSL_CLIENT_VERIFY") != "SUCCESS":
        return None
    cert = environ.get("HTTP_X_SSL_CLIENT_CERT", "").strip()
    subject_dn = _header_dn(environ.get("HTTP_X_SSL_CLIENT_S_DN", ""), allow_slash=bool(cert))
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
    # The issuer only labels an access request, so its string form names nobody: any form will do.
    issuer_dn = _header_dn(environ.get("HTTP_X_SSL_CLIENT_I_DN", ""), allow_slash=True)
    return CertificateIdentity(subject_dn, issuer_dn)


def identity_from_environ(environ: dict, trusted_proxies: list[str]) -> CertificateIdentity | None:
    """The verified identity of this request, or None when it carries none we can believe."""
    try:
        chain = environ.get("glint.client_chain")
        if chain:
            return identity_from_chain(chain)
        if is_trusted_proxy(environ, trusted_proxies):
            return _identity_from_headers(environ)
    except (IdentityError, DNError) as exc:
        logger.warning("client identity refused: %s", exc)
        return None
    return None
