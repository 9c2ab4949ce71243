"""A repo whose endpoints are on refused addresses is refused with the reason, and nothing is ever
sent there: not the password to a refused Keystone, not a token to a refused image endpoint that
a real Keystone's catalog names.

The refused endpoint is a real listening socket on 127.0.0.2 (loopback; the tests' development
allowance covers 127.0.0.1 only), which records every connection.
"""

from __future__ import annotations

import html

import pytest

from devcloud.identity import KeystoneClient
from glint.inventory.poller import poll_repos
from glint.repos.models import Repo
from tests.clouds.listener import RecordingListener
from tests.repos.helpers import form_data, make_repo, post_json

pytestmark = pytest.mark.devcloud

REGION = "refused-glance"


@pytest.fixture
def listener():
    server = RecordingListener("127.0.0.2")
    yield server
    server.close()


@pytest.fixture
def refused_catalog(devcloud, listener):
    """Keystone-1's catalog names, for region ``REGION``, an image endpoint on the listener."""
    auth = devcloud.cloud_config("devcloud-1-admin")["auth"]
    admin = KeystoneClient(
        auth["auth_url"], auth["username"], auth["password"], auth["project_name"]
    )
    admin.create_region(REGION)
    glance = admin.find_id("services", "glance")
    endpoint = admin.request(
        "POST",
        "/endpoints",
        json={
            "endpoint": {
                "service_id": glance,
                "region_id": REGION,
                "interface": "public",
                "url": listener.url(),
                "enabled": True,
            }
        },
    )["endpoint"]["id"]
    yield listener
    admin.request("DELETE", f"/endpoints/{endpoint}")
    admin.request("DELETE", f"/regions/{REGION}")


def test_a_refused_auth_url_gets_400_and_never_the_password(
    devcloud, group_a, as_manager, listener
):
    data = form_data(
        devcloud.cloud_config("devcloud-1"), name="inside", auth_url=listener.url("/v3")
    )

    api = post_json(as_manager, "/api/v1/repos/", dict(data, group=group_a.pk))
    page = as_manager.post(f"/repos/add/?group={group_a.pk}", data)

    assert api.status_code == 400
    [reason] = api.json()["auth_url"]
    assert reason == (
        f"Glint does not connect to http://127.0.0.2:{listener.port}: 127.0.0.2 is a "
        f"loopback address (this machine), never allowed for a cloud endpoint"
    )
    assert page.status_code == 200 and reason in html.unescape(page.content.decode())
    assert listener.received == [], "nothing was sent there"
    assert not Repo.objects.exists()


def test_validating_a_stored_repo_on_a_refused_address_never_reaches_it(
    group_a, as_manager, listener
):
    """A repo stored before the policy (or before an admin narrowed it) is checked when it
    connects, not only when it was saved."""
    repo = make_repo(group_a, "stored", auth_url=listener.url("/v3"))

    result = as_manager.post(f"/api/v1/repos/{repo.pk}/validate/").json()

    assert (result["ok"], result["code"], result["field"]) == (
        False,
        "endpoint_refused",
        "auth_url",
    )
    assert "127.0.0.2 is a loopback address" in result["detail"]
    assert listener.received == []


def test_a_refused_image_endpoint_in_the_catalog_fails_the_check_and_the_poll(
    devcloud, group_a, as_manager, refused_catalog
):
    entry = devcloud.cloud_config("devcloud-1")
    api = post_json(
        as_manager,
        "/api/v1/repos/",
        dict(form_data(entry, name="catalog", region=REGION), group=group_a.pk),
    )

    assert api.status_code == 400
    [reason] = api.json()["interface"]
    endpoint = f"http://127.0.0.2:{refused_catalog.port}"
    assert f"names {endpoint} as the image endpoint for region '{REGION}'" in reason
    assert "127.0.0.2 is a loopback address (this machine), never allowed for a cloud" in reason
    assert not Repo.objects.exists()

    auth = entry["auth"]
    repo = make_repo(
        group_a,
        "catalog",
        auth_url=auth["auth_url"],
        username=auth["username"],
        password=auth["password"],
        project_name=auth["project_name"],
        region=REGION,
    )
    [result] = poll_repos([repo])
    assert not result.ok and "as the image endpoint" in result.error and "loopback" in result.error
    assert refused_catalog.received == [], "no token (nor anything else) went there"


def test_the_same_repo_with_its_own_region_is_saved(devcloud, group_a, as_manager, refused_catalog):
    """The control: the same Keystone and credentials with the region whose Glance is allowed."""
    data = form_data(devcloud.cloud_config("devcloud-1"), name="fine")
    assert post_json(as_manager, "/api/v1/repos/", dict(data, group=group_a.pk)).status_code == 201
