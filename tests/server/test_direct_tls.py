"""Signing in to the real ``glint serve`` with client certificates over real TLS (direct mode)."""

from __future__ import annotations

import json
import socket
import ssl
from urllib.parse import quote

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from tests.live import DN_PREFIX, client_context, https_get, start_server
from tests.pki import (
    make_ca,
    make_proxy_cert,
    make_user_cert,
    write_chain_pem,
    write_pem,
)


@pytest.fixture(scope="module")
def server(pki, tmp_path_factory):
    # 127.0.0.1 is a trusted proxy here only to show that direct mode ignores proxy headers anyway.
    running = start_server(
        tmp_path_factory.mktemp("direct"),
        *pki.serve_args,
        GLINT_TRUSTED_PROXIES="127.0.0.1",
    )
    yield running
    running.stop()


def whoami(server, pki, credential):
    status, body = https_get(server.port, "/api/v1/whoami/", client_context(pki, credential))
    assert status == 200, body
    return json.loads(body)["dn"]


def test_registered_user_is_signed_in_with_their_canonical_dn(server, pki):
    dn = server.add_user("Alice Registered")
    _cert, _key, credential = pki.person("Alice Registered")
    assert whoami(server, pki, credential) == dn


def test_unregistered_certificate_gets_the_refusal_page_and_leaves_an_access_request(server, pki):
    _cert, _key, credential = pki.person("Una Registered")
    status, body = https_get(server.port, "/", client_context(pki, credential))
    assert status == 403
    assert "an admin has not added you yet" in body
    assert DN_PREFIX + "Una Registered" in body
    assert server.query("SELECT dn FROM accounts_accessrequest") == [
        (DN_PREFIX + "Una Registered",)
    ]
    assert (
        server.query("SELECT dn FROM accounts_user WHERE dn = ?", DN_PREFIX + "Una Registered")
        == []
    )


def test_no_certificate_completes_the_handshake_and_is_refused_by_the_app(server, pki):
    """Client certificates are optional at the TLS layer so probes work and browsers get a readable
    page."""
    status, body = https_get(server.port, "/api/v1/whoami/", client_context(pki))
    assert status == 403
    assert "client certificate is required" in body
    status, _body = https_get(server.port, "/repos/", client_context(pki))
    assert status == 403


def test_probes_and_static_files_need_no_certificate(server, pki):
    assert https_get(server.port, "/healthz", client_context(pki)) == (200, '{"status": "ok"}')
    assert https_get(server.port, "/readyz", client_context(pki))[0] == 200
    assert https_get(server.port, "/static/glint/htmx.min.js", client_context(pki))[0] == 200


@pytest.mark.parametrize(
    "path",
    [
        "/static/../../x",
        "/static/glint/../../../../etc/passwd",
        "/static/..%2f..%2fx",
        "/static/%2e%2e/%2e%2e/x",
        "/static/%2e%2e%2f%2e%2e%2fsettings.py",
        "/static/..%5c..%5cx",
        "/static/a%00b",
        "/%2e%2e/%2e%2e/etc/passwd",
        "/api/v1/..%2f..%2fschema/",
        "/static/%ff%fe",
    ],
)
def test_a_path_out_of_the_static_files_is_a_4xx_without_a_traceback(server, pki, path):
    status, _body = https_get(server.port, path, client_context(pki))
    assert 400 <= status < 500, (path, status)
    assert "Traceback" not in server.log(), server.log()[-2000:]


def test_certificate_from_another_ca_is_refused_at_the_handshake(server, pki, tmp_path):
    stranger_ca = make_ca("Some Other CA")
    cert, key = make_user_cert(stranger_ca, "Alice Registered")  # same DN as a registered user
    credential = write_pem(tmp_path / "stranger.pem", cert, key)
    with socket.create_connection(("127.0.0.1", server.port), timeout=15) as raw:
        with client_context(pki, credential).wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            # TLS 1.3: the client finishes its side first; the server's alert arrives on the first
            # read.
            with pytest.raises(ssl.SSLError, match="alert unknown ca"):
                tls.recv(1)


def test_rfc3820_proxy_certificate_maps_to_its_user(server, pki, tmp_path):
    dn = server.add_user("Paula Proxy")
    user_cert, user_key, _ = pki.person("Paula Proxy")
    proxy, proxy_key = make_proxy_cert(user_cert, user_key)
    proxy_of_proxy, proxy_of_proxy_key = make_proxy_cert(proxy, proxy_key)
    single = write_chain_pem(tmp_path / "x509up", [proxy, user_cert], proxy_key)
    double = write_chain_pem(
        tmp_path / "x509up2", [proxy_of_proxy, proxy, user_cert], proxy_of_proxy_key
    )
    assert whoami(server, pki, single) == dn
    assert whoami(server, pki, double) == dn


def test_proxy_headers_are_ignored_in_direct_mode_even_from_a_trusted_address(server, pki):
    dn = server.add_user("Victim Admin", "--admin")
    cert, _key, _ = pki.person("Victim Admin")
    spoofed = {
        "X-SSL-Client-Verify": "SUCCESS",
        "X-SSL-Client-S-DN": dn,
        "X-SSL-Client-Cert": quote(cert.public_bytes(Encoding.PEM).decode()),
    }
    status, body = https_get(server.port, "/api/v1/whoami/", client_context(pki), headers=spoofed)
    assert status == 403, body


def test_a_second_connection_from_the_same_client_is_identified_again(server, pki):
    """Resumed TLS sessions carry no verified chain, so the server must not resume them."""
    dn = server.add_user("Rita Resume")
    _cert, _key, credential = pki.person("Rita Resume")
    context = client_context(pki, credential)
    session = None
    for _ in range(2):
        with socket.create_connection(("127.0.0.1", server.port), timeout=15) as raw:
            with context.wrap_socket(raw, server_hostname="127.0.0.1", session=session) as tls:
                tls.sendall(
                    b"GET /api/v1/whoami/ HTTP/1.1\r\nHost: glint.test\r\nConnection: close\r\n\r\n"
                )
                response = b""
                while chunk := tls.recv(65536):
                    response += chunk
                session = tls.session
        assert response.startswith(b"HTTP/1.1 200"), response[:200]
        assert dn.encode() in response
