"""Look-alike subjects are different people, through the real ``glint serve`` (issue 12, item 1).

Certificates from the test PKI (tests/identity/lookalikes.py) sign in over real TLS in direct
mode, with RFC 3820 proxies too, and as a trusted reverse proxy's headers would carry them: the DN
strings are the ones ``openssl`` itself prints, as nginx and Apache forward them. Real nginx and
Apache in front of Glint are in test_reverse_proxies.py.
"""

from __future__ import annotations

import http.client
import json
from urllib.parse import quote

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from tests.identity.lookalikes import (
    CANONICAL,
    LOOKALIKES,
    REGISTER,
    REGISTERED,
    make_credentials,
    openssl_subject,
)
from tests.live import client_context, https_get, raw_http, run_glint, start_server
from tests.pki import make_proxy_cert, write_chain_pem

PROXY = "127.0.0.2"


@pytest.fixture(scope="module")
def credentials(pki, tmp_path_factory):
    return make_credentials(pki.ca, tmp_path_factory.mktemp("lookalikes"))


def register(server) -> None:
    for dn, extra in REGISTER.values():
        result = run_glint(server.data_dir, "user", "add", "--dn", *dn, *extra)
        assert result.returncode == 0, result.stderr


@pytest.fixture(scope="module")
def direct(pki, tmp_path_factory):
    server = start_server(
        tmp_path_factory.mktemp("lookalike-direct"),
        *pki.serve_args,
    )
    register(server)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def behind_proxy(tmp_path_factory):
    server = start_server(
        tmp_path_factory.mktemp("lookalike-proxy"), "--behind-proxy", GLINT_TRUSTED_PROXIES=PROXY
    )
    register(server)
    yield server
    server.stop()


def over_tls(server, pki, credential, path="/api/v1/whoami/"):
    return https_get(server.port, path, client_context(pki, credential))


def https_post_json(port, path, body, context) -> tuple[int, dict]:
    connection = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=15)
    try:
        connection.request(
            "POST", path, body=json.dumps(body), headers={"Content-Type": "application/json"}
        )
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def access_requests(server) -> list[str]:
    return [dn for (dn,) in server.query("SELECT dn FROM accounts_accessrequest")]


# Direct TLS -------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", REGISTERED)
def test_each_registered_certificate_signs_in_as_its_own_dn(direct, pki, credentials, key):
    status, body = over_tls(direct, pki, credentials[key][2])
    assert status == 200, body
    me = json.loads(body)
    assert me["dn"] == CANONICAL[key]
    assert me["is_admin"] == ("--admin" in REGISTER[key][1])


@pytest.mark.parametrize("key", LOOKALIKES)
def test_a_lookalike_certificate_is_a_stranger_and_never_the_admin(direct, pki, credentials, key):
    """Before the fix, the three-RDN subject and the single CN signed in as the admins."""
    status, body = over_tls(direct, pki, credentials[key][2])
    assert status == 403, body
    assert "an admin has not added you yet" in body
    assert over_tls(direct, pki, credentials[key][2], "/api/v1/users/")[0] == 403
    assert CANONICAL[key] in access_requests(direct)
    registered = [dn for (dn,) in direct.query("SELECT dn FROM accounts_user")]
    assert CANONICAL[key] not in registered


def test_a_proxy_of_the_lookalike_is_the_lookalike_and_a_proxy_of_the_admin_the_admin(
    direct, pki, credentials, tmp_path
):
    for key, expected in (("admin-lookalike", 403), ("admin", 200)):
        cert, cert_key, _ = credentials[key]
        proxy, proxy_key = make_proxy_cert(cert, cert_key)
        status, body = over_tls(
            direct, pki, write_chain_pem(tmp_path / f"{key}-x509up", [proxy, cert], proxy_key)
        )
        assert status == expected, body
        if status == 200:
            assert json.loads(body)["dn"] == CANONICAL["admin"]


