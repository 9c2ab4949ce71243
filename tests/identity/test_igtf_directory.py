"""Direct TLS against an IGTF-style CA directory, as ``/etc/grid-security/certificates`` is laid
out.

The directory holds a root CA, an intermediate CA and a second intermediate that the root has
revoked, each as ``<subject hash>.0`` with its CRL as ``<hash>.r0`` (names computed by
``openssl x509 -hash``, as ``openssl rehash`` and the IGTF bundle name them). The real
``glint serve`` verifies every person's chain against it, CRLs included along the whole chain, and
rebuilds its TLS context every second so a replaced CRL takes effect without a restart.

This module also runs under Python 3.13 (``test_python313.py``), where ``VERIFY_X509_STRICT`` is on
by default and would refuse proxies without an Authority Key Identifier.
"""

from __future__ import annotations

import json
import time

import pytest

from tests.live import DN_PREFIX, client_context, https_get, start_server, tls_refusal
from tests.pki import (
    CADirectory,
    make_ca,
    make_proxy_cert,
    make_user_cert,
    write_chain_pem,
)

RELOAD_SECONDS = 1
REVOKED = "SSLV3_ALERT_CERTIFICATE_REVOKED"


@pytest.fixture(scope="module")
def grid(pki, tmp_path_factory):
    """The CAs, the people, and the CA directory; the session PKI's CA is the root."""
    files = tmp_path_factory.mktemp("igtf-people")
    intermediate = make_ca("Glint Test Intermediate CA", parent=pki.ca)
    bad_intermediate = make_ca("Glint Revoked Intermediate CA", parent=pki.ca)
    people = {}

    def person(name, ca, **options):
        cert, key = make_user_cert(ca, name, **options)
        chain = [cert] + ([ca.cert] if ca is not pki.ca else [])
        people[name] = (
            cert,
            key,
            write_chain_pem(files / f"{name.replace(' ', '_')}.pem", chain, key),
        )
        return people[name]

    person("Iris Intermediate", intermediate)
    person("Rose Root", pki.ca)
    person("Roy Revoked", intermediate)
    person("Larry Late", intermediate)
    person("Ulla Under", bad_intermediate)
    person("Eddie Expired", intermediate, expired=True)
    ca_dir = CADirectory(tmp_path_factory.mktemp("certificates"))
    ca_dir.add_ca(pki.ca, revoked=[bad_intermediate.cert])
    ca_dir.add_ca(intermediate, revoked=[people["Roy Revoked"][0]])
    ca_dir.add_ca(bad_intermediate)
    return {"intermediate": intermediate, "people": people, "ca_dir": ca_dir, "files": files}


@pytest.fixture(scope="module")
def server(pki, grid, tmp_path_factory):
    running = start_server(
        tmp_path_factory.mktemp("igtf"),
        "--cert",
        str(pki.server_file),
        "--key",
        str(pki.server_file),
        "--client-ca-dir",
        str(grid["ca_dir"].path),
        "--ca-reload-seconds",
        str(RELOAD_SECONDS),
    )
    for name in (
        "Iris Intermediate",
        "Rose Root",
        "Roy Revoked",
        "Larry Late",
        "Ulla Under",
        "Eddie Expired",
    ):
        running.add_user(name)  # registered, so only TLS verification can keep the bad ones out
    yield running
    running.stop()


def proxy_file(grid, name, *, depth=1, akid=True):
    """A proxy (``depth`` 2: a proxy of a proxy) of ``name``, as a credential file with its
    chain."""
    cert, key, _ = grid["people"][name]
    chain = [cert] + (
        [grid["intermediate"].cert] if cert.issuer == grid["intermediate"].cert.subject else []
    )
    for _ in range(depth):
        proxy, key = make_proxy_cert(chain[0], key, akid=akid)
        chain.insert(0, proxy)
    suffix = f"{name.replace(' ', '_')}-{depth}-{akid}"
    return write_chain_pem(grid["files"] / f"x509up_{suffix}", chain, key)


def signed_in_as(server, pki, credential) -> str:
    status, body = https_get(server.port, "/api/v1/whoami/", client_context(pki, credential))
    assert status == 200, body
    return json.loads(body)["dn"]


def test_start_line_names_the_directory_and_crl_checks(server, grid):
    assert f"directory {grid['ca_dir'].path}" in server.log()
    assert "CRLs checked for the whole chain" in server.log()


def test_people_of_the_root_and_of_the_intermediate_ca_sign_in(server, pki, grid):
    for name in ("Iris Intermediate", "Rose Root"):
        assert signed_in_as(server, pki, grid["people"][name][2]) == DN_PREFIX + name


@pytest.mark.parametrize("depth", [1, 2], ids=["proxy", "proxy-of-proxy"])
def test_rfc3820_proxies_sign_in_as_their_user(server, pki, grid, depth):
    assert (
        signed_in_as(server, pki, proxy_file(grid, "Iris Intermediate", depth=depth))
        == DN_PREFIX + "Iris Intermediate"
    )


def test_a_proxy_without_authority_key_identifier_signs_in(server, pki, grid):
    """Strict X.509 checks (Python 3.13's default) would refuse it; real proxy tools make such
    proxies."""
    credential = proxy_file(grid, "Iris Intermediate", akid=False)
    assert signed_in_as(server, pki, credential) == DN_PREFIX + "Iris Intermediate"


@pytest.mark.parametrize("depth", [0, 1, 2], ids=["user", "proxy", "proxy-of-proxy"])
def test_a_revoked_user_and_their_proxies_are_refused_at_the_handshake(server, pki, grid, depth):
    credential = (
        grid["people"]["Roy Revoked"][2]
        if depth == 0
        else proxy_file(grid, "Roy Revoked", depth=depth)
    )
    assert tls_refusal(server.port, client_context(pki, credential)) == REVOKED


def test_a_person_under_a_revoked_intermediate_is_refused(server, pki, grid):
    """The root's CRL revokes the intermediate: only a check of the whole chain catches that."""
    assert tls_refusal(server.port, client_context(pki, grid["people"]["Ulla Under"][2])) == REVOKED


def test_an_expired_certificate_is_refused(server, pki, grid):
    refusal = tls_refusal(server.port, client_context(pki, grid["people"]["Eddie Expired"][2]))
    assert refusal == "SSLV3_ALERT_CERTIFICATE_EXPIRED"


def test_a_certificate_from_an_untrusted_ca_is_refused(server, pki, grid, tmp_path):
    stranger = make_ca("Glint Test Intermediate CA")  # same name as a trusted CA, other key
    cert, key = make_user_cert(stranger, "Iris Intermediate")
    credential = write_chain_pem(tmp_path / "stranger.pem", [cert, stranger.cert], key)
    assert tls_refusal(server.port, client_context(pki, credential)) != ""


def test_replacing_a_crl_on_disk_revokes_without_a_restart(server, pki, grid):
    late = grid["people"]["Larry Late"]
    assert signed_in_as(server, pki, late[2]) == DN_PREFIX + "Larry Late"
    grid["ca_dir"].publish_crl(grid["intermediate"], [grid["people"]["Roy Revoked"][0], late[0]])
    deadline = time.monotonic() + 10 * RELOAD_SECONDS
    while (
        tls_refusal(server.port, client_context(pki, late[2])) == "" and time.monotonic() < deadline
    ):
        time.sleep(0.2)
    assert tls_refusal(server.port, client_context(pki, late[2])) == REVOKED
    assert server.process.poll() is None  # the same process, never restarted
    assert (
        signed_in_as(server, pki, grid["people"]["Iris Intermediate"][2])
        == DN_PREFIX + "Iris Intermediate"
    )
