"""``glint serve`` refuses unsafe or incomplete set-ups with a clear message, and stops cleanly."""

from __future__ import annotations

import socket

import pytest

from tests.live import client_context, https_get, raw_http, run_glint, start_server


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--behind-proxy", "--host", "192.0.2.10"], "listens only on a loopback address"),
        (["--behind-proxy", "--host", "glint.example.org"], "listens only on a loopback address"),
        (["--unix-socket", "/tmp/glint-test.sock"], "add --behind-proxy"),
        (
            [],
            (
                "direct TLS needs --cert FILE (GLINT_TLS_CERT), "
                "--client-ca FILE or --client-ca-dir DIR"
            ),
        ),
    ],
)
def test_refuses_unsafe_or_incomplete_options_before_listening(tmp_path, args, message):
    result = run_glint(tmp_path, "serve", "--port", "1", *args)
    assert result.returncode != 0
    assert message in result.stderr
    assert not (tmp_path / "glint.sqlite3").exists()  # refused before touching the database


def test_unreadable_tls_files_are_named(tmp_path, pki):
    result = run_glint(
        tmp_path,
        "serve",
        "--port",
        "1",
        "--cert",
        str(tmp_path / "missing.pem"),
        "--key",
        str(pki.server_file),
        "--client-ca",
        str(pki.ca_file),
    )
    assert result.returncode != 0
    assert f"cannot load server certificate {tmp_path / 'missing.pem'}" in result.stderr


def test_a_busy_port_is_reported(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_glint(tmp_path, "serve", "--behind-proxy", "--port", str(port))
    assert result.returncode != 0
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr


def test_insecure_dev_mode_warns_loudly(tmp_path):
    server = start_server(tmp_path, "--insecure-dev")
    try:
        assert raw_http([], "/healthz", port=server.port)[0] == 200
    finally:
        assert server.stop() == 0
    assert "INSECURE DEVELOPMENT MODE: plain HTTP" in server.log()


def test_sigterm_stops_the_server_cleanly(tmp_path, pki):
    server = start_server(
        tmp_path,
        "--cert",
        str(pki.server_file),
        "--key",
        str(pki.server_file),
        "--client-ca",
        str(pki.ca_file),
    )
    assert https_get(server.port, "/healthz", client_context(pki))[0] == 200
    assert server.stop() == 0
    log = server.log()
    assert (
        "direct TLS on https://127.0.0.1:" in log and f"client CAs from file {pki.ca_file}" in log
    )
    assert "glint serve: stopped" in log
