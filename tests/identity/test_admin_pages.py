"""Admin and manager pages: people, groups, members, access requests, My account."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from django.core.files.uploadedfile import SimpleUploadedFile

from glint.accounts.models import AccessRequest, Group, Membership, User
from glint.audit.models import AuditRecord
from glint.repos.models import Repo
from tests.clients import CertificateClient, certificate_for, client_for
from tests.pki import make_proxy_cert

pytestmark = pytest.mark.django_db
DN = "/C=CA/O=Glint Test Grid/CN="


def test_admin_adds_a_person_by_pasted_rfc4514_dn(world):
    response = client_for(world["admin"]).post(
        "/accounts/users/", {"dn": "CN=Pat Pasted,O=Glint Test Grid,C=CA"}
    )
    assert response.status_code == 302
    assert User.objects.filter(dn=DN + "Pat Pasted").exists()
    assert AuditRecord.objects.filter(action="user.add", user=world["admin"]).exists()


def test_admin_adds_a_person_from_an_uploaded_proxy_certificate(world):
    """A proxy file names its user: the DN filled in is the end-entity certificate's."""
    cert, key = certificate_for("Uli Upload")
    proxy, _ = make_proxy_cert(cert, key)
    pem = proxy.public_bytes(Encoding.PEM) + cert.public_bytes(Encoding.PEM)
    upload = SimpleUploadedFile("x509up.pem", pem, content_type="application/x-pem-file")
    response = client_for(world["admin"]).post(
        "/accounts/users/", {"dn": "", "certificate": upload}
    )
    assert response.status_code == 302
    assert User.objects.filter(dn=DN + "Uli Upload").exists()


def test_a_garbage_upload_or_dn_is_a_clear_form_error(world):
    client = client_for(world["admin"])
    upload = SimpleUploadedFile("cert.pem", b"not a certificate")
    assert (
        "not a PEM certificate"
        in client.post("/accounts/users/", {"certificate": upload}).content.decode()
    )
    assert client.post("/accounts/users/", {"dn": "no equals sign"}).status_code == 200
    assert client.post("/accounts/users/", {"dn": ""}).status_code == 200
    assert User.objects.count() == 4


def test_admin_deactivates_and_deletes_someone_else_but_not_themselves(world):
    admin, member = world["admin"], world["member"]
    client = client_for(admin)
    assert client.post(f"/accounts/users/{member.pk}/", {"is_active": ""}).status_code == 302
    member.refresh_from_db()
    assert not member.is_active
    assert (
        client.post(f"/accounts/users/{admin.pk}/", {"is_admin": "", "is_active": ""}).status_code
        == 403
    )
    admin.refresh_from_db()
    assert admin.is_admin and admin.is_active
    assert client.post(f"/accounts/users/{member.pk}/delete/").status_code == 302
    assert not User.objects.filter(pk=member.pk).exists()
    assert AuditRecord.objects.filter(action="user.delete", details__dn=member.dn).exists()


@pytest.mark.parametrize("who", ["manager", "member", "other"])
def test_only_admins_reach_the_people_and_request_pages(world, who):
    client = client_for(world[who])
    for url in (
        "/accounts/users/",
        f"/accounts/users/{world['member'].pk}/",
        "/accounts/requests/",
    ):
        assert client.get(url).status_code == 403
    assert (
        client.post(
            f"/accounts/users/{world[who].pk}/", {"is_admin": "on", "is_active": "on"}
        ).status_code
        == 403
    )
    assert not User.objects.get(pk=world[who].pk).is_admin


def test_group_delete_confirmation_shows_what_goes_with_it(world):
    Repo.objects.create(
        group=world["alpha"], name="alpha-cloud", auth_url="https://keystone.invalid/v3"
    )
    client = client_for(world["admin"])
    page = client.get(f"/accounts/groups/{world['alpha'].pk}/delete/").content.decode()
    assert "alpha-cloud" in page
    assert "2 memberships" in page
    assert client.post(f"/accounts/groups/{world['alpha'].pk}/delete/").status_code == 302
    assert not Group.objects.filter(name="alpha").exists() and not Repo.objects.exists()
    record = AuditRecord.objects.get(action="group.delete")
    assert record.group_name == "alpha" and record.group_ref == world["alpha"].pk


