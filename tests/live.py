"""The real ``glint serve`` as a subprocess, a PKI on disk, and clients that speak raw TLS and HTTP.

Shared by every test that needs a live server (sign-in, the command line, the browser).

Every server gets its own data directory (SQLite) and a free port on 127.0.0.1, and runs under the
network guard (tests/netguard). Servers are module-scoped: start-up (Django, migrate) is the slow
part, and the tests of one module only read or add users.
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import sqlite3
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.pki import make_ca, make_user_cert, write_pem

GUARD_DIR = Path(__file__).resolve().parent / "netguard"
GLINT = str(Path(sys.executable).parent / "glint")
START_TIMEOUT = 60
DN_PREFIX = "/C=CA/O=Glint Test Grid/CN="


def glint_env(data_dir: Path, **settings: str) -> dict[str, str]:
    """Environment of a Glint subprocess: no inherited GLINT_* values, its own data dir, the
    guard."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("GLINT_")}
    env.update(
        GLINT_DATA_DIR=str(data_dir),
        GLINT_NETGUARD="1",
        GLINT_CLOUD_DEV_LOOPBACK="127.0.0.1",  # the devcloud's clouds (development only)
        PYTHONPATH=os.pathsep.join(
            filter(None, [str(GUARD_DIR), os.environ.get("PYTHONPATH", "")])
        ),
        DJANGO_SETTINGS_MODULE="glint.settings",
        GLINT_WORKERS="1",  # one process, as cheap as before; tests/server/test_workers.py forks
    )
    env.update(settings)
    return env


def run_glint(
    data_dir: Path, *args: str, program: str = GLINT, **settings: str
) -> subprocess.CompletedProcess:
    """Run a ``glint`` command (or another ``program`` of its virtualenv) against ``data_dir``
    with ``settings`` (``GLINT_*`` values) and return its result (never raises on failure)."""
    return subprocess.run(
        [program, *args],
        env=glint_env(data_dir, **settings),
        capture_output=True,
        text=True,
        timeout=180,
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class RunningServer:
    """One ``glint serve`` process; ``stop()`` sends SIGTERM and returns the exit code."""

    process: subprocess.Popen
    data_dir: Path
    log_path: Path
    port: int | None = None
    unix_socket: Path | None = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def add_user(self, common_name: str, *extra: str) -> str:
        dn = DN_PREFIX + common_name
        result = run_glint(self.data_dir, "user", "add", "--dn", dn, *extra)
        assert result.returncode == 0, result.stderr
        return dn

    def query(self, sql: str, *params) -> list[tuple]:
        with sqlite3.connect(self.data_dir / "glint.sqlite3") as db:
            return db.execute(sql, params).fetchall()

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def _connectable(server: RunningServer) -> bool:
    if server.unix_socket:
        family, address = socket.AF_UNIX, str(server.unix_socket)
    else:
        family, address = socket.AF_INET, ("127.0.0.1", server.port)
    with socket.socket(family) as probe:
        probe.settimeout(1)
        return probe.connect_ex(address) == 0


def start_server(
    data_dir: Path,
    *args: str,
    unix_socket: Path | None = None,
    log_name: str = "serve.log",
    **settings: str,
) -> RunningServer:
    """Start ``glint serve ARGS`` (on a free 127.0.0.1 port unless ``unix_socket``) and wait until
    it accepts. A second server on the same data directory needs its own ``log_name``."""
    data_dir.mkdir(parents=True, exist_ok=True)
    port = None if unix_socket else free_port()
    listen = (
        ["--unix-socket", str(unix_socket)]
        if unix_socket
        else ["--host", "127.0.0.1", "--port", str(port)]
    )
    log_path = data_dir / log_name
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [GLINT, "serve", *listen, *args],
            env=glint_env(data_dir, **settings),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = RunningServer(process, data_dir, log_path, port, unix_socket)
    deadline = time.monotonic() + START_TIMEOUT
    # Listening comes first, the start line just after it: wait for both, so tests can read it.
    while not (_connectable(server) and "glint serve: " in server.log()):
        if process.poll() is not None:
            pytest.fail(f"glint serve exited with {process.returncode}:\n{server.log()}")
        if time.monotonic() > deadline:
            server.stop()
            pytest.fail(f"glint serve did not listen within {START_TIMEOUT}s:\n{server.log()}")
        time.sleep(0.1)
    return server


# PKI ----------------------------------------------------------------------------------------------


@dataclass
class PKI:
    """Files on disk: the client CA, the server's certificate, and a credential per person."""

    directory: Path
    ca: object
    ca_file: Path
    server_file: Path
    credentials: dict[str, tuple[object, object, Path]] = field(default_factory=dict)

    @property
    def serve_args(self) -> tuple[str, ...]:
        """``glint serve``'s arguments for direct TLS with this PKI's server certificate and CA."""
        return (
            "--cert",
            str(self.server_file),
            "--key",
            str(self.server_file),
            "--client-ca",
            str(self.ca_file),
        )

    def person(self, common_name: str):
        """(certificate, key, PEM file) of ``common_name``, made on first use."""
        if common_name not in self.credentials:
            cert, key = make_user_cert(self.ca, common_name)
            path = write_pem(self.directory / f"{common_name.replace(' ', '_')}.pem", cert, key)
            self.credentials[common_name] = (cert, key, path)
        return self.credentials[common_name]


def make_pki(directory: Path) -> PKI:
    """A client CA, a server certificate for 127.0.0.1/localhost, and room for people's
    credentials."""
    ca = make_ca("Glint Test CA")
    server_cert, server_key = make_user_cert(
        ca, "localhost", server_names=["127.0.0.1", "localhost"]
    )
    return PKI(
        directory,
        ca,
        write_pem(directory / "ca.pem", ca.cert),
        write_pem(directory / "server.pem", server_cert, server_key),
    )


# Clients ------------------------------------------------------------------------------------------


def client_context(pki: PKI, credential: Path | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki.ca_file))
    if credential is not None:
        context.load_cert_chain(str(credential))
    return context


