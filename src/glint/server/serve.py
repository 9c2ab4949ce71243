"""Run Glint: choose the mode, check where it may listen, migrate, serve until SIGTERM or SIGINT.

Modes (docs/architecture.md "Identity" and the README's "Deployment"):

- direct TLS (the default): Glint terminates TLS and verifies client certificates (``tls``).
- behind a reverse proxy (``--behind-proxy``): plain HTTP on a loopback address or a unix socket
  only, so nothing but the local proxy can reach it; identity comes from the proxy's headers,
  believed only from ``GLINT_TRUSTED_PROXIES``.
- insecure development (``--insecure-dev``): plain HTTP on any address, with a loud warning.

Cookie flags stay as settings has them (``Secure``) in every mode: Django only sets the attribute,
and the browser speaks HTTPS to whoever terminates TLS. What plain HTTP behind a proxy does need is
the original scheme, for Django's CSRF origin check; the server takes it from a trusted proxy's
``X-Forwarded-Proto`` (``wsgi_server``).
"""

from __future__ import annotations

import enum
import ipaddress
import logging
import signal
import threading
from dataclasses import dataclass

from glint.server.background import start_background_workers
from glint.server.tls import build_server_context, describe_client_ca

__all__ = ["Mode", "ServeError", "ServeOptions", "choose_mode", "run"]

logger = logging.getLogger("glint.server")

INSECURE_WARNING = """
**************************************************************************************
*  INSECURE DEVELOPMENT MODE: plain HTTP on {address}.
*  Nothing is encrypted and no certificate is verified. Never use this in production:
*  use direct TLS (the default) or --behind-proxy on loopback or a unix socket.
**************************************************************************************"""


class ServeError(Exception):
    """``glint serve`` cannot start as asked; the message says why and what to do."""


class Mode(enum.Enum):
    DIRECT = "direct TLS"
    PROXY = "behind a reverse proxy, plain HTTP"
    INSECURE_DEV = "INSECURE development, plain HTTP"


@dataclass(frozen=True)
class ServeOptions:
    host: str
    port: int
    cert_file: str = ""
    key_file: str = ""
    client_ca_file: str = ""
    client_ca_dir: str = ""
    behind_proxy: bool = False
    insecure_dev: bool = False
    unix_socket: str = ""
    threads: int = 10
    ca_reload_seconds: int = 300

    def address(self) -> str:
        return f"unix:{self.unix_socket}" if self.unix_socket else f"{self.host}:{self.port}"


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback IP literals; other names are not resolved."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def choose_mode(options: ServeOptions) -> Mode:
    """The mode the options ask for.

    Raises:
        ServeError: the options contradict each other, or plain HTTP would listen beyond loopback.
    """
    if options.unix_socket and not options.behind_proxy:
        raise ServeError("--unix-socket serves plain HTTP to a reverse proxy: add --behind-proxy")
    if options.behind_proxy and (options.unix_socket or is_loopback(options.host)):
        return Mode.PROXY
    if options.insecure_dev:
        return Mode.INSECURE_DEV
    if options.behind_proxy:
        raise ServeError(
            "--behind-proxy serves plain HTTP, so it listens only on a loopback address "
            f"(127.0.0.1, ::1) or a unix socket (--unix-socket PATH); {options.host} is neither. "
            "Add --insecure-dev to serve plain HTTP there anyway, for development only."
        )
    missing = []
    if not options.cert_file:
        missing.append("--cert FILE (GLINT_TLS_CERT)")
    if not (options.client_ca_file or options.client_ca_dir):
        missing.append(
            "--client-ca FILE or --client-ca-dir DIR (GLINT_TLS_CLIENT_CA, GLINT_TLS_CLIENT_CA_DIR)"
        )
    if missing:
        raise ServeError(
            f"direct TLS needs {', '.join(missing)}; "
            "to run behind nginx or Apache instead, use --behind-proxy"
        )
    return Mode.DIRECT


