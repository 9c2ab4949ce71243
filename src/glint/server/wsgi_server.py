"""cheroot, adapted so the WSGI environ carries only identity facts Glint can believe.

The environ contract (read by ``glint.accounts.identity``):

- ``glint.client_chain``: in direct TLS mode, the client's verified chain as
  ``cryptography.x509.Certificate`` objects, leaf first (``[]`` without a client certificate).
  A client cannot set environ keys without the ``HTTP_`` prefix, so this key is trustworthy.
  cheroot's own ``SSL_CLIENT_S_DN`` strings are lossy (research/x509.md §3) and never set.
- ``glint.unix_socket``: ``True`` for a request that came in on Glint's unix socket (proxy mode);
  ``unix`` in ``GLINT_TRUSTED_PROXIES`` trusts it.
- ``wsgi.url_scheme``: ``https`` in direct mode; in proxy mode ``https`` when a trusted proxy says
  ``X-Forwarded-Proto: https``, so Django's CSRF origin check matches what the browser sent.
- In direct mode every incoming ``X-SSL-Client-*`` header is dropped: Glint itself terminated TLS,
  so a header claiming a front end's verification can only be forged.

Header names containing ``_`` are dropped as the request is read. WSGI turns both
``X-SSL-Client-S-DN`` and ``X_SSL_Client_S_DN`` into ``HTTP_X_SSL_CLIENT_S_DN``, so a client could
otherwise overwrite the proxy's header (research/x509.md §4.2; cheroot's own
``DropUnderscoreHeaderReader`` crashes on Python 3, cherrypy/cheroot#17). Once the environ is built
the raw names are gone, so no WSGI middleware can do this. Under another server: gunicorn >= 22 and
waitress drop such headers, and so does nginx in front (``underscores_in_headers off``, its
default); Apache's mod_proxy forwards them unchanged, so an Apache front end needs a backend that
drops them, such as ``glint serve``.
"""

from __future__ import annotations

import logging
import os
import socket
import ssl
import stat

from cheroot import errors as cheroot_errors
from cheroot import server as cheroot_server
from cheroot import wsgi
from cheroot.ssl import Adapter
from cheroot.ssl.builtin import BuiltinSSLAdapter

from glint.accounts.identity import is_trusted_proxy
from glint.server.tls import verified_chain

__all__ = ["ClientChainTLSAdapter", "GlintWSGIServer", "bind_listener"]

CLIENT_CHAIN_KEY = "glint.client_chain"
UNIX_SOCKET_KEY = "glint.unix_socket"
PROXY_IDENTITY_PREFIX = "HTTP_X_SSL_CLIENT_"
logger = logging.getLogger("glint.server")

OVERLOAD_RETRY_AFTER_SECONDS = 1
PROBE_PATHS = {b"/healthz", b"/readyz"}
_OVERLOADED = (
    b"HTTP/1.1 503 Service Unavailable\r\n"
    b"Retry-After: %d\r\n"
    b"Content-Type: text/plain\r\n"
    b"Content-Length: 32\r\n"
    b"%s\r\n"
    b"Every worker is busy; try again."
)
OVERLOADED_RESPONSE = _OVERLOADED % (OVERLOAD_RETRY_AFTER_SECONDS, b"Connection: close\r\n")
#: The refusal of a request without a body: the connection stays open for the next request, so a
#: busy server does not also pay for the client's new TLS handshake.
OVERLOADED_KEEP_ALIVE = _OVERLOADED % (OVERLOAD_RETRY_AFTER_SECONDS, b"")
UNIX_SOCKET_MODE = 0o660  # the proxy reaches it through the socket's group, nobody else can


class ClientChainTLSAdapter(BuiltinSSLAdapter):
    """cheroot's builtin TLS adapter with our context, exporting the verified chain and no DN
    strings.

    The context is read once per new connection, so assigning ``adapter.context`` swaps it
    atomically for the connections that follow (that is how new CRLs take effect).
    """

    def __init__(self, context: ssl.SSLContext):
        # BuiltinSSLAdapter.__init__ would build its own context from certificate files.
        Adapter.__init__(self, None, None)
        self.context = context

    def get_environ(self, sock: ssl.SSLSocket) -> dict:
        """Per-connection environ entries, merged into every request on that connection."""
        return {
            "wsgi.url_scheme": "https",
            "HTTPS": "on",
            "SSL_PROTOCOL": sock.version(),
            "SSL_CIPHER": sock.cipher()[0],
            CLIENT_CHAIN_KEY: verified_chain(sock),
        }


