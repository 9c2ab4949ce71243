"""Who may see and change repos, on the pages and in the API (no cloud needed: nothing is saved)."""

import pytest

from glint.repos.models import Repo
from tests.clients import client_for
from tests.repos.helpers import make_repo, post_json

SECRET = "edit-form-secret-7f3a"


@pytest.fixture
def repo(group_a):
    return make_repo(group_a, password=SECRET)


def page_urls(repo):
    return [
        f"/repos/?group={repo.group_id}",
        f"/repos/{repo.pk}/edit/",
        f"/repos/{repo.pk}/delete/",
        f"/repos/add/?group={repo.group_id}",
        f"/repos/import/?group={repo.group_id}",
    ]


def test_member_sees_the_list_but_may_not_change(repo, member):
    client = client_for(member)
    page = client.get(f"/repos/?group={repo.group_id}")
    assert page.status_code == 200 and repo.name in page.content.decode()
    assert f"/repos/{repo.pk}/edit/" not in page.content.decode()
    for url in page_urls(repo)[1:]:
        assert client.get(url).status_code == 403, url
    for url in (
        f"/repos/{repo.pk}/validate/",
        f"/repos/{repo.pk}/delete/",
        f"/repos/{repo.pk}/edit/",
    ):
        assert client.post(url, {"name": "x"}).status_code == 403, url
    assert client.get(f"/api/v1/repos/{repo.pk}/").status_code == 200
    assert (
        post_json(
            client, f"/api/v1/repos/{repo.pk}/", {"name": "renamed"}, method="patch"
        ).status_code
        == 403
    )
    assert client.delete(f"/api/v1/repos/{repo.pk}/").status_code == 403
    assert client.post(f"/api/v1/repos/{repo.pk}/validate/").status_code == 403
    assert (
        post_json(client, "/api/v1/repos/", {"group": repo.group_id, "name": "new"}).status_code
        == 403
    )
    assert (
        post_json(
            client, "/api/v1/repos/import/", {"group": repo.group_id, "clouds_yaml": "clouds: {}"}
        ).status_code
        == 403
    )
    assert Repo.objects.get(pk=repo.pk).name == repo.name


def test_another_groups_member_gets_404_everywhere(repo, outsider):
    client = client_for(outsider)
    for url in page_urls(repo):
        assert client.get(url).status_code == 404, url
    for url in (
        f"/repos/{repo.pk}/validate/",
        f"/repos/{repo.pk}/delete/",
        f"/repos/{repo.pk}/edit/",
    ):
        assert client.post(url).status_code == 404, url
    assert client.get(f"/api/v1/repos/{repo.pk}/").status_code == 404
    assert client.get(f"/api/v1/repos/?group={repo.group_id}").status_code == 404
    assert client.get("/api/v1/repos/").json()["results"] == []
    assert client.delete(f"/api/v1/repos/{repo.pk}/").status_code == 404
    assert client.post(f"/api/v1/repos/{repo.pk}/validate/").status_code == 404
    assert (
        post_json(client, "/api/v1/repos/", {"group": repo.group_id, "name": "new"}).status_code
        == 404
    )
    assert (
        post_json(
            client, "/api/v1/repos/import/", {"group": repo.group_id, "clouds_yaml": "x"}
        ).status_code
        == 404
    )
    assert Repo.objects.filter(pk=repo.pk).exists()


def test_admin_may_change_any_group(repo, admin):
    client = client_for(admin)
    for url in page_urls(repo):
        assert client.get(url).status_code == 200, url
    assert client.post(f"/repos/{repo.pk}/delete/").status_code == 302
    assert not Repo.objects.filter(pk=repo.pk).exists()


def test_edit_form_never_contains_the_secret(repo, as_manager):
    page = as_manager.get(f"/repos/{repo.pk}/edit/").content.decode()
    assert SECRET not in page
    assert repo.password.token not in page
    assert "Leave empty to keep the stored one." in page
    assert 'name="csrfmiddlewaretoken"' in page


def test_api_shows_only_that_a_secret_is_set(repo, as_manager):
    body = as_manager.get(f"/api/v1/repos/{repo.pk}/").json()
    assert body["password_set"] is True and body["application_credential_secret_set"] is False
    assert "password" not in body and "application_credential_secret" not in body


def test_delete_confirmation_says_what_happens_first(repo, as_manager):
    page = as_manager.get(f"/repos/{repo.pk}/delete/").content.decode()
    assert "Nothing is deleted in the cloud project" in page
    assert 'name="csrfmiddlewaretoken"' in page
    assert Repo.objects.filter(pk=repo.pk).exists()
    assert as_manager.post(f"/repos/{repo.pk}/delete/").status_code == 302
    assert not Repo.objects.filter(pk=repo.pk).exists()


def test_forms_carry_csrf_and_are_enforced(repo, manager):
    client = client_for(manager)
    client.handler.enforce_csrf_checks = True
    assert client.post(f"/repos/{repo.pk}/delete/").status_code == 403
    assert Repo.objects.filter(pk=repo.pk).exists()


def test_shared_project_marker_names_only_visible_groups(
    group_a, group_b, manager, outsider, admin
):
    mine = make_repo(group_a, name="mine")
    theirs = make_repo(group_b, name="theirs")
    for repo in (mine, theirs):
        repo.set_cloud_project("project-123")
        repo.save()
    page = client_for(manager).get(f"/repos/?group={group_a.pk}").content.decode()
    assert "also used by another group" in page and "beta" not in page
    body = client_for(manager).get(f"/api/v1/repos/?group={group_a.pk}").json()
    assert body["results"][0]["shared_with"] == ["another group"]
    admin_view = client_for(admin).get(f"/api/v1/repos/{mine.pk}/").json()
    assert admin_view["shared_with"] == ["beta"]
