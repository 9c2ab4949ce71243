"""The audit trail: write-once records, who/what/where, the page and the API, and their scoping."""

from __future__ import annotations

import datetime as dt

import pytest

from glint import audit
from glint.audit.models import AuditRecord, WriteOnceError
from glint.repos.models import Repo
from glint.repos.services import RepoValidationError, delete_repo, save_repo
from tests.clients import client_for

pytestmark = pytest.mark.django_db


def test_records_cannot_be_changed_or_deleted(world):
    entry = audit.record("test.thing", user=world["admin"], group=world["alpha"])
    entry.action = "test.other"
    with pytest.raises(WriteOnceError):
        entry.save()
    with pytest.raises(WriteOnceError):
        entry.delete()
    with pytest.raises(WriteOnceError):
        AuditRecord.objects.filter(pk=entry.pk).update(action="x")
    with pytest.raises(WriteOnceError):
        AuditRecord.objects.all().delete()
    assert AuditRecord.objects.get(pk=entry.pk).action == "test.thing"


def test_deleting_a_person_keeps_their_records_and_dn(world):
    entry = audit.record("test.thing", user=world["member"])
    world["member"].delete()
    entry = AuditRecord.objects.get(pk=entry.pk)
    assert entry.user is None and entry.user_dn == "/C=CA/O=Glint Test Grid/CN=Mel Member"


def test_details_never_keep_secrets(world):
    entry = audit.record(
        "test.thing",
        details={
            "password": "hunter2",
            "nested": {"application_credential_secret": "s"},
            "name": "fine",
        },
    )
    assert entry.details == {
        "password": "[redacted]",
        "nested": {"application_credential_secret": "[redacted]"},
        "name": "fine",
    }


def test_repo_changes_are_audited_including_a_failed_add(world):
    repo = Repo(
        group=world["alpha"],
        name="closed-port",
        auth_url="https://127.0.0.1:9/v3",
        username="u",
        password="p",
        project_name="p",
        user_domain_name="Default",
        project_domain_name="Default",
    )
    with pytest.raises(RepoValidationError):
        save_repo(repo)
    failed = AuditRecord.objects.get(action="repo.add")
    assert (
        failed.outcome == "failed" and failed.group_name == "alpha" and "reason" in failed.details
    )
    assert "p" not in failed.details.values()
    saved = Repo.objects.create(
        group=world["alpha"], name="doomed", auth_url="https://127.0.0.1:9/v3"
    )
    saved_pk = saved.pk
    delete_repo(saved)
    deleted = AuditRecord.objects.get(action="repo.delete")
    assert (deleted.repo_name, deleted.repo_ref, deleted.group_ref) == (
        "doomed",
        saved_pk,
        world["alpha"].pk,
    )


def test_admins_see_every_record_managers_their_groups_members_none(world):
    audit.record("test.alpha", group=world["alpha"], user=world["manager"])
    audit.record("test.beta", group=world["beta"], user=world["other"])
    audit.record("test.global", user=world["admin"])
    everything = client_for(world["admin"]).get("/api/v1/audit/?action=test.").json()["results"]
    assert {r["action"] for r in everything} == {"test.alpha", "test.beta", "test.global"}
    mine = client_for(world["manager"]).get("/api/v1/audit/?action=test.").json()["results"]
    assert [r["action"] for r in mine] == ["test.alpha"]
    assert client_for(world["member"]).get("/api/v1/audit/").status_code == 403
    assert client_for(world["member"]).get("/audit/").status_code == 403
    page = client_for(world["manager"]).get("/audit/?action=test.").content.decode()
    assert "test.alpha" in page and "test.beta" not in page


def test_the_page_names_people_by_common_name_and_leaves_out_empty_details(world):
    AuditRecord.objects.create(
        action="test.named",
        outcome=audit.OK,
        user=world["manager"],
        user_dn=world["manager"].dn,
        details={"job": 3, "error": "", "url": ""},
        request_id="0123456789abcdef",
    )
    page = client_for(world["admin"]).get("/audit/?action=test.named").content.decode()
    dn = world["manager"].dn
    assert f'<td title="{dn}">{dn.rpartition("/CN=")[2]}</td>' in page
    assert "job: 3</td>" in page and "error:" not in page and "url:" not in page
    assert '<a href="?request_id=0123456789abcdef"' in page


def test_filters_by_action_user_group_outcome_and_date(world):
    audit.record("repo.add", group=world["alpha"], user=world["manager"])
    audit.record("repo.delete", group=world["beta"], user=world["other"], outcome=audit.REFUSED)
    api = client_for(world["admin"])

    def actions(query):
        response = api.get(f"/api/v1/audit/?{query}")
        assert response.status_code == 200, response.content
        return sorted(
            r["action"] for r in response.json()["results"] if r["action"].startswith("repo.")
        )

    assert actions("action=repo.add") == ["repo.add"]
    assert actions("action=repo.") == ["repo.add", "repo.delete"]
    assert actions("user=Otto") == ["repo.delete"]
    assert actions(f"group={world['alpha'].pk}") == ["repo.add"]
    assert actions("outcome=refused") == ["repo.delete"]
    today = dt.datetime.now(dt.UTC).date()
    assert actions(f"since={today}&until={today}") == ["repo.add", "repo.delete"]
    assert actions(f"until={today - dt.timedelta(days=1)}") == []
    assert api.get("/api/v1/audit/?since=yesterday").status_code == 400
    page = api.get(f"/audit/?action=repo.&group={world['beta'].pk}").content.decode()
    assert "repo.delete" in page and "repo.add" not in page


def test_the_audit_api_is_read_only(world):
    entry = audit.record("test.thing", user=world["admin"])
    api = client_for(world["admin"])
    assert api.get(f"/api/v1/audit/{entry.pk}/").json()["action"] == "test.thing"
    assert (
        api.post(
            "/api/v1/audit/", {"action": "forged"}, content_type="application/json"
        ).status_code
        == 405
    )
    assert (
        api.patch(
            f"/api/v1/audit/{entry.pk}/", {"action": "x"}, content_type="application/json"
        ).status_code
        == 405
    )
    assert api.delete(f"/api/v1/audit/{entry.pk}/").status_code == 405
