"""The TLS side of ``glint serve``: our own ``ssl.SSLContext`` and the verified client chain.

We build the context ourselves rather than let cheroot do it: cheroot's default context requests no
client certificate, and its ``certificate_chain`` argument silently turns the server's chain file
into a client trust store (research/x509.md §1 note a).

Choices, each tested in research/x509.md:

- ``CERT_OPTIONAL``, not ``CERT_REQUIRED``. A bad certificate still fails the handshake (OpenSSL
  never downgrades it to "no certificate"), but a client without one gets through to the app, which
  refuses it with a readable 403 page on every path except the probes (``/healthz``, ``/readyz``,
  ``/metrics``; see ``glint.accounts.middleware``). That gives probes one port and browsers a page
  that says what is missing instead of a bare TLS alert.
- ``VERIFY_ALLOW_PROXY_CERTS``: grid users connect with RFC 3820 proxies (§2.1).
- ``VERIFY_CRL_CHECK_CHAIN`` whenever CRLs are present: with ``_LEAF`` only, a proxy of a revoked
  user is accepted (§2.4). It needs a CRL for every CA in the chain, which fetch-crl provides for
  an IGTF directory; without any CRL we cannot check revocation at all, and say so at start.
- ``VERIFY_X509_STRICT`` cleared (Python 3.13 sets it in default contexts): real proxies often
  lack an Authority Key Identifier (§2.3).
- No session resumption. A resumed session carries the peer's leaf but no verified chain, so a
  proxy user would lose their identity on the second connection; and resuming would skip CRL checks.
"""

from __future__ import annotations

import ssl
from pathlib import Path

from cryptography import x509

from glint.accounts.certificates import crls_present

__all__ = [
    "TLSConfigError",
    "build_server_context",
    "crls_present",
    "describe_client_ca",
    "verified_chain",
]


class TLSConfigError(Exception):
    """The TLS files cannot be used; the message names the file and the reason."""


def describe_client_ca(ca_file: str | None, ca_dir: str | None) -> str:
    """One phrase for the start-up log: where client CAs come from and whether CRLs are checked."""
    sources = [f"file {ca_file}"] if ca_file else []
    sources += [f"directory {ca_dir}"] if ca_dir else []
    if crls_present(ca_file, ca_dir):
        crl = "CRLs checked for the whole chain"
    else:
        crl = "NO CRLs found, revocation not checked"
    return f"client CAs from {' and '.join(sources)} ({crl})"


def build_server_context(
    *, cert_file: str, key_file: str, ca_file: str | None, ca_dir: str | None
) -> ssl.SSLContext:
    """A server context that asks for a client certificate and verifies it as the module explains.

    Raises:
        TLSConfigError: a file is missing or unreadable, or no client CA is given.
    """
    if not (ca_file or ca_dir):
        raise TLSConfigError(
            "a client CA file or CA directory is needed to verify client certificates"
        )
    if ca_dir and not Path(ca_dir).is_dir():
        raise TLSConfigError(f"client CA directory {ca_dir} does not exist")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert_file, key_file or None)
    except (OSError, ssl.SSLError) as exc:
        raise TLSConfigError(
            f"cannot load server certificate {cert_file} / key {key_file}: {exc}"
        ) from None
    try:
        context.load_verify_locations(cafile=ca_file or None, capath=ca_dir or None)
        crls = crls_present(ca_file, ca_dir)
    except (OSError, ssl.SSLError) as exc:
        raise TLSConfigError(f"cannot load client CAs from {ca_file or ca_dir}: {exc}") from None
    context.verify_mode = ssl.CERT_OPTIONAL
    context.verify_flags |= ssl.VERIFY_ALLOW_PROXY_CERTS
    context.verify_flags &= ~ssl.VERIFY_X509_STRICT
    if crls:
        context.verify_flags |= ssl.VERIFY_CRL_CHECK_CHAIN
    context.num_tickets = 0
    context.options |= ssl.OP_NO_TICKET
    return context


def verified_chain(sock: ssl.SSLSocket) -> list[x509.Certificate]:
    """The client's chain as OpenSSL verified it, leaf first; empty when no certificate was sent.

    ``getpeercert()`` gives only the leaf, which for a grid user is their proxy. The whole chain is
    public API since Python 3.13 (DER bytes) and private before (``_ssl.Certificate``; §2.2).
    """
    public = getattr(sock, "get_verified_chain", None)
    if public is not None:
        ders = public() or []
    else:
        import _ssl

        ders = [
            cert.public_bytes(_ssl.ENCODING_DER)
            for cert in (sock._sslobj.get_verified_chain() or [])
        ]
    return [x509.load_der_x509_certificate(der) for der in ders]
