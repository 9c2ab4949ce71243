"""Names and properties with control characters, bidirectional overrides or lone surrogates are
refused at every entry point: the API (400), the pages (a form error), the command line (its
message and a non-zero exit). No cloud is contacted: every refusal comes before."""

from __future__ import annotations

import json

import pytest

from glint import validators
from glint.accounts.models import Group
from glint.jobs.matrix import group_matrix
from glint.repos.models import Repo
from glint.transfers.models import Upload
from tests.clients import client_for, make_user
from tests.live import run_glint
from tests.plans.helpers import add_image, add_repo

UNSAFE = {
    "line feed": "ubuntu\nforged",
    "carriage return": "ubuntu\rforged",
    "escape": "\x1b[2Jubuntu",
    "NUL": "a\x00b",
    "DEL": "a\x7fb",
    "C1 NEL": "a\x85b",
    "C1 CSI": "a\x9b2J",
    "RLO": "\u202egpj.exe",
    "LRE": "a\u202ab",
    "PDF": "a\u202cb",
    "LRI": "a\u2066b",
    "PDI": "a\u2069b",
    "lone surrogate": "a\ud800b",
}


@pytest.mark.parametrize("text", UNSAFE.values(), ids=UNSAFE.keys())
def test_the_validator_names_the_character_but_never_repeats_it(text):
    problem = validators.text_problem(text)
    bad = next(c for c in text if validators.unsafe_kind(c))
    assert f"(U+{ord(bad):04X}) at character {text.index(bad) + 1}" in problem
    assert bad not in problem


@pytest.mark.parametrize("text", ["ubuntu-24.04", "Ubuntu 24.04 LTS (ω) ✓ 😀", "a\u200fb", "Ü-é"])
def test_ordinary_text_passes(text):
    assert validators.text_problem(text) is None


@pytest.fixture
def world(group_a):
    manager = make_user("Text Manager", group=group_a, role="manager")
    admin = make_user("Text Admin", admin=True)
    add_repo(group_a, "one", "project-one")
    return {"manager": client_for(manager), "admin": client_for(admin)}


def post(client, path, body, method="post"):
    return getattr(client, method)(path, json.dumps(body), content_type="application/json")


@pytest.mark.django_db
@pytest.mark.parametrize("text", UNSAFE.values(), ids=UNSAFE.keys())
def test_the_api_refuses_unsafe_text_with_a_400(world, group_a, text):
    upload = {"group": group_a.pk, "targets": ["one"], "name": "fine"}
    refused = [
        post(world["manager"], "/api/v1/uploads/", {**upload, "name": text}),
        post(world["manager"], "/api/v1/uploads/", {**upload, "properties": {text: "x"}}),
        post(world["manager"], "/api/v1/uploads/", {**upload, "properties": {"os_distro": text}}),
        post(world["admin"], "/api/v1/groups/", {"name": text}),
        post(world["admin"], f"/api/v1/groups/{group_a.pk}/", {"name": text}, method="patch"),
        post(
            world["manager"],
            "/api/v1/repos/",
            {
                "group": group_a.pk,
                "name": text,
                "auth_url": "https://keystone.example.invalid/v3",
                "username": "u",
                "password": "p",
                "project_name": "p",
            },
        ),
    ]
    for response in refused:
        assert response.status_code == 400, (response.request["PATH_INFO"], response.content)
        reason = response.content.decode()
        # NUL: DRF's own refusal comes first
        assert "U+" in reason or "Null characters are not allowed" in reason, reason
    assert not Upload.objects.exists()
    assert list(Group.objects.values_list("name", flat=True)) == ["alpha"]
    assert list(Repo.objects.values_list("name", flat=True)) == ["one"]


@pytest.mark.django_db
@pytest.mark.parametrize("text", ["renamed\r\nforged", "renamed\u2066", "renamed\ud800"])
def test_a_rename_to_unsafe_text_is_refused_before_the_cloud_is_asked(world, group_a, text):
    repo = Repo.objects.get(name="one")
    first = add_image(repo, "twin", b"one content")
    add_image(repo, "twin", b"other content")  # same name, other bytes: a conflict
    conflict = next(c for c in group_matrix(group_a).conflicts if c.subject == "twin")
    response = post(
        world["manager"],
        f"/api/v1/conflicts/{group_a.pk}-{conflict.key}/rename/",
        {"image": first.image_id, "name": text},
    )
    assert response.status_code == 400 and "U+" in response.content.decode(), response.content


@pytest.mark.django_db
def test_the_pages_show_a_form_error(world, group_a):
    page = world["admin"].post("/accounts/groups/", {"name": "physics\u202e", "description": ""})
    assert page.status_code == 200
    assert "bidirectional control character (U+202E)" in page.content.decode()
    page = world["manager"].post(
        f"/repos/add/?group={group_a.pk}",
        {
            "name": "two\r\nthree",
            "kind": "openstack",
            "auth_url": "https://keystone.example.invalid/v3",
            "interface": "public",
            "auth_type": "password",
            "username": "u",
            "password": "p",
            "project_name": "p",
        },
    )
    assert page.status_code == 200 and "control character (U+000D)" in page.content.decode()
    assert list(Group.objects.values_list("name", flat=True)) == ["alpha"]
    assert list(Repo.objects.values_list("name", flat=True)) == ["one"]


def test_the_command_line_refuses_a_group_name_with_a_control_character(tmp_path):
    assert run_glint(tmp_path, "migrate").returncode == 0
    result = run_glint(tmp_path, "group", "add", "physics\x1b[2J")
    assert result.returncode != 0
    assert "control character (U+001B)" in result.stderr and "\x1b" not in result.stderr
