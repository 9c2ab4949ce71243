"""Repos of two groups that reach the same cloud project share one listing: the poller lists the
project once an interval and records it for both (against the devcloud, with the real poller)."""

from __future__ import annotations

import time

import pytest

from glint.inventory import poller
from glint.inventory.models import RepoInventory
from tests.devcloud_repos import add_devcloud_repo

pytestmark = [pytest.mark.devcloud, pytest.mark.django_db(transaction=True)]


def test_a_project_in_two_groups_is_listed_once_for_both(
    devcloud, group_a, group_b, settings, monkeypatch
):
    settings.GLINT_POLL_INTERVAL = 2
    alpha = add_devcloud_repo(devcloud, group_a, "devcloud-1")
    beta = add_devcloud_repo(devcloud, group_b, "devcloud-1")
    assert alpha.cloud_project == beta.cloud_project != ""
    listings = []
    real = poller._list_images

    def counted(conn, project_id):  # the real listing, counted
        listings.append(project_id)
        return real(conn, project_id)

    monkeypatch.setattr(poller, "_list_images", counted)
    poller.start_poller()
    try:
        time.sleep(7)
    finally:
        poller.stop_poller()
    polls = {i.repo_id: i.polls_total for i in RepoInventory.objects.filter(repo__in=[alpha, beta])}
    assert len(listings) >= 2, "polled every interval"
    assert polls == {alpha.pk: len(listings), beta.pk: len(listings)}, (
        f"{len(listings)} listings of the project served {polls}"
    )
