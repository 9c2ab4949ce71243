"""The conflict policy for an updated image (a target that holds its name with other content) is
set on the subscription page like the other options (the CLI's ``--conflict-policy`` is tested in
``tests/cli/test_subscription_commands.py``): it is saved, shown, kept by the edit form, used by
the uploads a refresh starts, and a bad value is refused with the values to use."""

from __future__ import annotations

import pytest

from glint.audit.models import AuditRecord
from glint.subscriptions.models import Subscription
from glint.transfers.models import Upload
from tests.clients import client_for, make_user
from tests.plans.helpers import add_repo
from tests.repos.helpers import post_json
from tests.subscriptions.helpers import LIST_PATH, publish
from tests.subscriptions.lists import image

pytestmark = pytest.mark.django_db


@pytest.fixture
def page(group_a, trust, web):
    """(manager's client, repo, the form's fields) with a list published."""
    _directory, endorser, _revoked, _other = trust
    publish(web, endorser, [image("alpha", b"a" * 1000)])
    manager = make_user("Page List Manager", group=group_a, role="manager")
    repo = add_repo(group_a, "offline", "p1")
    form = {
        "name": "page list",
        "url": web.url(LIST_PATH),
        "endorser_dn": endorser.dn,
        "endorser_ca": endorser.ca_dn,
        "targets": [repo.pk],
        "refresh_seconds": 3600,
        "on_removal": "delete",
        "enabled": "on",
    }
    return client_for(manager), repo, form


def test_the_page_sets_shows_and_keeps_the_conflict_policy(group_a, page):
    client, _repo, form = page
    assert (
        'name="conflict_policy"'
        in client.get(f"/subscriptions/?group={group_a.pk}").content.decode()
    )

    added = client.post(
        f"/subscriptions/?group={group_a.pk}", {**form, "conflict_policy": "rename-old"}
    )

    assert added.status_code == 302, added.content.decode()
    subscription = Subscription.objects.get()
    assert subscription.conflict_policy == "rename-old"
    (upload,) = Upload.objects.all()
    assert upload.conflict_policy == "rename-old", "the refresh's upload uses the policy"
    detail = client.get(f"/subscriptions/{subscription.pk}/").content.decode()
    assert 'id="conflict-policy">rename-old' in detail
    edit_url = f"/subscriptions/{subscription.pk}/edit/"
    edit_page = client.get(edit_url).content.decode()
    assert '<option value="rename-old" selected>' in edit_page, "the edit form shows the policy"

    edited = client.post(edit_url, {**form, "url": "", "conflict_policy": "skip"})

    assert edited.status_code == 302, edited.content.decode()
    subscription.refresh_from_db()
    assert subscription.conflict_policy == "skip"
    audited = AuditRecord.objects.filter(action__in=["subscription.add", "subscription.update"])
    assert [r.details["conflict_policy"] for r in audited.order_by("pk")] == ["rename-old", "skip"]


def test_a_bad_conflict_policy_is_refused_with_the_values_to_use(group_a, page):
    client, repo, form = page

    refused = client.post(
        f"/subscriptions/?group={group_a.pk}", {**form, "conflict_policy": "delete-first"}
    )

    assert refused.status_code == 200
    assert "Select a valid choice. delete-first is not one of the available choices." in (
        refused.content.decode()
    )
    answer = post_json(
        client,
        "/api/v1/subscriptions/",
        {
            "group": group_a.pk,
            **{k: v for k, v in form.items() if k != "enabled"},
            "conflict_policy": "delete-first",
        },
    )
    assert answer.status_code == 400, answer.content
    assert answer.json()["conflict_policy"] == [
        "Unknown conflict policy 'delete-first': use one of report, skip, replace, rename-old."
    ]
    assert not Subscription.objects.exists()
