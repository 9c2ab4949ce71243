"""Revocation with an IGTF-style CA directory (``<hash>.0`` + ``<hash>.r0``), as fetch-crl keeps
it."""

from __future__ import annotations

import json
import subprocess
import time

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from tests.live import client_context, https_get, start_server, tls_refusal
from tests.pki import make_crl, make_proxy_cert, write_chain_pem

RELOAD_SECONDS = 1
ALERT_WAIT_SECONDS = 2


def write_crl(ca_dir, ca_hash, pki, revoked) -> None:
    """Replace the CRL the way fetch-crl does: write a new file, rename it over the old one."""
    staging = ca_dir / f"{ca_hash}.r0.new"
    staging.write_bytes(make_crl(pki.ca, revoked).public_bytes(Encoding.PEM))
    staging.rename(ca_dir / f"{ca_hash}.r0")


@pytest.fixture(scope="module")
def ca_setup(pki, tmp_path_factory):
    ca_dir = tmp_path_factory.mktemp("certificates")
    ca_hash = subprocess.run(
        ["openssl", "x509", "-hash", "-noout", "-in", str(pki.ca_file)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    (ca_dir / f"{ca_hash}.0").write_bytes(pki.ca_file.read_bytes())
    revoked_cert, _key, _ = pki.person("Rex Revoked")
    write_crl(ca_dir, ca_hash, pki, [revoked_cert])
    return ca_dir, ca_hash


@pytest.fixture(scope="module")
def server(pki, ca_setup, tmp_path_factory):
    ca_dir, _ = ca_setup
    running = start_server(
        tmp_path_factory.mktemp("crl"),
        "--cert",
        str(pki.server_file),
        "--key",
        str(pki.server_file),
        "--client-ca-dir",
        str(ca_dir),
        "--ca-reload-seconds",
        str(RELOAD_SECONDS),
    )
    yield running
    running.stop()


def refusal(port, context) -> str:
    return tls_refusal(port, context, ALERT_WAIT_SECONDS)


def test_start_line_says_crls_are_checked(server):
    assert "CRLs checked for the whole chain" in server.log()


def test_revoked_user_and_their_proxy_are_refused_others_are_not(server, pki, tmp_path):
    dn = server.add_user("Grace Good")
    _cert, _key, good = pki.person("Grace Good")
    revoked_cert, revoked_key, revoked = pki.person("Rex Revoked")
    proxy, proxy_key = make_proxy_cert(revoked_cert, revoked_key)
    proxy_file = write_chain_pem(tmp_path / "x509up", [proxy, revoked_cert], proxy_key)

    assert refusal(server.port, client_context(pki, revoked)) == "SSLV3_ALERT_CERTIFICATE_REVOKED"
    # With CRL checks on the leaf only, this proxy would get in (research/x509.md §2.4).
    assert (
        refusal(server.port, client_context(pki, proxy_file)) == "SSLV3_ALERT_CERTIFICATE_REVOKED"
    )
    status, body = https_get(server.port, "/api/v1/whoami/", client_context(pki, good))
    assert (status, json.loads(body)["dn"]) == (200, dn)


def test_a_new_crl_takes_effect_without_a_restart(server, pki, ca_setup):
    ca_dir, ca_hash = ca_setup
    late_cert, _key, late = pki.person("Larry Late")
    assert refusal(server.port, client_context(pki, late)) == ""
    write_crl(ca_dir, ca_hash, pki, [pki.person("Rex Revoked")[0], late_cert])
    deadline = time.monotonic() + 10 * RELOAD_SECONDS
    while refusal(server.port, client_context(pki, late)) == "" and time.monotonic() < deadline:
        time.sleep(0.2)
    assert refusal(server.port, client_context(pki, late)) == "SSLV3_ALERT_CERTIFICATE_REVOKED"
