"""EC2 repos (one AWS account + region) added through the API, the page and ``glint repo
import``, against devcloud's EC2 peer; their secrets never come back; a poll puts their AMIs in
the group's matrix."""

from __future__ import annotations

import hashlib
import html
import uuid

import pytest
import requests
from click.testing import CliRunner
from django.db import connection

from glint.cli.main import cli
from glint.inventory.poller import poll_repos
from glint.jobs.matrix import forget_cached_matrices, group_matrix
from glint.matrix.rows import CellState
from glint.repos.drivers import open_driver
from glint.repos.models import Repo, normalize_auth_url
from tests.repos.helpers import make_repo, post_json
from tests.repos.test_validation import closed_port

pytestmark = pytest.mark.devcloud

SESSION_TOKEN = "session-token-canary"


@pytest.fixture(scope="module")
def peer(devcloud_ec2):
    return devcloud_ec2.ec2_peer


def ec2_fields(peer, name="aws", **changes) -> dict:
    keys = peer.users["glint"]
    fields = {
        "name": name,
        "kind": "ec2",
        "region": peer.region,
        "access_key_id": keys.access_key_id,
        "secret_access_key": keys.secret_access_key,
        "endpoint_url": peer.endpoint_url,
    }
    fields.update(changes)
    return fields


