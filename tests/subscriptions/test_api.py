"""``/api/v1/subscriptions/``: a manager subscribes and learns at once whether the list verified;
the token is written, never read back; members only read; another group's people see nothing;
bad fields are refused with their reason and save nothing; every change is audited.

No cloud is needed: the list is fetched from the loopback web server and verified, and the uploads
a refresh queues are never run here (``test_keeping_in_step`` runs them against devcloud).
"""

from __future__ import annotations

import json
import os

import pytest
from django.db import connection

from glint.audit.models import AuditRecord
from glint.repos.crypto import SealedSecret
from glint.subscriptions.models import Subscription
from tests.clients import client_for, make_user
from tests.repos.helpers import make_repo, post_json
from tests.subscriptions.helpers import LIST_PATH, publish
from tests.subscriptions.lists import image

pytestmark = pytest.mark.django_db
TOKEN = "reader:s3cret-list-pass"


@pytest.fixture
def setting(group_a, trust, web):
    """(manager, repo, endorser, other endorser) with a list by ``endorser`` published."""
    _directory, endorser, _revoked, other = trust
    publish(web, endorser, [image("alpha", os.urandom(16 * 1024))], version="4")
    manager = make_user("Api List Manager", group=group_a, role="manager")
    return manager, make_repo(group_a), endorser, other


