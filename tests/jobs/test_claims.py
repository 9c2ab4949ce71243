"""Workers in several processes share one database: checking the limits and claiming is one step."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from glint.jobs import claims, states
from glint.jobs.models import Job
from tests.jobs.helpers import copy_job
from tests.plans.helpers import add_repo
from tests.postgres import run_at_once

pytestmark = pytest.mark.django_db(transaction=True)


def test_two_workers_never_both_take_a_repos_last_free_slot(group_a, settings):
    """Per-repo limit 1 and two queued jobs into one repo, claimed by two workers at the same
    moment (threads with a database connection each, as two `glint worker` processes would
    have): one claims, the other is told it is over the limit. The moment is forced by
    PostgreSQL itself: the test holds an exclusive lock on the job table until both workers are
    blocked on their way to the claim; if they did not take turns, both would then read a free
    slot, and both would claim."""
    settings.GLINT_JOB_PER_REPO_LIMIT = 1
    target = add_repo(group_a, "shared-target", "p1")
    jobs = [
        copy_job(group_a, add_repo(group_a, f"source-{i}", f"p{i + 2}"), target) for i in range(2)
    ]
    outcomes = {}

    def worker(job_id: int) -> None:
        try:
            outcomes[job_id] = "claimed" if claims.claim_one(job_id, f"worker-{job_id}") else "lost"
        except claims.OverLimits:
            outcomes[job_id] = "over the limit"
        finally:
            connection.close()

    run_at_once(Job, [threading.Thread(target=worker, args=(job.pk,)) for job in jobs])
    assert sorted(outcomes.values()) == ["claimed", "over the limit"], outcomes
    assert Job.objects.filter(state=states.RUNNING).count() == 1
