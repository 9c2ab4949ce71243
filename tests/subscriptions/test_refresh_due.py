"""``refresh_due``, the loop of every ``glint serve``: a subscription is refreshed by one process at
a time (a lease on its database row), its next refresh comes one interval later (sooner after a
refusal), and a disabled subscription is never refreshed. The list comes from the loopback server,
so the number of times it was fetched is the number of refreshes."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.db import connection
from django.utils import timezone

from glint.audit.models import AuditRecord
from glint.subscriptions import refresh
from glint.subscriptions.models import Subscription
from glint.transfers.models import Upload
from tests.clients import make_user
from tests.plans.helpers import add_repo
from tests.postgres import run_at_once
from tests.subscriptions.helpers import LIST_PATH, publish, subscribe
from tests.subscriptions.lists import image

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def due(group_a, trust, web):
    """A subscription that is due now (never refreshed), its list published."""
    _directory, endorser, _revoked, _other = trust
    manager = make_user("List Manager", group=group_a, role="manager")
    publish(web, endorser, [image("one", b"1" * 1000)], version="1")
    return subscribe(
        manager, group_a, [add_repo(group_a, "offline", "p1")], web, endorser, refresh_seconds=600
    )


def fetches(web) -> int:
    return sum(1 for r in web.requests if r["path"] == LIST_PATH)


def test_two_processes_at_once_refresh_a_due_list_once(due, web):
    """Two ``glint serve`` loops look for due lists at the same moment (threads with a database
    session each, released together from a table lock): one leases the subscription and
    refreshes it, the other leaves it alone."""
    done = []

    def loop():
        try:
            done.append(refresh.refresh_due())
        finally:
            connection.close()

    run_at_once(Subscription, [threading.Thread(target=loop) for _ in range(2)])

    assert sorted(done) == [0, 1], done
    assert fetches(web) == 1, "the list was fetched once"
    assert AuditRecord.objects.filter(action="subscription.list_accepted").count() == 1
    assert Upload.objects.count() == 1, "its image is fetched by one upload, not two"


def test_a_subscription_another_process_holds_waits_for_its_lease(due, web):
    held_until = timezone.now() + dt.timedelta(seconds=refresh.LEASE_SECONDS)
    Subscription.objects.filter(pk=due.pk).update(refresh_lease_expires=held_until)

    assert refresh.refresh_due() == 0 and fetches(web) == 0, "a held subscription is left alone"

    # That process died: its lease runs out and another takes the subscription over.
    Subscription.objects.filter(pk=due.pk).update(
        refresh_lease_expires=timezone.now() - dt.timedelta(seconds=1)
    )
    assert refresh.refresh_due() == 1 and fetches(web) == 1
    due.refresh_from_db()
    assert due.refresh_lease_expires is None and due.list_version == "1"


def test_the_next_refresh_comes_one_interval_later_and_sooner_after_a_refusal(due, web):
    assert refresh.refresh_due() == 1
    due.refresh_from_db()
    assert due.last_refresh_ok is True
    assert due.next_refresh_at == due.last_refresh_at + dt.timedelta(seconds=600)
    assert refresh.refresh_due() == 0 and fetches(web) == 1, "not due again before the interval"

    del web.files[LIST_PATH]  # the publisher's server is down
    Subscription.objects.filter(pk=due.pk).update(next_refresh_at=timezone.now())
    assert refresh.refresh_due() == 1
    due.refresh_from_db()
    assert due.last_refresh_ok is False and "cannot be fetched" in due.last_error
    assert due.next_refresh_at == due.last_refresh_at + refresh.RETRY_AFTER, (
        "a refused list is tried again after RETRY_AFTER, not a whole interval later"
    )

    Subscription.objects.filter(pk=due.pk).update(
        refresh_seconds=120, next_refresh_at=timezone.now()
    )
    assert refresh.refresh_due() == 1
    due.refresh_from_db()
    assert due.next_refresh_at == due.last_refresh_at + dt.timedelta(seconds=120), (
        "an interval shorter than RETRY_AFTER is kept after a refusal"
    )


def test_a_disabled_subscription_is_never_refreshed(due, web):
    Subscription.objects.filter(pk=due.pk).update(
        enabled=False, next_refresh_at=timezone.now() - dt.timedelta(days=1)
    )

    assert refresh.refresh_due() == 0
    assert fetches(web) == 0
    due.refresh_from_db()
    assert due.last_refresh_at is None and due.list_version == ""
    assert not Upload.objects.exists()
