"""The accounts API: the same rules as the pages, because both call glint.accounts.services."""

from __future__ import annotations

import pytest

from glint.accounts.models import AccessRequest, Group, Membership, User
from glint.audit.models import AuditRecord
from tests.clients import client_for

pytestmark = pytest.mark.django_db
DN = "/C=CA/O=Glint Test Grid/CN="


def test_admin_manages_people_through_the_api(world):
    api = client_for(world["admin"])
    created = api.post(
        "/api/v1/users/",
        {"dn": "CN=Api Person,O=Glint Test Grid,C=CA"},
        content_type="application/json",
    )
    assert created.status_code == 201 and created.json()["dn"] == DN + "Api Person"
    assert (
        api.post(
            "/api/v1/users/", {"dn": DN + "Api Person"}, content_type="application/json"
        ).status_code
        == 400
    )
    assert (
        api.post("/api/v1/users/", {"dn": "garbage"}, content_type="application/json").status_code
        == 400
    )
    pk = created.json()["id"]
    patched = api.patch(
        f"/api/v1/users/{pk}/",
        {"is_admin": True, "dn": "/CN=ignored"},
        content_type="application/json",
    )
    assert (
        patched.status_code == 200
        and patched.json()["is_admin"]
        and patched.json()["dn"] == DN + "Api Person"
    )
    assert api.delete(f"/api/v1/users/{pk}/").status_code == 204


@pytest.mark.parametrize("who", ["manager", "member", "other"])
def test_nobody_but_admins_touches_people_or_the_admin_flag(world, who):
    api = client_for(world[who])
    me = world[who]
    assert api.get("/api/v1/users/").status_code == 403
    assert (
        api.patch(
            f"/api/v1/users/{me.pk}/", {"is_admin": True}, content_type="application/json"
        ).status_code
        == 403
    )
    assert (
        api.post(
            "/api/v1/users/", {"dn": DN + "Sneaky"}, content_type="application/json"
        ).status_code
        == 403
    )
    assert (
        not User.objects.get(pk=me.pk).is_admin
        and not User.objects.filter(dn=DN + "Sneaky").exists()
    )


def test_admins_cannot_change_their_own_flags_either(world):
    admin = world["admin"]
    response = client_for(admin).patch(
        f"/api/v1/users/{admin.pk}/", {"is_admin": False}, content_type="application/json"
    )
    assert response.status_code == 403
    assert User.objects.get(pk=admin.pk).is_admin


def test_manager_adds_and_promotes_members_of_their_group_not_others(world):
    api = client_for(world["manager"])
    body = {"group": world["alpha"].pk, "dn": DN + "Api Newcomer", "role": "member"}
    created = api.post("/api/v1/memberships/", body, content_type="application/json")
    assert created.status_code == 201, created.content
    promoted = api.post(
        f"/api/v1/memberships/{created.json()['id']}/role/",
        {"role": "manager"},
        content_type="application/json",
    )
    assert promoted.status_code == 200 and promoted.json()["role"] == "manager"
    other = Membership.objects.get(group=world["beta"])
    assert (
        api.post(
            f"/api/v1/memberships/{other.pk}/role/",
            {"role": "member"},
            content_type="application/json",
        ).status_code
        == 404
    )
    assert (
        api.post(
            "/api/v1/memberships/",
            {**body, "group": world["beta"].pk},
            content_type="application/json",
        ).status_code
        == 400
    )
    assert not Membership.objects.filter(group=world["beta"], user__dn=DN + "Api Newcomer").exists()


def test_a_member_cannot_raise_their_own_role_through_the_api(world):
    member = world["member"]
    api = client_for(member)
    own = Membership.objects.get(user=member)
    assert (
        api.post(
            f"/api/v1/memberships/{own.pk}/role/",
            {"role": "manager"},
            content_type="application/json",
        ).status_code
        == 403
    )
    body = {"group": world["alpha"].pk, "dn": member.dn, "role": "manager"}
    assert (
        api.post("/api/v1/memberships/", body, content_type="application/json").status_code == 403
    )
    assert api.delete(f"/api/v1/memberships/{own.pk}/").status_code == 403
    assert Membership.objects.get(pk=own.pk).role == "member"


def test_groups_are_added_renamed_and_deleted_by_admins_only(world):
    admin, member = client_for(world["admin"]), client_for(world["member"])
    assert (
        member.post(
            "/api/v1/groups/", {"name": "nope"}, content_type="application/json"
        ).status_code
        == 403
    )
    assert (
        member.patch(
            f"/api/v1/groups/{world['alpha'].pk}/", {"name": "x"}, content_type="application/json"
        ).status_code
        == 403
    )
    created = admin.post("/api/v1/groups/", {"name": "gamma"}, content_type="application/json")
    assert created.status_code == 201
    pk = created.json()["id"]
    assert (
        admin.patch(
            f"/api/v1/groups/{pk}/", {"name": "delta"}, content_type="application/json"
        ).json()["name"]
        == "delta"
    )
    assert admin.delete(f"/api/v1/groups/{pk}/").status_code == 204
    assert set(Group.objects.values_list("name", flat=True)) == {"alpha", "beta"}


def test_access_requests_are_approved_or_dismissed_by_admins(world):
    waiting = AccessRequest.objects.create(
        dn=DN + "Api Waiting", issuer_dn="/C=CA/O=Glint Test Grid/CN=Glint Test CA"
    )
    gone = AccessRequest.objects.create(dn=DN + "Api Gone")
    assert client_for(world["manager"]).get("/api/v1/access-requests/").status_code == 403
    api = client_for(world["admin"])
    assert {r["dn"] for r in api.get("/api/v1/access-requests/").json()["results"]} == {
        waiting.dn,
        gone.dn,
    }
    approved = api.post(
        f"/api/v1/access-requests/{waiting.pk}/approve/",
        {"group": world["beta"].pk},
        content_type="application/json",
    )
    assert approved.status_code == 201 and approved.json()["groups"] == [
        {"id": world["beta"].pk, "name": "beta", "role": "member"}
    ]
    assert api.delete(f"/api/v1/access-requests/{gone.pk}/").status_code == 204
    assert not AccessRequest.objects.exists()
    assert list(
        AuditRecord.objects.filter(action__startswith="access.").values_list("action", flat=True)
    ) == ["access.dismiss", "access.approve"]
