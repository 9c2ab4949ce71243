"""Every way a DN enters Glint reads it the same way: one key per RDN sequence, ambiguity refused,
one length limit (``glint.accounts.dn.MAX_DN_LENGTH``).

The API and the pages add people and memberships by DN; a certificate leaves an access request; an
uploaded certificate file names a person. (``glint user add`` is in
tests/accounts/test_user_add_cli.py, the TLS and proxy sign-ins in test_lookalike_dns.py.)
"""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from django.core.files.uploadedfile import SimpleUploadedFile

from glint.accounts.dn import MAX_DN_LENGTH
from glint.accounts.models import AccessRequest, Membership, User
from tests import clients
from tests.clients import CertificateClient, client_for
from tests.identity.lookalikes import CANONICAL, SUBJECTS, name
from tests.pki import make_user_cert

pytestmark = pytest.mark.django_db
JSON = "application/json"


def long_dn(length: int) -> str:
    head = "/C=CA/O=Glint Test Grid/CN="
    return head + "x" * (length - len(head))


def test_the_api_adds_lookalikes_as_two_people(world):
    api = client_for(world["admin"])
    four = api.post(
        "/api/v1/users/", {"dn": "CN=Sec Admin,OU=Admins,O=Glint Test Grid,C=CA"}, content_type=JSON
    )
    three = api.post(
        "/api/v1/users/", {"dn": "CN=Sec Admin,O=Glint Test Grid/OU=Admins,C=CA"}, content_type=JSON
    )
    assert four.status_code == 201 and three.status_code == 201, (four.content, three.content)
    assert (four.json()["dn"], three.json()["dn"]) == (
        CANONICAL["admin"],
        CANONICAL["admin-lookalike"],
    )
    assert three.json()["display_dn"] == "CN=Sec Admin,O=Glint Test Grid/OU=Admins,C=CA"
    again = api.post(
        "/api/v1/users/",
        {"dn": "/C=CA/O=Glint Test Grid\\/OU=Admins/CN=Sec Admin"},
        content_type=JSON,
    )
    assert again.status_code == 400 and "already a Glint user" in again.json()["detail"]


@pytest.mark.parametrize("path", ["/api/v1/users/", "/api/v1/memberships/"])
def test_the_api_refuses_an_ambiguous_dn_with_what_to_write(world, path):
    api = client_for(world["admin"])
    body = {"dn": "/C=CA/O=Glint Test Grid/CN=host/x=1", "group": world["alpha"].pk}
    response = api.post(path, body, content_type=JSON)
    assert response.status_code == 400
    assert (
        "is ambiguous" in response.content.decode() and "write '\\\\/'" in response.content.decode()
    )
    assert not User.objects.filter(dn__contains="host").exists()


@pytest.mark.parametrize("path", ["/api/v1/users/", "/api/v1/memberships/"])
def test_the_api_takes_a_dn_up_to_the_limit_and_refuses_a_longer_one(world, path):
    """Memberships took 25 KB DNs before: now both paths stop at the one limit."""
    api = client_for(world["admin"])
    attempts = (
        (long_dn(MAX_DN_LENGTH + 1), 400),
        ("/C=CA/CN=" + "x" * 25_000, 400),
        (long_dn(MAX_DN_LENGTH), 201),
    )
    for dn, status in attempts:
        response = api.post(path, {"dn": dn, "group": world["alpha"].pk}, content_type=JSON)
        assert response.status_code == status, response.content[:300]
        if status == 400:
            assert "at most 1,024" in response.content.decode()
    assert User.objects.filter(dn=long_dn(MAX_DN_LENGTH)).exists()
    assert not User.objects.filter(dn__startswith=long_dn(MAX_DN_LENGTH + 1)).exists()


def test_a_manager_adds_a_member_by_an_openssl_subj_string(world):
    api = client_for(world["manager"])
    body = {"group": world["alpha"].pk, "dn": "/C=CA/O=Glint Test Grid/CN=Doe\\, John\\+UID=jd"}
    response = api.post("/api/v1/memberships/", body, content_type=JSON)
    assert response.status_code == 201, response.content
    assert Membership.objects.filter(
        group=world["alpha"], user__dn=CANONICAL["multi-lookalike"]
    ).exists()
    assert not User.objects.filter(dn=CANONICAL["multi"]).exists()


@pytest.mark.parametrize("page", ["users", "group"])
def test_the_pages_refuse_ambiguous_and_too_long_dns(world, page):
    client = client_for(world["admin"])
    path = "/accounts/users/" if page == "users" else f"/accounts/groups/{world['alpha'].pk}/"
    before = User.objects.count()
    for dn, message in (
        ("/C=CA/CN=a+foo=b", "is ambiguous"),
        (long_dn(MAX_DN_LENGTH + 1), "at most 1,024"),
    ):
        response = client.post(path, {"dn": dn, "role": "member"})
        assert response.status_code == 200 and message in response.content.decode()
    assert User.objects.count() == before
    response = client.post(
        path, {"dn": "CN=Sec Admin,O=Glint Test Grid/OU=Admins,C=CA", "role": "member"}
    )
    assert response.status_code == 302
    assert User.objects.filter(dn=CANONICAL["admin-lookalike"]).exists()


def test_an_uploaded_lookalike_certificate_names_the_lookalike(world):
    cert, _ = make_user_cert(clients.test_ca(), "", subject=SUBJECTS["admin-lookalike"])
    upload = SimpleUploadedFile("cert.pem", cert.public_bytes(Encoding.PEM))
    assert (
        client_for(world["admin"]).post("/accounts/users/", {"certificate": upload}).status_code
        == 302
    )
    assert User.objects.filter(dn=CANONICAL["admin-lookalike"]).exists()


def test_a_certificate_with_a_subject_over_the_limit_is_refused_everywhere(world):
    subject = name(
        [(NameOID.COUNTRY_NAME, "CA")], *[[(NameOID.ORGANIZATIONAL_UNIT_NAME, "u" * 60)]] * 20
    )
    cert, _ = make_user_cert(clients.test_ca(), "", subject=subject)
    response = CertificateClient(cert).get("/api/v1/whoami/")
    assert response.status_code == 403
    assert not AccessRequest.objects.exists()  # access requests and users have the same limit
    upload = SimpleUploadedFile("cert.pem", cert.public_bytes(Encoding.PEM))
    page = client_for(world["admin"]).post("/accounts/users/", {"certificate": upload})
    assert page.status_code == 200 and "at most 1,024" in page.content.decode()


def test_a_lookalike_certificate_leaves_an_access_request_under_its_own_dn(world):
    cert, _ = make_user_cert(clients.test_ca(), "", subject=SUBJECTS["multi-lookalike"])
    assert CertificateClient(cert).get("/api/v1/whoami/").status_code == 403
    assert list(AccessRequest.objects.values_list("dn", flat=True)) == [
        CANONICAL["multi-lookalike"]
    ]
    response = client_for(world["admin"]).get("/api/v1/access-requests/")
    assert [r["dn"] for r in response.json()["results"]] == [CANONICAL["multi-lookalike"]]
