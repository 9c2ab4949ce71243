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

Process model (docs/architecture.md "Process model"): with ``--workers N`` above 1 the parent binds
the listener once, closes its database connections and forks N workers that accept on it. The
parent stays single-threaded so it can fork again: it restarts a worker that dies and forwards
SIGTERM/SIGINT (stop) and SIGHUP (reload the TLS context now) to every worker. Worker 0 alone runs
the background work (poller, job runner, repairs), so it runs once however many workers serve;
its replacement takes it over. Each worker rebuilds its own TLS context on the reload timer.
"""

from __future__ import annotations

import enum
import ipaddress
import logging
import os
import signal
import threading
import time
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
    workers: int = 1

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


def _reload_context(adapter, options: ServeOptions, why: str) -> None:
    """Rebuild the TLS context so new CRLs (and a renewed server certificate) take effect.

    OpenSSL keeps a CRL once loaded (research/x509.md §2.5); a fresh context reads the files again.
    A failed rebuild (say, fetch-crl halfway through a write) keeps the previous context.
    """
    try:
        adapter.context = _context_for(options)
    except Exception as exc:  # keep serving with the last good context
        logger.error("could not reload the TLS context, keeping the previous one: %s", exc)
    else:
        logger.debug("TLS context reloaded (%s)", why)


def _reload_context_periodically(adapter, options: ServeOptions, stop: threading.Event) -> None:
    while not stop.wait(options.ca_reload_seconds):
        _reload_context(adapter, options, "timer")


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
    return (
        f"glint serve: {mode.value} on {address}; {source}; "
        f"{options.workers} worker(s) x {options.threads} threads"
    )


def run(options: ServeOptions) -> None:
    """Serve until SIGTERM or SIGINT, then finish the requests in flight and return.

    Raises:
        ServeError: bad options, or the address cannot be bound.
        glint.server.tls.TLSConfigError: the TLS files cannot be used.
    """
    from django.core.management import call_command
    from django.db import connections

    from glint.server.wsgi_server import bind_listener

    mode = choose_mode(options)
    if mode is Mode.DIRECT:
        _context_for(options)  # refuse bad TLS files before anything listens
    call_command("migrate", interactive=False, verbosity=0)
    if options.workers <= 1:
        _serve(mode, options, listener=None, background=True)
        return
    bind_addr = options.unix_socket or (options.host, options.port)
    try:
        listener = bind_listener(bind_addr)
    except OSError as exc:
        raise ServeError(f"cannot listen on {options.address()}: {exc}") from None
    connections.close_all()  # a connection shared across fork is corrupted by both sides
    _supervise(mode, options, listener)


def _supervise(mode: Mode, options: ServeOptions, listener) -> None:
    """Fork the workers, restart any that dies, forward signals; return once all have stopped."""
    stopping = threading.Event()
    workers: dict[int, int] = {}  # pid -> worker index

    def forward(signum, _frame):
        if signum in (signal.SIGTERM, signal.SIGINT):
            stopping.set()
        for pid in list(workers):
            try:
                os.kill(pid, signal.SIGTERM if signum == signal.SIGINT else signum)
            except ProcessLookupError:
                pass

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, forward)

    def spawn(index: int) -> None:
        pid = os.fork()
        if pid == 0:
            status = 1
            try:
                for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                    signal.signal(signum, signal.SIG_DFL)
                _serve(mode, options, listener=listener, background=index == 0, index=index)
                status = 0
            except BaseException:
                logger.exception("worker %d of glint serve failed", index)
            finally:
                logging.shutdown()
                os._exit(status)
        workers[pid] = index

    for index in range(options.workers):
        spawn(index)
    logger.info("supervising %d glint serve workers (pids %s)", len(workers), sorted(workers))
    last_restart: dict[int, float] = {}
    while workers:
        try:
            pid, status = os.waitpid(-1, 0)
        except ChildProcessError:
            break
        except InterruptedError:
            continue
        index = workers.pop(pid, None)
        if index is None or stopping.is_set():
            continue
        logger.error(
            "worker %d of glint serve (pid %d) died (%s); restarting it",
            index,
            pid,
            os.waitstatus_to_exitcode(status),
        )
        if time.monotonic() - last_restart.get(index, 0.0) < 1.0:
            time.sleep(1.0)  # a worker that dies at once must not fork in a tight loop
        last_restart[index] = time.monotonic()
        spawn(index)
    listener.close()
    logger.info("glint serve: stopped")


def _serve(mode: Mode, options: ServeOptions, *, listener, background: bool, index: int = 0):
    """One serving process: its own threads, TLS context and (if ``background``) the background
    work; until SIGTERM or SIGINT."""
    from django.conf import settings

    from glint.jobs.matrix import warm_every_matrix
    from glint.server.wsgi_server import ClientChainTLSAdapter, GlintWSGIServer

    context = _context_for(options) if mode is Mode.DIRECT else None
    bind_addr = options.unix_socket or (options.host, options.port)
    server = GlintWSGIServer(
        bind_addr,
        build_wsgi_app(),
        numthreads=options.threads,
        direct_tls=mode is Mode.DIRECT,
        trusted_proxies=list(settings.GLINT_TRUSTED_PROXIES),
        listener=listener,
    )
    if context is not None:
        server.ssl_adapter = ClientChainTLSAdapter(context)
    try:
        server.prepare()
    except OSError as exc:
        raise ServeError(f"cannot listen on {options.address()}: {exc}") from None

    if index == 0:
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
    if background:
        start_background_workers()
    threading.Thread(target=warm_every_matrix, name="glint-warm-matrices", daemon=True).start()
    if context is None and listener is not None:
        signal.signal(signal.SIGHUP, signal.SIG_IGN)  # nothing to reload; a worker must not die
    if context is not None:
        signal.signal(
            signal.SIGHUP, lambda *_: _reload_context(server.ssl_adapter, options, "SIGHUP")
        )
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
    logger.info("glint serve: worker %d stopping, finishing requests in flight", index)
    stop.set()
    server.stop()
    serving.join()
    if listener is None:
        logger.info("glint serve: stopped")