class UnderscoreDroppingHeaderReader(cheroot_server.HeaderReader):
    """Reads request headers, leaving out every header whose name contains ``_``."""

    def _allow_header(self, key_name: bytes) -> bool:
        return b"_" not in key_name


class GlintHTTPRequest(cheroot_server.HTTPRequest):
    header_reader = UnderscoreDroppingHeaderReader()


class GlintHTTPConnection(cheroot_server.HTTPConnection):
    RequestHandlerClass = GlintHTTPRequest


class KnownLengthBody:
    """cheroot's body of a request with a ``Content-Length``, which can also ``readinto``.

    cheroot's ``read(n)`` goes through the pure-Python ``_pyio`` buffered reader, which allocates
    an n-byte buffer for every TLS record it receives and then joins them: for an upload read a
    1 MiB chunk at a time, that is about 64 fresh megabyte buffers a chunk (``request_chunks``).
    ``readinto`` reads the socket straight into the caller's buffer. The byte count stays
    cheroot's own (``remaining``), so the rest of a body an application did not read is still
    drained before the next request on the connection.
    """

    def __init__(self, body: cheroot_server.KnownLengthRFile):
        self._body = body

    def readinto(self, buffer) -> int:
        remaining = self._body.remaining
        if not remaining:
            return 0
        view = memoryview(buffer)
        done = self._body.rfile.readinto(view[: min(len(view), remaining)])
        self._body.remaining -= done
        return done

    def __getattr__(self, name):  # read, readline, ... as cheroot has them
        return getattr(self._body, name)

    def __iter__(self):
        return iter(self._body)


class GlintGateway(wsgi.Gateway_10):
    """Builds the environ of the module docstring on top of cheroot's WSGI 1.0 one."""

    def get_environ(self) -> dict:
        environ = super().get_environ()
        if isinstance(environ["wsgi.input"], cheroot_server.KnownLengthRFile):
            environ["wsgi.input"] = KnownLengthBody(environ["wsgi.input"])
        server: GlintWSGIServer = self.req.server
        if server.direct_tls:
            for key in [key for key in environ if key.startswith(PROXY_IDENTITY_PREFIX)]:
                del environ[key]
            return environ
        if isinstance(server.bind_addr, str):
            environ[UNIX_SOCKET_KEY] = True
        if environ.get("HTTP_X_FORWARDED_PROTO") == "https" and is_trusted_proxy(
            environ, server.trusted_proxies
        ):
            environ["wsgi.url_scheme"] = "https"
        return environ