def stored_columns(repo: Repo) -> str:
    """What the database holds for the repo, every column as text."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM repos_repo WHERE id = %s", [repo.pk])
        return " ".join(str(value) for value in cursor.fetchone())


def assert_no_secret(text: str, peer) -> None:
    assert peer.users["glint"].secret_access_key not in text
    assert SESSION_TOKEN not in text


def test_api_adds_an_ec2_repo_and_never_returns_its_secrets(peer, group_a, as_manager):
    data = ec2_fields(peer, group=group_a.pk, session_token=SESSION_TOKEN)
    created = post_json(as_manager, "/api/v1/repos/", data)
    assert created.status_code == 201, created.content
    body = created.json()
    assert_no_secret(created.content.decode(), peer)
    assert body["secret_access_key_set"] and body["session_token_set"]
    assert "auth_url" not in body and "password_set" not in body  # the EC2 record only
    repo = Repo.objects.get(pk=body["id"])
    assert repo.cloud_project == (
        f"ec2:{peer.region}@{normalize_auth_url(peer.endpoint_url)}#{peer.account_id}"
    )
    assert_no_secret(stored_columns(repo), peer)  # encrypted at rest
    assert repo.connection().secret_access_key == peer.users["glint"].secret_access_key

    listed = as_manager.get(f"/api/v1/repos/?group={group_a.pk}")
    assert_no_secret(listed.content.decode(), peer)
    checked = as_manager.post(f"/api/v1/repos/{repo.pk}/validate/")
    assert checked.json() == {"ok": True, "project_id": peer.account_id, "project_name": None}

    # An edit without the secret keeps it; the kind stays.
    edited = post_json(
        as_manager,
        f"/api/v1/repos/{repo.pk}/",
        {"role_arn": peer.role_arn, "kind": "openstack"},
        method="patch",
    )
    assert edited.status_code == 200, edited.content
    repo.refresh_from_db()
    assert repo.kind == "ec2" and repo.role_arn == peer.role_arn and repo.secret_access_key_set
    assert as_manager.delete(f"/api/v1/repos/{repo.pk}/").status_code == 204


def test_another_kinds_fields_are_refused_by_name(group_a, as_manager):
    ec2 = {
        "group": group_a.pk,
        "name": "mixed",
        "kind": "ec2",
        "region": "eu-west-1",
        "access_key_id": "AKIAEXAMPLE",
        "secret_access_key": "secret",
        "auth_url": "https://keystone.example/v3",
    }
    refused = post_json(as_manager, "/api/v1/repos/", ec2)
    assert refused.status_code == 400
    assert "for OpenStack repos" in refused.json()["auth_url"][0]

    openstack = {
        "group": group_a.pk,
        "name": "mixed",
        "auth_url": "https://keystone.example/v3",
        "username": "u",
        "password": "p",
        "project_name": "p",
        "access_key_id": "AKIAEXAMPLE",
    }
    refused = post_json(as_manager, "/api/v1/repos/", openstack)
    assert refused.status_code == 400
    assert "for Amazon EC2 repos" in refused.json()["access_key_id"][0]

    incomplete = post_json(
        as_manager, "/api/v1/repos/", {"group": group_a.pk, "name": "x", "kind": "ec2"}
    )
    assert incomplete.status_code == 400
    assert set(incomplete.json()) == {"region", "access_key_id", "secret_access_key"}
    assert not Repo.objects.exists()


def test_a_refused_key_or_endpoint_is_a_400_with_the_reason(peer, group_a, as_manager):
    unreachable = f"http://127.0.0.1:{closed_port()}"
    refused = post_json(
        as_manager, "/api/v1/repos/", ec2_fields(peer, group=group_a.pk, endpoint_url=unreachable)
    )
    assert refused.status_code == 400
    assert unreachable in refused.json()["endpoint_url"][0]
    for address, why in (("169.254.169.254", "metadata"), ("127.0.0.2", "loopback")):
        refused = post_json(
            as_manager,
            "/api/v1/repos/",
            ec2_fields(peer, group=group_a.pk, endpoint_url=f"http://{address}/"),
        )
        assert refused.status_code == 400 and why in refused.json()["endpoint_url"][0]

    # The peer checks keys only with moto's IAM checks on (devcloud/ec2.py): on for this test.
    reset_auth = f"{peer.endpoint_url}/moto-api/reset-auth"
    requests.post(reset_auth, data="0", timeout=10).raise_for_status()
    try:
        wrong = ec2_fields(peer, group=group_a.pk, secret_access_key="wrong-secret-canary")
        refused = post_json(as_manager, "/api/v1/repos/", wrong)
        right = post_json(as_manager, "/api/v1/repos/", ec2_fields(peer, group=group_a.pk))
    finally:
        requests.post(reset_auth, data="inf", timeout=10).raise_for_status()
    assert refused.status_code == 400
    [reason] = refused.json()["non_field_errors"]
    assert "check the key id and secret" in reason and "wrong-secret-canary" not in reason
    assert right.status_code == 201, right.content


def test_page_adds_and_edits_an_ec2_repo(peer, group_a, as_manager):
    form = as_manager.get(f"/repos/add/?group={group_a.pk}&kind=ec2").content.decode()
    assert 'name="secret_access_key"' in form and 'name="endpoint_url"' in form
    assert 'name="auth_url"' not in form and 'name="password"' not in form

    added = as_manager.post(f"/repos/add/?group={group_a.pk}&kind=ec2", ec2_fields(peer))
    assert added.status_code == 302, html.unescape(added.content.decode())
    repo = Repo.objects.get(name="aws")
    assert repo.kind == "ec2" and repo.secret_access_key_set

    listing = as_manager.get(f"/repos/?group={group_a.pk}").content.decode()
    assert f"account {peer.account_id}" in listing
    edit = as_manager.get(f"/repos/{repo.pk}/edit/").content.decode()
    assert_no_secret(edit, peer)
    assert "Leave empty to keep the stored one." in edit
    validated = as_manager.post(f"/repos/{repo.pk}/validate/", follow=True)
    assert f"works: account {peer.account_id}" in html.unescape(validated.content.decode())

    wrong_region = dict(ec2_fields(peer), region="not a region", secret_access_key="")
    page = as_manager.post(f"/repos/{repo.pk}/edit/", wrong_region)
    assert page.status_code == 200 and "needs its region" in page.content.decode()
    assert as_manager.get(f"/repos/add/?group={group_a.pk}&kind=gce").status_code == 400


def test_cli_imports_by_flags_and_from_a_profile(peer, group_a, tmp_path, monkeypatch):
    keys = peer.users["glint"]
    runner = CliRunner()
    by_flags = runner.invoke(
        cli,
        [
            "repo",
            "import",
            "--group",
            "alpha",
            "--name",
            "flags",
            "--region",
            peer.region,
            "--access-key-id",
            keys.access_key_id,
            "--endpoint-url",
            peer.endpoint_url,
        ],
        env={"AWS_SECRET_ACCESS_KEY": keys.secret_access_key},
    )
    assert by_flags.exit_code == 0, by_flags.output
    assert "flags: added" in by_flags.output

    credentials, config = tmp_path / "credentials", tmp_path / "config"
    credentials.write_text(
        f"[base]\naws_access_key_id = {keys.access_key_id}\n"
        f"aws_secret_access_key = {keys.secret_access_key}\n"
    )
    config.write_text(
        f"[profile ops]\nregion = {peer.region}\nsource_profile = base\n"
        f"role_arn = {peer.role_arn}\nendpoint_url = {peer.endpoint_url}\n"
        "[profile sso]\nsso_start_url = https://example.awsapps.com/start\nregion = eu-west-1\n"
    )
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    from_profile = runner.invoke(
        cli,
        ["repo", "import", "--group", "alpha", "--aws-profile", "ops"],
        env={"AWS_SECRET_ACCESS_KEY": "another-keys-secret"},  # not the profile's: ignored
    )
    assert from_profile.exit_code == 0, from_profile.output
    repo = Repo.objects.get(name="ops")
    assert (repo.region, repo.role_arn, repo.access_key_id) == (
        peer.region,
        peer.role_arn,
        keys.access_key_id,
    )
    assert repo.cloud_project == Repo.objects.get(name="flags").cloud_project  # one account
    assert repo.connection().secret_access_key == keys.secret_access_key

    missing = runner.invoke(cli, ["repo", "import", "--group", "alpha", "--aws-profile", "nope"])
    assert missing.exit_code == 1 and "there is no AWS profile named nope" in missing.output
    sso = runner.invoke(cli, ["repo", "import", "--group", "alpha", "--aws-profile", "sso"])
    assert sso.exit_code == 1 and "sso_start_url, which a server cannot use" in sso.output
    both = runner.invoke(
        cli, ["repo", "import", str(config), "--group", "alpha", "--aws-profile", "ops"]
    )
    assert both.exit_code == 2


def test_a_poll_puts_the_accounts_amis_in_the_matrix(peer, group_a):
    make_repo(group_a, name="glance")  # an OpenStack column beside it, never polled here
    repo = Repo(group=group_a, **{k: v for k, v in ec2_fields(peer).items() if k != "kind"})
    repo.kind = "ec2"
    repo.full_clean()
    repo.set_cloud_project(peer.account_id)
    repo.save()
    image = b"ami" + bytes(1024 * 1024)
    name = f"polled-{uuid.uuid4().hex[:8]}"
    with open_driver(repo) as cloud:
        written = cloud.create_and_write(
            {"name": name, "glint_sha256": hashlib.sha256(image).hexdigest()},
            [image],
            size=len(image),
        )
    try:
        [result] = poll_repos([repo])
        assert result.ok, result.error
        forget_cached_matrices()
        [row] = [row for row in group_matrix(group_a).rows if row.name == name]
        assert row.cells[repo.pk].state == CellState.PRESENT and not row.hidden
    finally:
        with open_driver(repo) as cloud:
            cloud.delete(written.id)
