"""``glint user add --dn`` (the real command): OpenSSL ``-subj`` escaping, RFC 4514, and refusals.

A DN given with ``-subj`` escaping must name the very certificate ``openssl req -subj`` makes of
the same string, and an ambiguous or too long DN ends the command with a message and nothing added.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from glint.accounts.dn import MAX_DN_LENGTH, canonical_from_name
from tests.identity.lookalikes import CANONICAL
from tests.live import run_glint


@pytest.fixture(scope="module")
def migrated(tmp_path_factory):
    template = tmp_path_factory.mktemp("migrated")
    result = run_glint(template, "migrate")
    assert result.returncode == 0, result.stderr
    return template


@pytest.fixture
def data_dir(migrated, tmp_path):
    return Path(shutil.copytree(migrated, tmp_path / "data"))


def users(data_dir) -> list[tuple]:
    with sqlite3.connect(data_dir / "glint.sqlite3") as db:
        return db.execute("SELECT dn, is_admin FROM accounts_user ORDER BY id").fetchall()


def openssl_subject_of(subj: str, tmp_path) -> str:
    """The canonical DN of the certificate ``openssl req -subj SUBJ`` makes."""
    key = tmp_path / "key.pem"
    if not key.exists():
        key.write_bytes(
            ec.generate_private_key(ec.SECP256R1()).private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    pem = subprocess.run(
        ["openssl", "req", "-new", "-x509", "-key", str(key), "-days", "1", "-utf8", "-subj", subj],
        capture_output=True,
        check=True,
    ).stdout
    return canonical_from_name(x509.load_pem_x509_certificate(pem).subject)


@pytest.mark.parametrize(
    ("dn", "expected"),
    [
        ("/C=CA/O=Glint Test Grid/OU=Admins/CN=Sec Admin", CANONICAL["admin"]),
        ("/C=CA/O=Glint Test Grid\\/OU=Admins/CN=Sec Admin", CANONICAL["admin-lookalike"]),
        ("/C=CA/O=Glint Test Grid/CN=Doe\\, John+UID=jd", CANONICAL["multi"]),
        ("/C=CA/O=Glint Test Grid/CN=Doe\\, John\\+UID=jd", CANONICAL["multi-lookalike"]),
        ("/C=CA/O=Glint Test Grid/CN=host\\/node.example.org", CANONICAL["host"]),
    ],
)
def test_openssl_subj_strings_name_the_certificate_openssl_makes(data_dir, tmp_path, dn, expected):
    assert openssl_subject_of(dn, tmp_path) == expected
    result = run_glint(data_dir, "user", "add", "--dn", dn, "--admin")
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"added {expected} (admin)\n"
    assert users(data_dir) == [(expected, 1)]


def test_lookalikes_added_one_after_the_other_are_two_people(data_dir):
    for dn in (
        "/C=CA/O=Glint Test Grid/OU=Admins/CN=Sec Admin",
        "CN=Sec Admin,O=Glint Test Grid/OU=Admins,C=CA",
        "/C=CA/O=Glint Test Grid/OU=Admins/CN=Sec Admin",
    ):
        assert run_glint(data_dir, "user", "add", "--dn", dn).returncode == 0
    assert users(data_dir) == [(CANONICAL["admin"], 0), (CANONICAL["admin-lookalike"], 0)]


def test_a_slash_in_a_host_cn_needs_no_escape(data_dir):
    result = run_glint(
        data_dir, "user", "add", "--dn", "/C=CA/O=Glint Test Grid/CN=host/node.example.org"
    )
    assert result.returncode == 0, result.stderr
    assert users(data_dir) == [(CANONICAL["host"], 0)]


@pytest.mark.parametrize(
    ("dn", "message"),
    [
        (
            "/C=CA/O=Glint Test Grid/CN=host/x=1",
            "is ambiguous: '/x=' may start a new RDN or belong to the CN value",
        ),
        ("/C=CA/CN=Doe + UID=jd", "is ambiguous"),
        ("C = CA, O = Glint Test Grid, CN = Jane", "OpenSSL's one-line output"),
        ("CN=Jane;O=Grid;C=CA", "';' separates RDNs in RFC 2253"),
        ("/C=CA/CN=" + "x" * MAX_DN_LENGTH, "Glint accepts at most 1,024"),
    ],
)
def test_an_ambiguous_or_too_long_dn_is_refused_and_nothing_is_added(data_dir, dn, message):
    result = run_glint(data_dir, "user", "add", "--dn", dn, "--admin")
    assert result.returncode != 0
    assert message in result.stderr and "Traceback" not in result.stderr
    assert users(data_dir) == []


def test_the_help_names_the_escaping(data_dir):
    result = run_glint(data_dir, "user", "add", "--help")
    assert "slash form with OpenSSL -subj escaping" in " ".join(result.stdout.split())