def test_admin_adds_and_renames_a_group_and_names_stay_unique(world):
    client = client_for(world["admin"])
    assert client.post("/accounts/groups/", {"name": "gamma"}).status_code == 302
    gamma = Group.objects.get(name="gamma")
    assert client.post(f"/accounts/groups/{gamma.pk}/edit/", {"name": "delta"}).status_code == 302
    assert (
        "already exists"
        in client.post(f"/accounts/groups/{gamma.pk}/edit/", {"name": "beta"}).content.decode()
    )
    assert Group.objects.filter(name="delta").exists()
    assert (
        client_for(world["manager"]).post("/accounts/groups/", {"name": "mine"}).status_code == 403
    )


def test_manager_manages_members_of_their_own_group_only(world):
    alpha, beta, member = world["alpha"], world["beta"], world["member"]
    client = client_for(world["manager"])
    assert (
        client.post(
            f"/accounts/groups/{alpha.pk}/", {"dn": DN + "Newt New", "role": "member"}
        ).status_code
        == 302
    )
    assert Membership.objects.filter(group=alpha, user__dn=DN + "Newt New").exists()
    membership = Membership.objects.get(group=alpha, user=member)
    assert (
        client.post(f"/accounts/memberships/{membership.pk}/role/", {"role": "manager"}).status_code
        == 302
    )
    assert Membership.objects.get(pk=membership.pk).role == "manager"
    assert client.get(f"/accounts/groups/{beta.pk}/").status_code == 404
    other = Membership.objects.get(group=beta)
    assert client.post(f"/accounts/memberships/{other.pk}/remove/").status_code == 404
    assert client.get(f"/accounts/groups/{alpha.pk}/delete/").status_code == 403


def test_nobody_raises_their_own_role(world):
    member = world["member"]
    own = Membership.objects.get(user=member)
    client = client_for(member)
    assert (
        client.post(f"/accounts/memberships/{own.pk}/role/", {"role": "manager"}).status_code == 403
    )
    assert (
        client.post(
            f"/accounts/groups/{world['alpha'].pk}/", {"dn": member.dn, "role": "manager"}
        ).status_code
        == 403
    )
    manager = world["manager"]
    mine = Membership.objects.get(user=manager)
    assert client_for(manager).post(f"/accounts/memberships/{mine.pk}/remove/").status_code == 403
    assert Membership.objects.get(pk=own.pk).role == "member"
    assert AuditRecord.objects.filter(outcome="refused", user=member).count() == 2


def test_unknown_certificate_request_is_approved_into_a_group_with_one_click(world):
    cert, _ = certificate_for("Quinn Queue")
    stranger = CertificateClient(cert)
    page = stranger.get("/images/")
    assert page.status_code == 403 and DN + "Quinn Queue" in page.content.decode()
    request = AccessRequest.objects.get(dn=DN + "Quinn Queue")
    assert AuditRecord.objects.filter(action="access.request", user_dn=request.dn).count() == 1
    stranger.get("/images/")  # a second visit is not a new sign-in
    assert AuditRecord.objects.filter(action="access.request").count() == 1
    admin = client_for(world["admin"])
    assert DN + "Quinn Queue" in admin.get("/accounts/requests/").content.decode()
    response = admin.post(
        f"/accounts/requests/{request.pk}/approve/", {"group": world["beta"].pk, "role": "member"}
    )
    assert response.status_code == 302
    assert stranger.get("/api/v1/whoami/").json()["groups"][0]["name"] == "beta"
    assert not AccessRequest.objects.exists()


def test_admin_dismisses_a_request(world):
    request = AccessRequest.objects.create(dn=DN + "Dee Dismissed")
    assert (
        client_for(world["manager"]).post(f"/accounts/requests/{request.pk}/dismiss/").status_code
        == 403
    )
    assert (
        client_for(world["admin"]).post(f"/accounts/requests/{request.pk}/dismiss/").status_code
        == 302
    )
    assert not AccessRequest.objects.exists()


def test_my_account_shows_dn_groups_roles_and_cli_sign_in(world):
    client = client_for(world["manager"])
    page = client.get("/accounts/me/").content.decode()
    assert world["manager"].dn in page and "alpha" in page and "Manager" in page
    assert "glint login --url" in page
    assert client.post("/accounts/me/", {"default_group": world["alpha"].pk}).status_code == 302
    assert User.objects.get(pk=world["manager"].pk).default_group == world["alpha"]
    assert (
        client.post("/accounts/me/", {"default_group": world["beta"].pk}).status_code == 200
    )  # not theirs
    assert User.objects.get(pk=world["manager"].pk).default_group == world["alpha"]