def https_get(
    port: int, path: str, context: ssl.SSLContext, headers: dict | None = None
) -> tuple[int, str]:
    """GET over TLS; returns (status, body). TLS refusals raise ``ssl.SSLError`` or a reset."""
    connection = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=15)
    try:
        connection.request("GET", path, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read().decode()
    finally:
        connection.close()


def tls_refusal(port: int, context: ssl.SSLContext, wait: float = 2.0) -> str:
    """The TLS alert the server answers a client with, or '' when it lets the client in.

    TLS 1.3: the client finishes its side of the handshake first and reads the verdict after; an
    accepted client hears nothing until it sends a request (the server sends no session tickets).
    """
    with socket.create_connection(("127.0.0.1", port), timeout=15) as raw:
        with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            tls.settimeout(wait)
            try:
                tls.recv(1)
            except ssl.SSLError as exc:
                return exc.reason or str(exc)
            except TimeoutError:
                return ""
    raise AssertionError("the server closed the connection without a TLS alert")


def raw_http(
    header_lines: list[str],
    path: str = "/api/v1/whoami/",
    *,
    port: int | None = None,
    source: str = "127.0.0.1",
    unix_socket: Path | None = None,
) -> tuple[int, str]:
    """Send a hand-written plain HTTP request (exact header names, any source address); (status,
    body)."""
    request = "\r\n".join(
        [f"GET {path} HTTP/1.1", "Host: glint.test", "Connection: close", *header_lines, "", ""]
    )
    if unix_socket:
        sock = socket.socket(socket.AF_UNIX)
        sock.settimeout(15)
        sock.connect(str(unix_socket))
    else:
        sock = socket.create_connection(("127.0.0.1", port), timeout=15, source_address=(source, 0))
    with sock:
        sock.sendall(request.encode("latin-1"))
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    response = b"".join(chunks).decode("utf-8", "replace")
    head, _, body = response.partition("\r\n\r\n")
    return int(head.split(" ", 2)[1]), body


# A server with repos ------------------------------------------------------------------------------


LIVE_GROUP = "browser"
LIVE_OTHER_GROUP = "browser-other"
LIVE_ADMIN_CN = "Browser Admin"


@dataclass
class LiveGlint:
    server: RunningServer
    url: str
    cert_file: Path  # the admin's certificate and key in one PEM file
    serve_args: tuple[str, ...] = ()
    settings: dict[str, str] = field(default_factory=dict)

    def glint(self, *args: str):
        result = run_glint(self.server.data_dir, *args, **self.settings)
        assert result.returncode == 0, result.stderr
        return result

    def restart(self) -> None:
        """Start ``glint serve`` again on the same data directory (after a stop or a kill), on a new
        port."""
        self.server.stop()
        self.server = start_server(self.server.data_dir, *self.serve_args, **self.settings)
        self.url = f"https://127.0.0.1:{self.server.port}"


def start_live_glint(
    devcloud,
    pki,
    data_dir: Path,
    clouds=("devcloud-1", "devcloud-2"),
    ec2_peer=None,
    **settings: str,
):
    """Yield a running ``glint serve`` over TLS whose group ``browser`` holds ``clouds`` as repos,
    and devcloud's EC2 peer as repo ``ec2`` when given (``devcloud_ec2.ec2_peer``).

    ``settings`` are ``GLINT_*`` environment values for the server (e.g. fewer job retries).
    """
    for args, env in _live_setup(devcloud, clouds, ec2_peer):
        result = run_glint(data_dir, *args, **settings, **env)
        assert result.returncode == 0, result.stderr
    _cert, _key, cert_file = pki.person(LIVE_ADMIN_CN)
    serve_args = pki.serve_args
    server = start_server(data_dir, *serve_args, **settings)
    live = LiveGlint(server, f"https://127.0.0.1:{server.port}", cert_file, serve_args, settings)
    try:
        yield live
    finally:
        live.server.stop()


def _live_setup(devcloud, clouds, ec2_peer):
    """The ``glint`` commands (and their extra environment) that set a live server up."""
    for args in (
        ("migrate",),
        ("group", "add", LIVE_GROUP),
        ("group", "add", LIVE_OTHER_GROUP),
        (
            "user",
            "add",
            "--dn",
            f"/C=CA/O=Glint Test Grid/CN={LIVE_ADMIN_CN}",
            "--admin",
            "--group",
            LIVE_GROUP,
            "--role",
            "manager",
        ),
        (
            "repo",
            "import",
            str(devcloud.clouds_yaml),
            "--group",
            LIVE_GROUP,
            *[a for c in clouds for a in ("--cloud", c)],
        ),
    ):
        yield args, {}
    if ec2_peer is not None:
        yield ec2_peer.glint_repo_import(LIVE_GROUP, "ec2")
