"""Real nginx and Apache httpd from Debian, in front of the real ``glint serve``, on loopback.

Each front end runs in the foreground as a child of the test (never the packaged daemon, which
``policy-rc.d`` keeps from starting on install), on a free 127.0.0.1 port, with its site
configuration rendered from ``deploy/`` (the files the README shows) wrapped in a minimal main
configuration that keeps every path (pid, logs, temp files) in the test's directory.
"""

from __future__ import annotations

import getpass
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.live import free_port

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
PLACEHOLDER = re.compile(r"@([A-Z][A-Z_]+[A-Z])@")
APACHE_MODULES = Path("/usr/lib/apache2/modules")
START_TIMEOUT = 20


def render(template: Path, values: dict[str, str]) -> str:
    """``template`` with every ``@NAME@`` replaced; a placeholder without a value is an error."""
    text = template.read_text()
    missing = set(PLACEHOLDER.findall(text)) - set(values)
    assert not missing, f"{template} has placeholders the test does not fill: {sorted(missing)}"
    return PLACEHOLDER.sub(lambda match: values[match.group(1)], text)


@dataclass
class FrontEnd:
    name: str
    process: subprocess.Popen
    port: int
    directory: Path

    def error_log(self) -> str:
        path = self.directory / "error.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _wait_listening(front: FrontEnd) -> FrontEnd:
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        with socket.socket() as probe:
            probe.settimeout(1)
            if probe.connect_ex(("127.0.0.1", front.port)) == 0:
                return front
        if front.process.poll() is not None or time.monotonic() > deadline:
            front.stop()
            output = front.process.stdout.read() if front.process.stdout else ""
            pytest.fail(f"{front.name} did not start: {output}\n{front.error_log()}")
        time.sleep(0.05)


def require(binary: str) -> str:
    path = shutil.which(binary) or shutil.which(binary, path="/usr/sbin:/sbin")
    if path is None:
        pytest.fail(f"{binary} is not installed: run scripts/setup-system")
    return path


def start_nginx(
    directory: Path, *, server_file: Path, ca_bundle: Path, crl_bundle: Path, glint_socket: Path
) -> FrontEnd:
    nginx = require("nginx")
    port = free_port()
    site = render(
        DEPLOY / "nginx" / "glint.conf",
        {
            "LISTEN": f"127.0.0.1:{port}",
            "SERVER_NAME": "localhost",
            "SERVER_CERT": str(server_file),
            "SERVER_KEY": str(server_file),
            "CA_BUNDLE": str(ca_bundle),
            "CRL_BUNDLE": str(crl_bundle),
            "GLINT_SOCKET": str(glint_socket),
        },
    )
    (directory / "glint.conf").write_text(site)
    # As root, workers run as this same user so they can use Glint's 0660 socket; otherwise ignored.
    user = "user root;" if os.geteuid() == 0 else ""
    (directory / "nginx.conf").write_text(f"""
{user}
daemon off;
worker_processes 1;
pid {directory}/nginx.pid;
error_log {directory}/error.log info;
events {{ worker_connections 64; }}
http {{
    access_log {directory}/access.log;
    client_body_temp_path {directory}/client_body;
    proxy_temp_path {directory}/proxy;
    fastcgi_temp_path {directory}/fastcgi;
    uwsgi_temp_path {directory}/uwsgi;
    scgi_temp_path {directory}/scgi;
    include {directory}/glint.conf;
}}
""")
    process = subprocess.Popen(
        [
            nginx,
            "-p",
            str(directory),
            "-c",
            str(directory / "nginx.conf"),
            "-e",
            str(directory / "error.log"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    return _wait_listening(FrontEnd("nginx", process, port, directory))


def start_apache(directory: Path, *, server_file: Path, ca_dir: Path, glint_port: int) -> FrontEnd:
    apache = require("apache2")
    port = free_port()
    site = render(
        DEPLOY / "apache" / "glint.conf",
        {
            "LISTEN": f"127.0.0.1:{port}",
            "SERVER_NAME": "localhost",
            "SERVER_CERT": str(server_file),
            "SERVER_KEY": str(server_file),
            "CA_DIR": str(ca_dir),
            "GLINT_PORT": str(glint_port),
        },
    )
    (directory / "glint.conf").write_text(site)
    modules = ["mpm_event", "authz_core", "ssl", "socache_shmcb", "headers", "proxy", "proxy_http"]
    loads = "\n".join(f"LoadModule {m}_module {APACHE_MODULES}/mod_{m}.so" for m in modules)
    # Apache will not serve as root; as root its children become www-data (the packaged user).
    user = (
        "User www-data\nGroup www-data"
        if os.geteuid() == 0
        else f"# running as {getpass.getuser()}"
    )
    (directory / "httpd.conf").write_text(f"""
ServerRoot {directory}
ServerName localhost
DefaultRuntimeDir {directory}
PidFile {directory}/apache.pid
Mutex posixsem default
ErrorLog {directory}/error.log
LogLevel warn ssl:info
{loads}
{user}
Listen 127.0.0.1:{port}
SSLSessionCache shmcb:{directory}/ssl_scache(512000)
Include {directory}/glint.conf
""")
    process = subprocess.Popen(
        [apache, "-f", str(directory / "httpd.conf"), "-DFOREGROUND"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    return _wait_listening(FrontEnd("apache", process, port, directory))


def tls_http(
    port: int, context: ssl.SSLContext, header_lines: list[str], path: str = "/api/v1/whoami/"
) -> tuple[int, str]:
    """A hand-written HTTPS request (exact header names, underscores and all); (status, body)."""
    request = "\r\n".join(
        [f"GET {path} HTTP/1.1", "Host: localhost", "Connection: close", *header_lines, "", ""]
    )
    with socket.create_connection(("127.0.0.1", port), timeout=15) as raw:
        with context.wrap_socket(raw, server_hostname="localhost") as tls:
            tls.sendall(request.encode("utf-8"))
            chunks = []
            while chunk := tls.recv(65536):
                chunks.append(chunk)
    head, _, body = b"".join(chunks).decode("utf-8", "replace").partition("\r\n\r\n")
    return int(head.split(" ", 2)[1]), body
