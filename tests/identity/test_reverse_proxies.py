"""Proxy mode with the real front ends: nginx → Glint on a unix socket, Apache → Glint on loopback
TCP.

Both run the site files in ``deploy/`` (tests/identity/reverse_proxies.py). The attacks are sent
as raw bytes over TLS, so header names arrive exactly as written (``X_SSL_…`` included).
"""

from __future__ import annotations

import json
import os
import shutil
import ssl
import stat
import tempfile
from pathlib import Path
from urllib.parse import quote

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from tests.identity.lookalikes import CANONICAL, LOOKALIKES, REGISTER, REGISTERED, make_credentials
from tests.identity.reverse_proxies import DEPLOY, start_apache, start_nginx, tls_http
from tests.live import DN_PREFIX, client_context, raw_http, run_glint, start_server
from tests.pki import CADirectory, make_crl

PEOPLE = ("Nina Proxied", "Jürgen Müller", "Mallory Proxied", "Rex Revoked")


@pytest.fixture(scope="module")
def front_files(pki, tmp_path_factory):
    """The CA as nginx wants it (bundle files) and as Apache wants it (a hashed directory), with a
    CRL."""
    directory = tmp_path_factory.mktemp("front-pki")
    revoked = pki.person("Rex Revoked")[0]
    crl = directory / "crl-bundle.pem"
    crl.write_bytes(make_crl(pki.ca, [revoked]).public_bytes(Encoding.PEM))
    # Apache's children (www-data) read the CA directory during each handshake, so it must be
    # readable by them, as /etc/grid-security/certificates is; pytest's own temp tree is not.
    public = Path(tempfile.mkdtemp(prefix="glint-test-certificates-"))
    public.chmod(0o755)
    ca_dir = CADirectory(public)
    ca_dir.add_ca(pki.ca, revoked=[revoked])
    for entry in public.iterdir():
        entry.chmod(0o644)
    yield {"ca_bundle": pki.ca_file, "crl_bundle": crl, "ca_dir": public}
    shutil.rmtree(public, ignore_errors=True)


@pytest.fixture(scope="module")
def lookalikes(pki, tmp_path_factory):
    """The look-alike subjects' certificates (tests/identity/lookalikes.py)."""
    return make_credentials(pki.ca, tmp_path_factory.mktemp("lookalikes"))


def _register(server, pki):
    for name in PEOPLE:
        server.add_user(name)
        pki.person(name)
    for dn, extra in REGISTER.values():
        result = run_glint(server.data_dir, "user", "add", "--dn", *dn, *extra)
        assert result.returncode == 0, result.stderr


@pytest.fixture(scope="module", params=["nginx", "apache"])
def front(request, pki, front_files, tmp_path_factory):
    """(front end, glint server) — each front end with its own Glint behind it."""
    directory = tmp_path_factory.mktemp(request.param)
    if request.param == "nginx":
        socket_path = directory / "glint.sock"
        glint = start_server(
            directory / "glint",
            "--behind-proxy",
            unix_socket=socket_path,
            GLINT_TRUSTED_PROXIES="unix",
        )
    else:
        glint = start_server(
            directory / "glint", "--behind-proxy", GLINT_TRUSTED_PROXIES="127.0.0.1"
        )
    try:
        _register(glint, pki)
        if request.param == "nginx":
            front_end = start_nginx(
                directory,
                server_file=pki.server_file,
                ca_bundle=front_files["ca_bundle"],
                crl_bundle=front_files["crl_bundle"],
                glint_socket=socket_path,
            )
        else:
            front_end = start_apache(
                directory,
                server_file=pki.server_file,
                ca_dir=front_files["ca_dir"],
                glint_port=glint.port,
            )
    except BaseException:
        glint.stop()  # a front end that fails to start must not leave its Glint behind
        raise
    yield front_end, glint
    front_end.stop()
    glint.stop()


def context_of(pki, name: str | None) -> ssl.SSLContext:
    return client_context(pki, pki.person(name)[2] if name else None)


def signed_in_as(response) -> str | None:
    status, body = response
    return json.loads(body)["dn"] if status == 200 else None


