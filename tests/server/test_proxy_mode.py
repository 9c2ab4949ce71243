"""Behind a reverse proxy: headers believed only from trusted addresses, spoofing forms ignored.

The server listens on 127.0.0.1 and trusts 127.0.0.2; the test picks the source address of each
connection (Linux routes all of 127.0.0.0/8 to loopback), so "the proxy" and "someone else on this
machine" are both real peers.
"""

from __future__ import annotations

import json
import os
import stat
from urllib.parse import quote

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from glint.accounts.dn import display_from_canonical
from tests.live import raw_http, start_server

PROXY = "127.0.0.2"
NOT_THE_PROXY = "127.0.0.1"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    running = start_server(
        tmp_path_factory.mktemp("proxy"), "--behind-proxy", GLINT_TRUSTED_PROXIES=PROXY
    )
    yield running
    running.stop()


@pytest.fixture(scope="module")
def people(server, pki):
    """Alice and Mallory are both registered; the tests check which of them a request becomes."""
    return {
        name: (server.add_user(name), pki.person(name)[0])
        for name in ("Alice Proxied", "Mallory Proxied")
    }


def verified(dn: str) -> list[str]:
    """What nginx and Apache send for ``dn``: the verify status and the DN in RFC 2253 form."""
    return ["X-SSL-Client-Verify: SUCCESS", f"X-SSL-Client-S-DN: {display_from_canonical(dn)}"]


def cert_header(cert) -> str:
    """nginx's ``$ssl_client_escaped_cert``: the URL-encoded PEM leaf."""
    return "X-SSL-Client-Cert: " + quote(cert.public_bytes(Encoding.PEM).decode())


def signed_in_as(response) -> str | None:
    status, body = response
    return json.loads(body)["dn"] if status == 200 else None


def test_start_line_names_the_mode_and_the_trusted_proxies(server):
    assert "behind a reverse proxy, plain HTTP on http://127.0.0.1:" in server.log()
    assert PROXY in server.log()


def test_headers_from_the_trusted_proxy_sign_the_user_in(server, people):
    dn, cert = people["Alice Proxied"]
    assert signed_in_as(raw_http(verified(dn), port=server.port, source=PROXY)) == dn
    by_certificate = ["X-SSL-Client-Verify: SUCCESS", cert_header(cert)]
    assert signed_in_as(raw_http(by_certificate, port=server.port, source=PROXY)) == dn


def test_headers_from_any_other_address_are_ignored(server, people):
    dn, cert = people["Alice Proxied"]
    status, body = raw_http(
        [*verified(dn), cert_header(cert)], port=server.port, source=NOT_THE_PROXY
    )
    assert status == 403
    assert "client certificate is required" in body


def test_underscore_forms_are_ignored_even_from_the_trusted_proxy(server, people):
    alice, _ = people["Alice Proxied"]
    mallory, _ = people["Mallory Proxied"]
    only_underscores = ["X_SSL_Client_Verify: SUCCESS", f"X_SSL_Client_S_DN: {alice}"]
    assert raw_http(only_underscores, port=server.port, source=PROXY)[0] == 403
    # The proxy's genuine header must not be overwritten by the client's underscore twin, whichever
    # comes last.
    twin = f"X_SSL_Client_S_DN: {alice}"
    assert (
        signed_in_as(raw_http([*verified(mallory), twin], port=server.port, source=PROXY))
        == mallory
    )
    assert (
        signed_in_as(raw_http([twin, *verified(mallory)], port=server.port, source=PROXY))
        == mallory
    )


@pytest.mark.parametrize(
    "verify", ["NONE", "GENEROUS", "FAILED:unable to get issuer certificate", "success", ""]
)
def test_a_verify_status_other_than_success_is_ignored(server, people, verify):
    dn, cert = people["Alice Proxied"]
    headers = [f"X-SSL-Client-Verify: {verify}", f"X-SSL-Client-S-DN: {dn}", cert_header(cert)]
    assert raw_http(headers, port=server.port, source=PROXY)[0] == 403


def test_a_dn_header_that_contradicts_the_certificate_header_is_refused(server, people):
    """Both come from the same front end; disagreement means a misconfiguration or a rewrite."""
    alice, alice_cert = people["Alice Proxied"]
    mallory, _ = people["Mallory Proxied"]
    assert (
        raw_http([*verified(mallory), cert_header(alice_cert)], port=server.port, source=PROXY)[0]
        == 403
    )
    assert (
        signed_in_as(
            raw_http([*verified(alice), cert_header(alice_cert)], port=server.port, source=PROXY)
        )
        == alice
    )


def test_the_scheme_is_https_only_when_the_trusted_proxy_says_so(server, people):
    dn, _ = people["Alice Proxied"]
    status, body = raw_http(
        [*verified(dn), "X-Forwarded-Proto: https"], "/api/v1/", port=server.port, source=PROXY
    )
    assert status == 200 and all(
        link.startswith("https://") for link in json.loads(body).values()
    ), body
    status, body = raw_http(verified(dn), "/api/v1/", port=server.port, source=PROXY)
    assert status == 200 and all(
        link.startswith("http://") for link in json.loads(body).values()
    ), body


def test_unix_socket_with_unix_trusted(tmp_path_factory, pki):
    directory = tmp_path_factory.mktemp("unix")
    socket_path = directory / "glint.sock"
    running = start_server(
        directory, "--behind-proxy", unix_socket=socket_path, GLINT_TRUSTED_PROXIES="unix"
    )
    try:
        dn = running.add_user("Uma Unix")
        cert = pki.person("Uma Unix")[0]
        assert stat.S_IMODE(os.stat(socket_path).st_mode) == 0o660
        assert signed_in_as(raw_http(verified(dn), unix_socket=socket_path)) == dn
        by_certificate = ["X-SSL-Client-Verify: SUCCESS", cert_header(cert)]
        assert signed_in_as(raw_http(by_certificate, unix_socket=socket_path)) == dn
        assert (
            raw_http(
                ["X_SSL_Client_Verify: SUCCESS", f"X_SSL_Client_S_DN: {dn}"],
                unix_socket=socket_path,
            )[0]
            == 403
        )
    finally:
        assert running.stop() == 0