def build_wsgi_app():
    """Django's application, with ``/static/`` served from the installed apps.

    Static files are a few small assets (CSS, htmx); serving them here keeps the embedded mode a
    single process with nothing to collect. They need no identity, like the probes.
    """
    from django.contrib.staticfiles.handlers import StaticFilesHandler
    from django.core.exceptions import SuspiciousOperation
    from django.http import HttpResponseNotFound

    from glint.wsgi import application

    class StaticFiles(StaticFilesHandler):
        """Django's handler, but a path that climbs out of the static directories (``..``, also
        spelt ``%2e%2e`` or with ``%2f``: the server decodes them) is a plain 404, not a 500
        with a traceback (Django's finders raise SuspiciousFileOperation for it)."""

        def get_response(self, request):
            try:
                return super().get_response(request)
            except SuspiciousOperation:
                logger.warning("static file path refused: %r", request.path)
                return HttpResponseNotFound("Not Found", content_type="text/plain")

    return StaticFiles(application)


def _context_for(options: ServeOptions):
    return build_server_context(
        cert_file=options.cert_file,
        key_file=options.key_file,
        ca_file=options.client_ca_file,
        ca_dir=options.client_ca_dir,
    )


def _reload_context_periodically(adapter, options: ServeOptions, stop: threading.Event) -> None:
    """Rebuild the TLS context so new CRLs (and a renewed server certificate) take effect.

    OpenSSL keeps a CRL once loaded (research/x509.md §2.5); a fresh context reads the files again.
    A failed rebuild (say, fetch-crl halfway through a write) keeps the previous context.
    """
    while not stop.wait(options.ca_reload_seconds):
        try:
            adapter.context = _context_for(options)
        except Exception as exc:  # keep serving with the last good context
            logger.error("could not reload the TLS context, keeping the previous one: %s", exc)
        else:
            logger.debug("TLS context reloaded")


def _start_line(mode: Mode, server, options: ServeOptions) -> str:
    if isinstance(server.bind_addr, str):
        address = f"unix:{server.bind_addr}"
    else:
        address = f"{'https' if mode is Mode.DIRECT else 'http'}://{server.bind_addr[0]}:{server.bind_addr[1]}"
    if mode is Mode.DIRECT:
        source = describe_client_ca(options.client_ca_file, options.client_ca_dir)
    else:
        source = (
            f"identity from proxy headers of trusted proxies {server.trusted_proxies or 'none'}"
        )
    return f"glint serve: {mode.value} on {address}; {source}; {options.threads} threads"


def run(options: ServeOptions) -> None:
    """Serve until SIGTERM or SIGINT, then finish the requests in flight and return.

    Raises:
        ServeError: bad options, or the address cannot be bound.
        glint.server.tls.TLSConfigError: the TLS files cannot be used.
    """
    from django.conf import settings
    from django.core.management import call_command

    from glint.server.wsgi_server import ClientChainTLSAdapter, GlintWSGIServer

    mode = choose_mode(options)
    context = _context_for(options) if mode is Mode.DIRECT else None
    call_command("migrate", interactive=False, verbosity=0)

    bind_addr = options.unix_socket or (options.host, options.port)
    server = GlintWSGIServer(
        bind_addr,
        build_wsgi_app(),
        numthreads=options.threads,
        direct_tls=mode is Mode.DIRECT,
        trusted_proxies=list(settings.GLINT_TRUSTED_PROXIES),
    )
    if context is not None:
        server.ssl_adapter = ClientChainTLSAdapter(context)
    try:
        server.prepare()
    except OSError as exc:
        raise ServeError(f"cannot listen on {options.address()}: {exc}") from None

    logger.info(_start_line(mode, server, options))
    if mode is Mode.INSECURE_DEV:
        logger.warning(INSECURE_WARNING.format(address=options.address()))
    if mode is Mode.DIRECT and server.trusted_proxies:
        logger.warning(
            "GLINT_TRUSTED_PROXIES is ignored in direct TLS mode: "
            "identity comes from the TLS handshake"
        )

    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    start_background_workers()
    if context is not None:
        threading.Thread(
            target=_reload_context_periodically,
            args=(server.ssl_adapter, options, stop),
            name="glint-tls-reload",
            daemon=True,
        ).start()
    serving = threading.Thread(target=server.serve, name="glint-http")
    serving.start()
    while serving.is_alive() and not stop.wait(1.0):
        pass
    logger.info("glint serve: stopping, finishing requests in flight")
    stop.set()
    server.stop()
    serving.join()
    logger.info("glint serve: stopped")
