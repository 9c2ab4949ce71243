"""Pairs of certificate subjects that old Glint took for one person (issue 12, item 1).

Each pair differs as a sequence of RDNs, but old Glint wrote both as the same slash string,
because it did not escape ``/`` or ``+`` inside a value:

- ``admin``: ``C=CA, O=Glint Test Grid, OU=Admins, CN=Sec Admin`` (four RDNs), and its look-alike
  ``C=CA, O="Glint Test Grid/OU=Admins", CN=Sec Admin`` (three);
- ``multi``: a multi-valued last RDN ``CN=Doe, John + UID=jd``, and a single CN
  ``Doe, John+UID=jd``;
- ``host``: a grid host certificate ``CN=host/node.example.org``; its look-alike is two CNs,
  ``CN=host`` then ``CN=node.example.org`` (old Glint told these apart already; they must stay
  apart).

The first of each pair is registered (the first two as admins); the look-alike never is.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from tests.pki import make_user_cert, write_pem

ORG = "Glint Test Grid"


def name(*rdns: list[tuple]) -> x509.Name:
    return x509.Name(
        [
            x509.RelativeDistinguishedName([x509.NameAttribute(oid, value) for oid, value in rdn])
            for rdn in rdns
        ]
    )


_C, _O = [(NameOID.COUNTRY_NAME, "CA")], [(NameOID.ORGANIZATION_NAME, ORG)]

SUBJECTS = {
    "admin": name(
        _C, _O, [(NameOID.ORGANIZATIONAL_UNIT_NAME, "Admins")], [(NameOID.COMMON_NAME, "Sec Admin")]
    ),
    "admin-lookalike": name(
        _C, [(NameOID.ORGANIZATION_NAME, ORG + "/OU=Admins")], [(NameOID.COMMON_NAME, "Sec Admin")]
    ),
    "multi": name(_C, _O, [(NameOID.COMMON_NAME, "Doe, John"), (NameOID.USER_ID, "jd")]),
    "multi-lookalike": name(_C, _O, [(NameOID.COMMON_NAME, "Doe, John+UID=jd")]),
    "host": name(_C, _O, [(NameOID.COMMON_NAME, "host/node.example.org")]),
    "host-lookalike": name(
        _C, _O, [(NameOID.COMMON_NAME, "host")], [(NameOID.COMMON_NAME, "node.example.org")]
    ),
}

# The canonical DN of each subject: what Glint stores, and what whoami answers.
CANONICAL = {
    "admin": f"/C=CA/O={ORG}/OU=Admins/CN=Sec Admin",
    "admin-lookalike": f"/C=CA/O={ORG}\\/OU=Admins/CN=Sec Admin",
    "multi": f"/C=CA/O={ORG}/CN=Doe, John+UID=jd",
    "multi-lookalike": f"/C=CA/O={ORG}/CN=Doe, John\\+UID=jd",
    "host": f"/C=CA/O={ORG}/CN=host\\/node.example.org",
    "host-lookalike": f"/C=CA/O={ORG}/CN=host/CN=node.example.org",
}

# How an operator registers the first of each pair with `glint user add --dn`: the plain slash
# form, with OpenSSL -subj escaping where the value needs it.
REGISTER = {
    "admin": ([f"/C=CA/O={ORG}/OU=Admins/CN=Sec Admin"], ["--admin"]),
    "multi": ([f"/C=CA/O={ORG}/CN=Doe\\, John+UID=jd"], ["--admin"]),
    "host": ([f"/C=CA/O={ORG}/CN=host/node.example.org"], []),
}
REGISTERED = tuple(REGISTER)
LOOKALIKES = tuple(f"{key}-lookalike" for key in REGISTERED)


def make_credentials(ca, directory: Path) -> dict[str, tuple[x509.Certificate, object, Path]]:
    """(certificate, key, PEM file with both) of every subject, issued by ``ca``."""
    credentials = {}
    for key, subject in SUBJECTS.items():
        cert, private_key = make_user_cert(ca, "", subject=subject)
        credentials[key] = (
            cert,
            private_key,
            write_pem(directory / f"{key}.pem", cert, private_key),
        )
    return credentials


def openssl_subject(cert: x509.Certificate, nameopt: str) -> str:
    """The subject as ``openssl x509 -nameopt NAMEOPT`` prints it (nginx and Apache use the same
    code)."""
    result = subprocess.run(
        ["openssl", "x509", "-noout", "-subject", "-nameopt", nameopt],
        input=cert.public_bytes(Encoding.PEM),
        capture_output=True,
        check=True,
    )
    return result.stdout.decode().strip().removeprefix("subject=")
