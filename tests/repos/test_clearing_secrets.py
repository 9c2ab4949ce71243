"""An EC2 repo's session token can be removed, on the page and through the API, and the removal
is audited; a blank secret still keeps the stored one. Against devcloud's EC2 peer."""

from __future__ import annotations

import html

import pytest

from glint.audit.models import AuditRecord
from glint.repos.models import Repo
from tests.repos.helpers import post_json
from tests.repos.test_ec2_repos import SESSION_TOKEN, assert_no_secret, ec2_fields

pytestmark = pytest.mark.devcloud

REMOVE_BOX = 'name="clear_session_token"'


@pytest.fixture(scope="module")
def peer(devcloud_ec2):
    return devcloud_ec2.ec2_peer


@pytest.fixture
def repo(peer, group_a, as_manager):
    """An EC2 repo of group A with a stored session token."""
    data = ec2_fields(peer, group=group_a.pk, session_token=SESSION_TOKEN)
    created = post_json(as_manager, "/api/v1/repos/", data)
    assert created.status_code == 201, created.content
    return Repo.objects.get(pk=created.json()["id"])


def _last_edit(repo: Repo) -> AuditRecord:
    return AuditRecord.objects.filter(action="repo.edit", repo_ref=repo.pk).latest("pk")


def test_api_null_removes_the_session_token_and_blank_keeps_it(repo, peer, as_manager):
    url = f"/api/v1/repos/{repo.pk}/"
    kept = post_json(as_manager, url, {"session_token": ""}, method="patch")
    assert kept.status_code == 200, kept.content
    assert kept.json()["session_token_set"] is True
    assert "removed" not in _last_edit(repo).details

    removed = post_json(as_manager, url, {"session_token": None}, method="patch")
    assert removed.status_code == 200, removed.content
    assert removed.json()["session_token_set"] is False
    repo.refresh_from_db()
    assert not repo.session_token and repo.connection().session_token is None
    assert repo.secret_access_key_set  # only the token went
    edit = _last_edit(repo)
    assert edit.details["removed"] == ["session_token"] and "Alpha Manager" in edit.user_dn
    assert_no_secret(str(edit.details), peer)

    again = post_json(as_manager, url, {"session_token": None}, method="patch")
    assert again.status_code == 200 and "removed" not in _last_edit(repo).details  # nothing was


def test_api_refuses_null_for_a_secret_the_repo_needs(repo, as_manager):
    refused = post_json(
        as_manager, f"/api/v1/repos/{repo.pk}/", {"secret_access_key": None}, method="patch"
    )
    assert refused.status_code == 400
    assert "secret_access_key" in refused.json()
    repo.refresh_from_db()
    assert repo.secret_access_key_set


def test_a_member_cannot_remove_it(repo, member):
    from tests.clients import client_for

    refused = post_json(
        client_for(member), f"/api/v1/repos/{repo.pk}/", {"session_token": None}, method="patch"
    )
    assert refused.status_code == 403
    repo.refresh_from_db()
    assert repo.session_token_set


def test_page_removes_the_session_token_with_its_box(repo, peer, as_manager):
    page = as_manager.get(f"/repos/{repo.pk}/edit/").content.decode()
    assert REMOVE_BOX in page and "Remove the stored session token" in page
    assert_no_secret(page, peer)
    form = dict(ec2_fields(peer), secret_access_key="", session_token="")

    both = as_manager.post(
        f"/repos/{repo.pk}/edit/", dict(form, session_token="new", clear_session_token="on")
    )
    assert both.status_code == 200
    assert "or remove the stored one, not both" in html.unescape(both.content.decode())
    repo.refresh_from_db()
    assert repo.session_token_set

    saved = as_manager.post(f"/repos/{repo.pk}/edit/", dict(form, clear_session_token="on"))
    assert saved.status_code == 302, html.unescape(saved.content.decode())
    repo.refresh_from_db()
    assert not repo.session_token_set and repo.secret_access_key_set
    assert _last_edit(repo).details["removed"] == ["session_token"]
    # Nothing left to remove: no box.
    assert REMOVE_BOX not in as_manager.get(f"/repos/{repo.pk}/edit/").content.decode()


def test_page_blank_token_keeps_it(repo, peer, as_manager):
    form = dict(ec2_fields(peer), secret_access_key="", session_token="")
    saved = as_manager.post(f"/repos/{repo.pk}/edit/", form)
    assert saved.status_code == 302, html.unescape(saved.content.decode())
    repo.refresh_from_db()
    assert repo.session_token_set and "removed" not in _last_edit(repo).details