class GlintWSGIServer(wsgi.Server):
    """cheroot's WSGI server with Glint's header reader and gateway, and a bounded wait.

    cheroot keeps idle keep-alive connections in its selector, not in a thread; a connection with a
    request to read goes to a queue the threads take from. That queue is unbounded by default, so
    an overloaded server let clients wait until they timed out. Here it holds at most
    ``numthreads`` connections; one more is answered at once by cheroot's "unservicable" thread:
    503 with ``Retry-After``, or the probe (``/healthz``, ``/readyz``) it asks for.

    Args:
        bind_addr: ``(host, port)``, or a path for a unix socket.
        wsgi_app: the application.
        numthreads: worker threads (requests served at once).
        direct_tls: True when Glint terminates TLS itself (set ``ssl_adapter`` too).
        trusted_proxies: ``GLINT_TRUSTED_PROXIES``, for ``X-Forwarded-Proto``.
        listener: a socket bound by ``bind_listener`` in the parent of several worker processes;
            every worker accepts on it instead of binding its own.
    """

    ConnectionClass = GlintHTTPConnection

    def __init__(
        self,
        bind_addr,
        wsgi_app,
        *,
        numthreads: int,
        direct_tls: bool,
        trusted_proxies: list[str],
        listener: socket.socket | None = None,
    ):
        super().__init__(
            bind_addr,
            wsgi_app,
            numthreads=numthreads,
            accepted_queue_size=numthreads,
            accepted_queue_timeout=0,  # a full queue refuses at once, never stalls accepting
        )
        self.gateway = GlintGateway
        self.direct_tls = direct_tls
        self.trusted_proxies = trusted_proxies
        self.listener = listener

    def bind(self, family, type, proto=0):
        """cheroot's ``prepare`` binds here (TCP); a worker takes the parent's listener instead."""
        if self.listener is None:
            return super().bind(family, type, proto)
        self.socket = self.listener
        self.bind_addr = self.resolve_real_bind_addr(self.listener)
        return self.socket

    def _serve_unservicable(self):
        """cheroot's loop for connections the full queue refused (its 503 has no Retry-After)."""
        while self.ready:
            conn = self._unservicable_conns.get()
            if conn is cheroot_server._STOPPING_FOR_INTERRUPT:
                return
            self._answer_overloaded(conn)

    def _answer_overloaded(self, conn) -> None:
        conn.socket.settimeout(OVERLOAD_RETRY_AFTER_SECONDS)  # a slow client must not stall this
        request = conn.RequestHandlerClass(self, conn)
        keep = False
        try:
            request.parse_request()
            if request.ready and request.path in PROBE_PATHS:
                request.respond()  # probes answer even when every thread is busy
                keep = not request.close_connection
            elif request.ready:
                keep = _may_keep_open(request)
                conn.wfile.write(OVERLOADED_KEEP_ALIVE if keep else OVERLOADED_RESPONSE)
            conn.wfile.flush()
        except (OSError, cheroot_errors.FatalSSLAlert):
            keep = False  # the client left; the refusal was only a courtesy
        except Exception as exc:  # this thread must keep answering the ones that follow
            keep = False
            logger.error("could not answer an overloaded request: %r", exc)
        if keep:
            conn.socket.settimeout(self.timeout)
            self.put_conn(conn)  # back to the selector, holding no thread, like any idle one
            return
        conn.linger = True
        conn.close()

    def error_log(self, msg="", level=logging.INFO, traceback=False):
        """cheroot's messages (refused handshakes, worker errors) go to Glint's log, one line
        each."""
        logger.log(level, msg, exc_info=traceback)

    def bind_unix_socket(self, bind_addr):
        """cheroot makes the socket world-writable; anyone local could then pose as the proxy.

        The umask covers the moment between bind and chmod (this runs before any other thread).
        """
        if self.listener is not None:
            self.socket = self.listener
            return self.socket
        previous_umask = os.umask(0o777 & ~UNIX_SOCKET_MODE)
        try:
            super().bind_unix_socket(bind_addr)
        finally:
            os.umask(previous_umask)
        os.chmod(bind_addr, UNIX_SOCKET_MODE)


def _may_keep_open(request) -> bool:
    """Whether a refused request's connection can serve the next one: HTTP/1.1, not asked to
    close, and no body (one not read would be taken for the next request)."""
    headers = request.inheaders
    return (
        request.response_protocol == "HTTP/1.1"
        and headers.get(b"Connection", b"").lower() != b"close"
        and headers.get(b"Content-Length", b"0") in (b"", b"0")
        and b"Transfer-Encoding" not in headers
    )


def bind_listener(bind_addr, backlog: int = 128) -> socket.socket:
    """A listening socket for ``bind_addr`` (``(host, port)`` or a unix socket path), bound once
    in the parent so that every forked worker accepts on the same one.

    The kernel hands each new connection to one of the workers blocked in ``accept``. A unix socket
    gets the same mode as a single server's (``UNIX_SOCKET_MODE``, umask held over the bind).
    """
    if isinstance(bind_addr, str):
        if os.path.exists(bind_addr) and stat.S_ISSOCK(os.stat(bind_addr).st_mode):
            os.unlink(bind_addr)  # left by a previous run, as cheroot does
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        previous_umask = os.umask(0o777 & ~UNIX_SOCKET_MODE)
        try:
            sock.bind(bind_addr)
        except OSError:
            sock.close()
            raise
        finally:
            os.umask(previous_umask)
        os.chmod(bind_addr, UNIX_SOCKET_MODE)
        sock.listen(backlog)
        return sock
    host, port = bind_addr
    family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0][0]
    sock = socket.create_server((host, port), family=family, backlog=backlog)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock
