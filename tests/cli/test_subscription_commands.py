"""``glint subscribe``, ``glint subscriptions`` and ``glint unsubscribe`` against the real ``glint
serve``: a list is verified at once and its images arrive in the repos; a list by another signer
is refused with the reason and a non-zero exit; the token reaches the list's host and never the
output; only managers subscribe."""

from __future__ import annotations

import json
import os

import pytest

from tests.cli.helpers import login
from tests.jobs.images import images_named
from tests.live import LIVE_GROUP
from tests.subscriptions.helpers import (
    LIST_PATH,
    fresh_prefix,
    publish,
    start_subscribing_glint,
    wait_for_images,
)
from tests.subscriptions.lists import Endorser, image

pytestmark = pytest.mark.devcloud
CLOUDS = ("devcloud-1", "devcloud-2")


@pytest.fixture(scope="module")
def live_glint(devcloud, pki, tmp_path_factory):
    yield from start_subscribing_glint(devcloud, pki, tmp_path_factory.mktemp("cli-subscriptions"))


@pytest.fixture
def prefix(devcloud):
    yield from fresh_prefix(devcloud, "cli")


def subscribe_args(web, endorser: Endorser, name: str, *extra: str) -> list[str]:
    return [
        "subscribe",
        web.url(LIST_PATH),
        "--name",
        name,
        "--endorser-dn",
        endorser.dn,
        "--endorser-ca",
        endorser.ca_dn,
        "--repo",
        CLOUDS[0],
        "--repo",
        CLOUDS[1],
        "--group",
        LIVE_GROUP,
        *extra,
    ]


def test_subscribe_list_and_unsubscribe(cli, live_glint, pki, devcloud, web, prefix, tmp_path):
    name_prefix, names = prefix
    endorser = Endorser.of(pki.ca, "CLI Publisher")
    alpha = image("alpha", os.urandom(96 * 1024))
    names.append(f"{name_prefix}alpha")
    publish(web, endorser, [alpha], version="7")
    token_file = tmp_path / "token"
    token_file.write_text("reader:s3cret-list-pass\n")
    assert login(cli, live_glint, pki).returncode == 0

    done = cli(
        *subscribe_args(web, endorser, "cli list", "--prefix", name_prefix),
        "--token-file",
        str(token_file),
    )

    assert done.returncode == 0, done.stderr
    assert "Glint test list version 7 verified" in done.stdout, done.stdout
    assert f"fetching {name_prefix}alpha into devcloud-1, devcloud-2" in done.stdout
    wait_for_images(devcloud, [f"{name_prefix}alpha"], CLOUDS)
    list_requests = [r for r in web.requests if r["path"] == LIST_PATH]
    assert list_requests and all(
        r["authorization"] == "Basic cmVhZGVyOnMzY3JldC1saXN0LXBhc3M=" for r in list_requests
    ), "the token is sent to the list's host as basic auth"

    table = cli("subscriptions", "--group", LIVE_GROUP)
    assert table.returncode == 0, table.stderr
    (line,) = [line for line in table.stdout.splitlines() if "cli list" in line]
    assert "Glint test list v7" in line and "ok" in line and "CLI Publisher" in line
    listed = cli("subscriptions", "--group", LIVE_GROUP, "--json")
    (item,) = [i for i in json.loads(listed.stdout) if i["name"] == "cli list"]
    assert item["token_set"] is True and "s3cret" not in listed.stdout + done.stdout

    gone = cli("unsubscribe", "cli list", "--group", LIVE_GROUP)
    assert gone.returncode == 0, gone.stderr
    assert "cli list" not in cli("subscriptions", "--group", LIVE_GROUP).stdout
    assert all(
        [i.status for i in images_named(devcloud, f"{name_prefix}alpha")[cloud]] == ["active"]
        for cloud in CLOUDS
    ), "unsubscribing leaves the images in the repos"
    again = cli("unsubscribe", "cli list", "--group", LIVE_GROUP)
    assert again.returncode == 1 and "no subscription 'cli list'" in again.stderr


