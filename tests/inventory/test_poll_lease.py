"""Several Glint processes on one database (web replicas, each with its poller) poll a due repo
once between them: the poll lease (``listings.claim_poll``)."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.db import connection
from django.utils import timezone

from glint.inventory import listings
from glint.inventory.models import ProjectPollLease, RepoInventory
from glint.inventory.poller import request_refresh
from tests.plans.helpers import add_repo
from tests.postgres import run_at_once

pytestmark = pytest.mark.django_db(transaction=True)


def test_of_processes_claiming_a_due_poll_at_once_one_polls(group_a):
    """The moment is forced by PostgreSQL: the test holds the inventory table locked until every
    claimer waits on it; without one compare-and-set, each would then see the repo due and
    free, and all would poll."""
    repo = add_repo(group_a, "raced", "p1")
    RepoInventory.objects.filter(repo=repo).update(next_poll_at=None)
    outcomes = []

    def claimer(name: str) -> None:
        try:
            outcomes.append(listings.claim_poll(repo.pk, name, 60))
        finally:
            connection.close()

    run_at_once(
        RepoInventory, [threading.Thread(target=claimer, args=(f"web-{n}",)) for n in range(3)]
    )
    assert sorted(outcomes) == [False, False, True]


def test_the_record_releases_the_lease_and_a_dead_holder_s_runs_out(group_a):
    repo = add_repo(group_a, "leased", "p1")
    RepoInventory.objects.filter(repo=repo).update(next_poll_at=None)
    started = timezone.now()
    assert listings.claim_poll(repo.pk, "web-1", 60)
    assert not listings.claim_poll(repo.pk, "web-2", 60), "held by web-1"

    listings.record_listing(
        repo.pk, [], project_id="p1", duration=0.1, started_at=started, interval=300
    )
    inventory = RepoInventory.objects.get(repo=repo)
    assert inventory.poll_lease_owner == "" and inventory.poll_lease_expires is None
    assert not listings.claim_poll(repo.pk, "web-2", 60), "polled just now: not due"

    request_refresh([repo.pk])  # a person asks for a poll now
    assert listings.claim_poll(repo.pk, "web-2", 60)
    RepoInventory.objects.filter(repo=repo).update(
        poll_lease_expires=timezone.now() - dt.timedelta(seconds=1)
    )  # web-2 died mid-poll
    assert listings.claim_poll(repo.pk, "web-3", 60), "a lost holder's lease runs out"


def _shared_project(*groups):
    """One repo in each group, all reaching the same cloud project, every one due."""
    repos = []
    for n, group in enumerate(groups):
        repo = add_repo(group, f"shared-{n}", "p-shared")
        repo.set_cloud_project("p-shared")
        repo.save(update_fields=["cloud_project"])
        repos.append(repo)
    RepoInventory.objects.filter(repo__in=repos).update(next_poll_at=None)
    return repos


def test_of_processes_claiming_one_project_through_two_groups_repos_one_polls_it(group_a, group_b):
    """Two processes, each looking at a different group's due repo of one cloud project, at the
    same moment (forced by PostgreSQL, as above): one takes the project's poll for both repos,
    the other none, so the project is listed once."""
    alpha, beta = _shared_project(group_a, group_b)
    outcomes = {}

    def claimer(name: str, repo) -> None:
        try:
            outcomes[name] = listings.claim_project_poll(repo, name, 60)
        finally:
            connection.close()

    run_at_once(
        ProjectPollLease,
        [
            threading.Thread(target=claimer, args=("web-1", alpha)),
            threading.Thread(target=claimer, args=("web-2", beta)),
        ],
    )
    assert sorted(map(sorted, outcomes.values())) == [[], sorted([alpha.pk, beta.pk])], outcomes


def test_a_project_polled_through_one_group_s_repo_is_not_polled_again_through_another(
    group_a, group_b
):
    alpha, beta = _shared_project(group_a, group_b)
    started = timezone.now()
    assert listings.claim_project_poll(alpha, "web-1", 60) == (alpha.pk, beta.pk)
    assert listings.claim_project_poll(beta, "web-2", 60) == (), "web-1 holds the project"

    for repo in (alpha, beta):  # web-1 records its one listing for both, then lets go
        listings.record_listing(
            repo.pk, [], project_id="p-shared", duration=0.1, started_at=started, interval=300
        )
    listings.release_project_poll(listings.project_key(alpha), "web-1")
    assert listings.claim_project_poll(beta, "web-2", 60) == (), "listed just now: not due"

    request_refresh([beta.pk])
    assert listings.claim_project_poll(beta, "web-2", 60) == (beta.pk, alpha.pk)
    ProjectPollLease.objects.update(expires=timezone.now() - dt.timedelta(seconds=1))
    RepoInventory.objects.update(poll_lease_expires=None)  # web-2 died mid-poll
    request_refresh([alpha.pk])
    assert listings.claim_project_poll(alpha, "web-3", 60)[0] == alpha.pk, "its lease runs out"
