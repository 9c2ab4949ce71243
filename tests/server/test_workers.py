"""``glint serve --workers 2``: forked workers on one listener answer with the right identity,
see CRL updates, run the background work once, and a dead worker is replaced."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import time
from pathlib import Path

import pytest

from tests.live import client_context, https_get, raw_http, start_server, tls_refusal
from tests.pki import make_proxy_cert, write_chain_pem
from tests.server.test_crl import write_crl
from tests.server.test_proxy_mode import signed_in_as, verified

RELOAD_SECONDS = 1
CONNECTIONS = 8  # new connections per check, so both workers' accept()s get some


def worker_pids(server) -> list[int]:
    children = Path(f"/proc/{server.process.pid}/task/{server.process.pid}/children")
    return [int(pid) for pid in children.read_text().split()]


@pytest.fixture(scope="module")
def ca_dir(pki, tmp_path_factory):
    directory = tmp_path_factory.mktemp("certificates")
    ca_hash = subprocess.run(
        ["openssl", "x509", "-hash", "-noout", "-in", str(pki.ca_file)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    (directory / f"{ca_hash}.0").write_bytes(pki.ca_file.read_bytes())
    revoked_cert, _key, _ = pki.person("Rex Revoked")
    write_crl(directory, ca_hash, pki, [revoked_cert])
    return directory, ca_hash


@pytest.fixture(scope="module")
def server(pki, ca_dir, tmp_path_factory):
    directory, _ = ca_dir
    running = start_server(
        tmp_path_factory.mktemp("workers"),
        "--cert",
        str(pki.server_file),
        "--key",
        str(pki.server_file),
        "--client-ca-dir",
        str(directory),
        "--ca-reload-seconds",
        str(RELOAD_SECONDS),
        GLINT_WORKERS="2",
    )
    yield running
    assert running.stop() == 0, running.log()[-3000:]


def whoami(server, pki, credential) -> str:
    status, body = https_get(server.port, "/api/v1/whoami/", client_context(pki, credential))
    assert status == 200, body
    return json.loads(body)["dn"]


def test_two_workers_share_the_listener(server):
    assert "2 worker(s)" in server.log()
    assert len(worker_pids(server)) == 2


def test_every_worker_answers_users_and_proxies_with_their_dn_and_refuses_the_revoked(
    server, pki, tmp_path
):
    dn = server.add_user("Wanda Worker")
    user_cert, user_key, credential = pki.person("Wanda Worker")
    proxy, proxy_key = make_proxy_cert(user_cert, user_key)
    proxy_file = write_chain_pem(tmp_path / "x509up", [proxy, user_cert], proxy_key)
    _cert, _key, revoked = pki.person("Rex Revoked")
    for _ in range(CONNECTIONS):
        assert whoami(server, pki, credential) == dn
        assert whoami(server, pki, proxy_file) == dn
        assert tls_refusal(server.port, client_context(pki, revoked), 2) == (
            "SSLV3_ALERT_CERTIFICATE_REVOKED"
        )


def test_a_new_crl_reaches_every_worker(server, pki, ca_dir):
    directory, ca_hash = ca_dir
    server.add_user("Late Revoked")
    late_cert, _key, late = pki.person("Late Revoked")
    rex_cert, _key, _ = pki.person("Rex Revoked")
    assert whoami(server, pki, late).endswith("Late Revoked")
    write_crl(directory, ca_hash, pki, [rex_cert, late_cert])
    time.sleep(RELOAD_SECONDS * 3)
    for _ in range(CONNECTIONS):
        assert tls_refusal(server.port, client_context(pki, late), 2) == (
            "SSLV3_ALERT_CERTIFICATE_REVOKED"
        )


def test_background_work_runs_in_one_worker_only(server):
    assert server.log().count("background workers started") == 1, server.log()


def test_a_killed_worker_is_replaced_and_the_server_keeps_answering(server, pki):
    victim = max(worker_pids(server))  # the later fork: worker 1, not the background one
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while "restarting it" not in server.log() or len(worker_pids(server)) < 2:
        assert time.monotonic() < deadline, server.log()[-3000:]
        time.sleep(0.2)
    assert victim not in worker_pids(server)
    assert https_get(server.port, "/healthz", client_context(pki))[0] == 200
    assert server.log().count("background workers started") == 1


def test_workers_behind_a_proxy_share_the_unix_socket(tmp_path_factory):
    directory = tmp_path_factory.mktemp("unix-workers")
    socket_path = directory / "glint.sock"
    running = start_server(
        directory,
        "--behind-proxy",
        unix_socket=socket_path,
        GLINT_TRUSTED_PROXIES="unix",
        GLINT_WORKERS="2",
    )
    try:
        assert len(worker_pids(running)) == 2
        assert stat.S_IMODE(os.stat(socket_path).st_mode) == 0o660
        dn = running.add_user("Uma Workers")
        for _ in range(CONNECTIONS):
            assert signed_in_as(raw_http(verified(dn), unix_socket=socket_path)) == dn
    finally:
        assert running.stop() == 0, running.log()[-3000:]
