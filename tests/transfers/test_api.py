"""The uploads API without clouds: refusals, privacy, who may do what. Repos are database rows
only (no cloud is contacted), so these run fast."""

from __future__ import annotations

import json

import pytest

from glint.jobs.models import Job
from glint.transfers.models import Upload
from tests.clients import client_for, make_user
from tests.plans.helpers import add_repo
from tests.transfers.helpers import REFUSED

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(group_a, group_b):
    owner = make_user("Uploader", group=group_a)
    return {
        "group": group_a,
        "repo": add_repo(group_a, "one", "project-one"),
        "owner": owner,
        "client": client_for(owner),
        "other_repo": add_repo(group_b, "elsewhere", "project-b"),
    }


def create(client, group, **fields):
    return client.post(
        "/api/v1/uploads/",
        json.dumps({"group": group.pk, **fields}),
        content_type="application/json",
    )


@pytest.mark.parametrize("url", REFUSED + ["http://127.0.0.1:9/needs-the-allow-list"])
def test_a_refused_link_is_a_400_and_nothing_is_created(world, url, connects):
    response = create(world["client"], world["group"], url=url, name="refused", targets=["one"])
    assert response.status_code == 400, response.content
    assert not Upload.objects.exists() and not Job.objects.exists()
    assert connects == []


def test_credentials_in_a_link_are_never_shown(world, settings):
    settings.GLINT_FETCH_ALLOW_CIDRS = ["127.0.0.0/8"]
    response = create(
        world["client"],
        world["group"],
        url="http://bob:hunter2@127.0.0.1:9/disk.img",
        targets=["one"],
    )
    assert response.status_code == 201
    assert (
        response.json()["url"] == "http://127.0.0.1:9/disk.img"
        and response.json()["name"] == "disk.img"
    )
    for page in (
        response,
        world["client"].get("/api/v1/uploads/"),
        world["client"].get("/api/v1/audit/"),
    ):
        assert "hunter2" not in page.content.decode()
    assert "hunter2" not in Upload.objects.values_list("source_url", flat=True)[0].token


@pytest.mark.parametrize(
    "fields, reason",
    [
        ({"targets": ["elsewhere"]}, "No repo 'elsewhere'"),
        ({"targets": []}, "targets"),
        ({"targets": ["one"], "name": ""}, "Give the image a name"),
        ({"targets": ["one"], "disk_format": "floppy"}, "disk_format"),
        ({"targets": ["one"], "checksum": "sha256:1234"}, "64 hex digits"),
        ({"targets": ["one", "one"]}, "named twice"),
    ],
)
def test_bad_metadata_is_a_clear_400(world, fields, reason):
    response = create(world["client"], world["group"], **{"name": "x", **fields})
    assert response.status_code == 400 and reason in response.content.decode()


def test_only_the_uploader_sends_the_data_and_another_group_sees_nothing(world, group_b):
    upload = create(world["client"], world["group"], name="mine", targets=["one"]).json()
    teammate = client_for(make_user("Teammate", group=world["group"]))
    stranger = client_for(make_user("Stranger", group=group_b))

    assert teammate.get(f"/api/v1/uploads/{upload['id']}/").status_code == 200
    assert (
        teammate.put(
            upload["upload_url"], b"x", content_type="application/octet-stream"
        ).status_code
        == 403
    )
    assert stranger.get(f"/api/v1/uploads/{upload['id']}/").status_code == 404
    assert (
        stranger.put(
            upload["upload_url"], b"x", content_type="application/octet-stream"
        ).status_code
        == 404
    )
    assert Upload.objects.get(pk=upload["id"]).state == "waiting"


def test_an_upload_cancelled_before_its_data_is_over(world):
    upload = create(world["client"], world["group"], name="never", targets=["one"]).json()
    cancelled = world["client"].post(f"/api/v1/uploads/{upload['id']}/cancel/")
    assert cancelled.status_code == 202 and cancelled.json()["state"] == "cancelled"
    assert (
        world["client"]
        .put(upload["upload_url"], b"x", content_type="application/octet-stream")
        .status_code
        == 409
    )
    assert world["client"].post(f"/api/v1/uploads/{upload['id']}/cancel/").status_code == 409