def spoofed_headers(pki, name: str) -> list[str]:
    """Every identity header, in both spellings, claiming to be ``name``."""
    dn = DN_PREFIX + name
    pem = quote(pki.person(name)[0].public_bytes(Encoding.PEM).decode())
    lines = []
    for prefix in ("X-SSL-Client-", "X_SSL_Client_"):
        sep = "-" if prefix.startswith("X-") else "_"
        lines += [f"{prefix}Verify: SUCCESS", f"{prefix}S{sep}DN: {dn}", f"{prefix}Cert: {pem}"]
    return lines


@pytest.mark.parametrize("name", ["Nina Proxied", "Jürgen Müller"], ids=["ascii", "non-ascii"])
def test_a_good_certificate_signs_in_with_its_dn(front, pki, name):
    """The non-ASCII DN arrives from Apache as raw UTF-8 and from nginx \\-escaped; both must match
    the certificate."""
    front_end, _glint = front
    assert signed_in_as(tls_http(front_end.port, context_of(pki, name), [])) == DN_PREFIX + name


def test_identity_headers_sent_by_the_client_never_reach_glint(front, pki):
    front_end, _glint = front
    response = tls_http(
        front_end.port, context_of(pki, "Nina Proxied"), spoofed_headers(pki, "Mallory Proxied")
    )
    assert signed_in_as(response) == DN_PREFIX + "Nina Proxied"


def test_without_a_certificate_spoofed_headers_get_nobody_in(front, pki):
    """The front end says verify=NONE whatever the client claimed; Glint needs exactly SUCCESS."""
    front_end, _glint = front
    status, body = tls_http(
        front_end.port, context_of(pki, None), spoofed_headers(pki, "Mallory Proxied")
    )
    assert status == 403, body
    assert "client certificate is required" in body


def test_a_revoked_certificate_does_not_get_in(front, pki):
    front_end, _glint = front
    try:
        status, _body = tls_http(front_end.port, context_of(pki, "Rex Revoked"), [])
    except (ssl.SSLError, ConnectionError):
        return  # refused at the handshake (Apache)
    assert status in (400, 403)  # nginx answers 400 "The SSL certificate error"


def test_glint_ignores_identity_headers_from_anyone_but_its_proxy(front, pki):
    front_end, glint = front
    if glint.unix_socket:  # behind nginx: only the socket's owner and group can connect at all
        assert stat.S_IMODE(os.stat(glint.unix_socket).st_mode) == 0o660
        return
    headers = [line for line in spoofed_headers(pki, "Mallory Proxied") if line.startswith("X-")]
    status, _body = raw_http(headers, port=glint.port, source="127.0.0.2")
    assert status == 403


@pytest.mark.parametrize("key", REGISTERED)
def test_behind_the_front_end_a_registered_certificate_is_itself(front, pki, lookalikes, key):
    front_end, _glint = front
    status, body = tls_http(front_end.port, client_context(pki, lookalikes[key][2]), [])
    assert status == 200, body
    me = json.loads(body)
    assert me["dn"] == CANONICAL[key] and me["is_admin"] == ("--admin" in REGISTER[key][1])


@pytest.mark.parametrize("key", LOOKALIKES)
def test_behind_the_front_end_a_lookalike_is_a_stranger_not_the_admin(front, pki, lookalikes, key):
    """nginx and Apache forward the look-alike's certificate and RFC 2253 DN: a new person,
    refused."""
    front_end, glint = front
    context = client_context(pki, lookalikes[key][2])
    status, body = tls_http(front_end.port, context, [])
    assert status == 403 and "an admin has not added you yet" in body, body
    assert tls_http(front_end.port, context, [], "/api/v1/users/")[0] == 403
    assert glint.query("SELECT dn FROM accounts_accessrequest WHERE dn = ?", CANONICAL[key]) == [
        (CANONICAL[key],)
    ]


@pytest.mark.parametrize("site", ["nginx", "apache"])
def test_the_readme_shows_the_tested_site_files(site):
    readme = (DEPLOY.parent / "README.md").read_text()
    assert (DEPLOY / site / "glint.conf").read_text().rstrip() in readme
