"""Adding and editing a repo checks it against a real cloud (devcloud) and says exactly why it
fails."""

import html
import socket

import pytest

from glint.repos.models import Repo, normalize_auth_url
from tests.pki import make_ca
from tests.repos.helpers import form_data, make_repo, post_json

pytestmark = pytest.mark.devcloud


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # nothing listens once the socket is closed


def add_page(client, group, data):
    return client.post(f"/repos/add/?group={group.pk}", data)


def test_right_credentials_are_saved(devcloud, group_a, as_manager):
    response = add_page(
        as_manager, group_a, form_data(devcloud.cloud_config("devcloud-1"), name="one")
    )
    assert response.status_code == 302, response.content.decode()
    repo = Repo.objects.get(name="one")
    endpoint, project_id = repo.cloud_project.split("#")
    assert endpoint == normalize_auth_url(repo.auth_url) and project_id
    assert repo.password_set


def test_wrong_password_is_refused_with_the_reason(devcloud, group_a, as_manager):
    data = form_data(devcloud.cloud_config("devcloud-1"), name="one", password="wrong-password")
    page = add_page(as_manager, group_a, data)
    assert page.status_code == 200
    assert not Repo.objects.exists()
    text = html.unescape(page.content.decode())
    assert "authentication" in text.lower() or "credentials" in text.lower(), text
    assert "wrong-password" not in text

    api = post_json(as_manager, "/api/v1/repos/", dict(data, group=group_a.pk))
    assert api.status_code == 400
    [reason] = api.json()["non_field_errors"]
    assert reason in text  # the page and the API give the same reason


def test_closed_port_names_the_endpoint(devcloud, group_a, as_manager):
    url = f"http://127.0.0.1:{closed_port()}/v3"
    data = form_data(devcloud.cloud_config("devcloud-1"), name="one", auth_url=url)
    api = post_json(as_manager, "/api/v1/repos/", dict(data, group=group_a.pk))
    assert api.status_code == 400
    [reason] = api.json()["auth_url"]
    assert f"127.0.0.1:{url.split(':')[2].split('/')[0]}" in reason
    assert not Repo.objects.exists()


def test_wrong_ca_is_refused_on_the_ca_field(devcloud_tls, group_a, as_manager):
    other_ca = make_ca("Not The Devcloud CA").pem().decode()
    data = form_data(devcloud_tls.cloud_config("devcloud-1"), name="tls", ca_bundle=other_ca)
    page = add_page(as_manager, group_a, data)
    assert page.status_code == 200 and not Repo.objects.exists()
    api = post_json(as_manager, "/api/v1/repos/", dict(data, group=group_a.pk))
    assert api.status_code == 400
    [reason] = api.json()["ca_bundle"]
    assert "certificate" in reason.lower(), reason
    assert reason in html.unescape(page.content.decode())

    right = dict(data, ca_bundle=devcloud_tls.ca_file.read_text())
    assert post_json(as_manager, "/api/v1/repos/", dict(right, group=group_a.pk)).status_code == 201


def test_not_pem_ca_bundle_is_refused_before_any_connection(devcloud, group_a, as_manager):
    data = form_data(devcloud.cloud_config("devcloud-1"), name="one", ca_bundle="just some text")
    api = post_json(as_manager, "/api/v1/repos/", dict(data, group=group_a.pk))
    assert api.status_code == 400 and "PEM" in api.json()["ca_bundle"][0]


def test_application_credential_variant(devcloud, group_a, as_manager):
    data = form_data(devcloud.cloud_config("devcloud-1-appcred"), name="appcred")
    api = post_json(as_manager, "/api/v1/repos/", dict(data, group=group_a.pk))
    assert api.status_code == 201, api.json()
    body = api.json()
    assert (
        body["auth_type"] == "application_credential" and body["application_credential_secret_set"]
    )
    assert not body["password_set"]

    wrong = dict(data, name="appcred-2", application_credential_secret="nope")
    assert post_json(as_manager, "/api/v1/repos/", dict(wrong, group=group_a.pk)).status_code == 400


def test_edit_keeps_the_stored_secret_and_revalidates(devcloud, group_a, as_manager):
    entry = devcloud.cloud_config("devcloud-1")
    assert add_page(as_manager, group_a, form_data(entry, name="one")).status_code == 302
    repo = Repo.objects.get(name="one")
    token = repo.password.token
    response = as_manager.post(
        f"/repos/{repo.pk}/edit/", form_data(entry, name="one", password="", site="lab")
    )
    assert response.status_code == 302, response.content.decode()
    repo.refresh_from_db()
    assert repo.site == "lab" and repo.password.token == token

    refused = as_manager.post(
        f"/repos/{repo.pk}/edit/", form_data(entry, name="one", password="wrong")
    )
    assert refused.status_code == 200
    repo.refresh_from_db()
    assert repo.password.token == token


def test_validate_button_and_action(devcloud, group_a, as_manager):
    good = make_repo(
        group_a,
        name="good",
        **{
            k: v
            for k, v in form_data(devcloud.cloud_config("devcloud-1"), name="good").items()
            if k
            in (
                "auth_url",
                "region",
                "username",
                "password",
                "project_name",
                "project_domain_name",
                "user_domain_name",
            )
        },
    )
    bad = make_repo(group_a, name="bad", auth_url=f"http://127.0.0.1:{closed_port()}/v3")

    assert as_manager.post(f"/api/v1/repos/{good.pk}/validate/").json()["ok"] is True
    result = as_manager.post(f"/api/v1/repos/{bad.pk}/validate/").json()
    assert (
        result["ok"] is False
        and result["code"] == "endpoint_unreachable"
        and result["field"] == "auth_url"
    )

    page = as_manager.post(f"/repos/{bad.pk}/validate/", follow=True).content.decode()
    assert "does not work" in page and "127.0.0.1" in page