def test_a_list_by_another_signer_is_refused_with_the_reason(cli, live_glint, pki, web, prefix):
    name_prefix, _names = prefix
    expected, signer = Endorser.of(pki.ca, "Expected Publisher"), Endorser.of(pki.ca, "Intruder")
    publish(web, signer, [image("beta", os.urandom(32 * 1024))])
    assert login(cli, live_glint, pki).returncode == 0

    refused = cli(*subscribe_args(web, expected, "forged list", "--prefix", name_prefix))

    assert refused.returncode == 1
    assert "but the list was refused" in refused.stderr and "Intruder" in refused.stderr
    (line,) = [
        line
        for line in cli("subscriptions", "--group", LIVE_GROUP).stdout.splitlines()
        if "forged list" in line
    ]
    assert "REFUSED" in line
    assert not [r for r in web.requests if r["path"].startswith("/images/")], "nothing fetched"
    assert cli("unsubscribe", "forged list", "--group", LIVE_GROUP).returncode == 0


def test_only_managers_subscribe_and_bad_input_is_refused(cli, live_glint, pki, web):
    endorser = Endorser.of(pki.ca, "Some Publisher")
    member = "CLI List Member"
    live_glint.server.add_user(member, "--group", LIVE_GROUP, "--role", "member")
    _cert, _key, member_file = pki.person(member)
    assert login(cli, live_glint, pki, cert=member_file).returncode == 0

    denied = cli(*subscribe_args(web, endorser, "member list"))
    assert denied.returncode == 1 and "HTTP 403" in denied.stderr, denied.stderr
    assert "managers" in denied.stderr

    assert login(cli, live_glint, pki).returncode == 0
    unknown = cli(*subscribe_args(web, endorser, "typo list"), "--repo", "nowhere")
    assert unknown.returncode == 1 and "no repo 'nowhere'" in unknown.stderr
    not_a_dn = cli(
        "subscribe",
        web.url(LIST_PATH),
        "--name",
        "bad dn",
        "--endorser-dn",
        "nobody",
        "--endorser-ca",
        endorser.ca_dn,
        "--repo",
        CLOUDS[0],
        "--group",
        LIVE_GROUP,
    )
    assert not_a_dn.returncode == 1 and "endorser_dn" in not_a_dn.stderr, not_a_dn.stderr


def test_subscribe_sets_the_conflict_policy_and_subscriptions_shows_it(
    cli, live_glint, pki, web, prefix
):
    name_prefix, _names = prefix
    endorser = Endorser.of(pki.ca, "Policy Publisher")
    publish(web, endorser, [image("gamma", os.urandom(8 * 1024))])
    assert login(cli, live_glint, pki).returncode == 0
    # Only an identifier the list does not have: the list verifies, nothing is fetched.
    args = subscribe_args(web, endorser, "policy list", "--prefix", name_prefix, "--image", "none")

    bad = cli(*args, "--conflict-policy", "delete-first")
    assert bad.returncode == 2 and "Invalid value for '--conflict-policy'" in bad.stderr
    assert "'replace', 'rename-old', 'skip', 'report'" in bad.stderr, bad.stderr
    done = cli(*args, "--conflict-policy", "rename-old")

    assert done.returncode == 0, done.stderr
    table = cli("subscriptions", "--group", LIVE_GROUP)
    assert "ON UPDATE" in table.stdout.splitlines()[0], table.stdout
    (line,) = [line for line in table.stdout.splitlines() if "policy list" in line]
    assert "rename-old" in line, line
    listed = cli("subscriptions", "--group", LIVE_GROUP, "--json")
    (item,) = [i for i in json.loads(listed.stdout) if i["name"] == "policy list"]
    assert item["conflict_policy"] == "rename-old"
    assert cli("unsubscribe", "policy list", "--group", LIVE_GROUP).returncode == 0
    default = cli(*subscribe_args(web, endorser, "default policy", "--image", "none"))
    assert default.returncode == 0, default.stderr
    (item,) = [
        i
        for i in json.loads(cli("subscriptions", "--group", LIVE_GROUP, "--json").stdout)
        if i["name"] == "default policy"
    ]
    assert item["conflict_policy"] == "replace", "replace is the default, as on the page"
    assert cli("unsubscribe", "default policy", "--group", LIVE_GROUP).returncode == 0