def raw_tokens() -> list[str]:
    """The token column as the database holds it, past the model field that seals it."""
    table = connection.ops.quote_name(Subscription._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT token FROM {table}")
        return [row[0] for row in cursor.fetchall()]


def body_for(group, repo, web, endorser, **changes) -> dict:
    return {
        "group": group.pk,
        "name": "api list",
        "url": web.url(LIST_PATH),
        "token": TOKEN,
        "endorser_dn": endorser.dn,
        "endorser_ca": endorser.ca_dn,
        "targets": [repo.pk],
        **changes,
    }


def test_a_manager_subscribes_and_the_answer_says_the_list_verified(group_a, setting, web):
    manager, repo, endorser, _other = setting
    client = client_for(manager)

    answer = post_json(client, "/api/v1/subscriptions/", body_for(group_a, repo, web, endorser))

    assert answer.status_code == 201, answer.content
    created = answer.json()
    assert created["refresh"]["ok"] is True and created["list_version"] == "4"
    assert created["token_set"] is True and "token" not in created
    assert created["endorser_dn"] == endorser.dn and created["targets"] == [repo.pk]
    listed = client.get(f"/api/v1/subscriptions/?group={group_a.pk}")
    assert [s["name"] for s in listed.json()["results"]] == ["api list"]
    trail = AuditRecord.objects.filter(action="subscription.add").get()
    everything = json.dumps(trail.details) + answer.content.decode() + listed.content.decode()
    assert "s3cret" not in everything, "the token is never shown back or audited"
    (stored,) = raw_tokens()
    assert stored and "s3cret" not in stored, "the column holds the token encrypted"
    assert SealedSecret(stored).reveal() == TOKEN, "and it is the token, sealed"


def test_a_list_by_another_signer_is_saved_with_its_reason_and_fetches_nothing(
    group_a, setting, web
):
    manager, repo, endorser, other = setting
    publish(web, other, [image("beta", os.urandom(8 * 1024))])

    answer = post_json(
        client_for(manager), "/api/v1/subscriptions/", body_for(group_a, repo, web, endorser)
    )

    assert answer.status_code == 201, answer.content
    refresh = answer.json()["refresh"]
    assert refresh["ok"] is False and "Other Publisher" in refresh["error"], refresh
    assert answer.json()["last_refresh_ok"] is False and answer.json()["list_version"] == ""
    assert not [r for r in web.requests if r["path"].startswith("/images/")]


@pytest.mark.parametrize(
    ("changes", "field", "reason"),
    [
        ({"endorser_dn": "not a dn"}, "endorser_dn", "Not a DN"),
        ({"url": "ftp://127.0.0.1/list"}, "url", "http"),
        ({"targets": []}, "targets", "at least one repo"),
        ({"token": "no-colon"}, "token", "user:password"),
        ({"refresh_seconds": 5}, "refresh_seconds", "Refresh at most every"),
    ],
)
def test_bad_fields_are_refused_with_their_reason_and_save_nothing(
    group_a, setting, web, changes, field, reason
):
    manager, repo, endorser, _other = setting

    answer = post_json(
        client_for(manager),
        "/api/v1/subscriptions/",
        body_for(group_a, repo, web, endorser, **changes),
    )

    assert answer.status_code == 400, answer.content
    assert reason in " ".join(answer.json()[field]), answer.json()
    assert not Subscription.objects.exists()
    assert not AuditRecord.objects.filter(action__startswith="subscription.").exists()


def test_a_repo_of_another_group_is_no_target(group_a, group_b, setting, web):
    manager, _repo, endorser, _other = setting
    foreign = make_repo(group_b, name="foreign")

    answer = post_json(
        client_for(manager),
        "/api/v1/subscriptions/",
        body_for(group_a, foreign, web, endorser),
    )

    assert answer.status_code == 400 and not Subscription.objects.exists()


def test_members_read_managers_change_and_other_groups_see_nothing(group_a, group_b, setting, web):
    manager, repo, endorser, _other = setting
    created = post_json(
        client_for(manager), "/api/v1/subscriptions/", body_for(group_a, repo, web, endorser)
    ).json()
    url = f"/api/v1/subscriptions/{created['id']}/"
    member = client_for(make_user("Api List Member", group=group_a))
    outsider = client_for(make_user("Api List Outsider", group=group_b, role="manager"))

    assert member.get(url).status_code == 200
    assert post_json(member, url, {"name": "taken over"}, method="patch").status_code == 403
    assert member.post(f"{url}refresh/").status_code == 403
    assert member.delete(url).status_code == 403
    assert (
        post_json(
            member, "/api/v1/subscriptions/", body_for(group_a, repo, web, endorser, name="x")
        ).status_code
        == 403
    )
    assert outsider.get(url).status_code == 404
    assert outsider.delete(url).status_code == 404
    assert Subscription.objects.get().name == "api list"

    manager_client = client_for(manager)
    renamed = post_json(manager_client, url, {"name": "renamed list"}, method="patch")
    assert renamed.status_code == 200 and renamed.json()["token_set"] is True
    assert manager_client.delete(url).status_code == 204
    assert not Subscription.objects.exists()
    actions = list(
        AuditRecord.objects.filter(action__startswith="subscription.")
        .order_by("pk")
        .values_list("action", flat=True)
    )
    assert actions == [
        "subscription.add",
        "subscription.list_accepted",
        "subscription.update",
        "subscription.delete",
    ]


def test_the_token_is_never_shown_in_the_api_the_pages_the_edit_form_or_the_audit_log(
    group_a, setting, web, caplog
):
    manager, repo, endorser, _other = setting
    client = client_for(manager)
    created = post_json(client, "/api/v1/subscriptions/", body_for(group_a, repo, web, endorser))
    assert created.status_code == 201, created.content
    pk = created.json()["id"]
    edit_url = f"/subscriptions/{pk}/edit/"
    edit_page = client.get(edit_url).content.decode()
    assert (
        'name="token"' in edit_page
        and "(with a token)" in client.get(f"/subscriptions/{pk}/").content.decode()
    )
    # Saving the edit form with the token field left empty keeps the stored token.
    form = {
        "name": "api list",
        "endorser_dn": endorser.dn,
        "endorser_ca": endorser.ca_dn,
        "targets": [repo.pk],
        "refresh_seconds": 3600,
        "on_removal": "delete",
        "conflict_policy": "replace",
        "enabled": "on",
    }
    saved = client.post(edit_url, form)
    assert saved.status_code == 302, saved.content.decode()
    assert Subscription.objects.get().token.reveal() == TOKEN
    refreshed_by_page = client.post(f"/subscriptions/{pk}/refresh/", follow=True)

    shown = [
        created.content.decode(),
        client.get(f"/api/v1/subscriptions/{pk}/").content.decode(),
        client.get(f"/api/v1/subscriptions/?group={group_a.pk}").content.decode(),
        client.get(f"/subscriptions/?group={group_a.pk}").content.decode(),
        client.get(f"/subscriptions/{pk}/").content.decode(),
        edit_page,
        client.get(edit_url).content.decode(),
        refreshed_by_page.content.decode(),
        client.get(f"/audit/?group={group_a.pk}").content.decode(),
        json.dumps(list(AuditRecord.objects.values_list("action", "details"))),
        caplog.text,
    ]
    for where, text in enumerate(shown):
        assert "s3cret" not in text and "reader:" not in text, f"the token shows in #{where}"
    assert AuditRecord.objects.filter(action="subscription.update").exists()
    (stored,) = raw_tokens()
    assert "s3cret" not in stored