def test_once_added_the_lookalike_is_a_second_person_without_the_admins_rights(
    direct, pki, credentials
):
    """The admin adds the look-alike by its RFC 4514 form (as nginx prints it): a new row, no admin
    flag."""
    rfc = openssl_subject(credentials["admin-lookalike"][0], "RFC2253")
    assert rfc == "CN=Sec Admin,O=Glint Test Grid/OU=Admins,C=CA"
    status, created = https_post_json(
        direct.port, "/api/v1/users/", {"dn": rfc}, client_context(pki, credentials["admin"][2])
    )
    assert status == 201, created
    assert created["dn"] == CANONICAL["admin-lookalike"] and not created["is_admin"]
    status, body = over_tls(direct, pki, credentials["admin-lookalike"][2])
    assert status == 200, body
    me = json.loads(body)
    assert me["dn"] == CANONICAL["admin-lookalike"] and me["is_admin"] is False
    assert over_tls(direct, pki, credentials["admin-lookalike"][2], "/api/v1/users/")[0] == 403
    rows = direct.query("SELECT dn, is_admin FROM accounts_user WHERE dn LIKE '%Sec Admin'")
    assert sorted(rows) == sorted([(CANONICAL["admin"], 1), (CANONICAL["admin-lookalike"], 0)])


# Behind a reverse proxy -------------------------------------------------------------------------


def headers(cert=None, dn=None) -> list[str]:
    lines = ["X-SSL-Client-Verify: SUCCESS"]
    if dn is not None:
        lines.append(f"X-SSL-Client-S-DN: {dn}")
    if cert is not None:
        lines.append("X-SSL-Client-Cert: " + quote(cert.public_bytes(Encoding.PEM).decode()))
    return lines


def via_proxy(server, lines, path="/api/v1/whoami/"):
    return raw_http(lines, path, port=server.port, source=PROXY)


@pytest.mark.parametrize("key", REGISTERED)
def test_behind_a_proxy_each_registered_certificate_is_itself(behind_proxy, credentials, key):
    cert = credentials[key][0]
    rfc2253 = openssl_subject(cert, "RFC2253")
    for lines in (headers(cert, rfc2253), headers(cert), headers(None, rfc2253)):
        status, body = via_proxy(behind_proxy, lines)
        assert status == 200, (lines, body)
        assert json.loads(body)["dn"] == CANONICAL[key]


@pytest.mark.parametrize("key", LOOKALIKES)
def test_behind_a_proxy_a_lookalike_is_a_stranger(behind_proxy, credentials, key):
    """By certificate header, by RFC 2253 DN header alone, and by both: never the registered
    person."""
    cert = credentials[key][0]
    rfc2253 = openssl_subject(cert, "RFC2253")
    for lines in (headers(cert, rfc2253), headers(cert), headers(None, rfc2253)):
        status, body = via_proxy(behind_proxy, lines)
        assert status == 403 and "an admin has not added you yet" in body, (lines, body)
        assert via_proxy(behind_proxy, lines, "/api/v1/users/")[0] == 403
    assert CANONICAL[key] in access_requests(behind_proxy)


def test_a_slash_dn_header_alone_is_refused_as_ambiguous(behind_proxy, credentials):
    """The legacy slash form does not escape everything (OpenSSL < 3 prints the two admins
    alike)."""
    admin = credentials["admin"][0]
    for dn in (CANONICAL["admin"], openssl_subject(admin, "compat")):
        status, body = via_proxy(behind_proxy, headers(None, dn))
        assert status == 403 and "client certificate is required" in body, body
    assert "slash-form DN header without a certificate header is ambiguous" in behind_proxy.log()


def test_next_to_the_certificate_a_slash_dn_header_is_checked_against_it(behind_proxy, credentials):
    """OpenSSL 3 escapes '/' and '+' in its slash form: each certificate matches its own string; the
    unescaped string old OpenSSL prints for the look-alike names the admin, so it contradicts the
    look-alike's certificate and is refused."""
    admin, lookalike = credentials["admin"][0], credentials["admin-lookalike"][0]
    assert openssl_subject(lookalike, "compat") == CANONICAL["admin-lookalike"]
    status, body = via_proxy(behind_proxy, headers(admin, openssl_subject(admin, "compat")))
    assert status == 200 and json.loads(body)["dn"] == CANONICAL["admin"], body
    status, body = via_proxy(behind_proxy, headers(lookalike, openssl_subject(lookalike, "compat")))
    assert status == 403 and "an admin has not added you yet" in body, body
    status, body = via_proxy(behind_proxy, headers(lookalike, CANONICAL["admin"]))
    assert status == 403 and "client certificate is required" in body, body
