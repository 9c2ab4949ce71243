"""The cluster page and ``/api/v1/workers/`` (admins only): every job runner's heartbeat, whether
it is alive, and the jobs it runs, found by the leases it took."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from django.utils import timezone

from glint.jobs import claims, states
from glint.jobs.heartbeat import Heartbeat, worker_name
from glint.jobs.models import Job, Worker
from tests.clients import client_for, make_user
from tests.jobs.helpers import copy_job
from tests.plans.helpers import add_repo

pytestmark = pytest.mark.django_db(transaction=True)


def test_admins_see_each_runner_alive_or_gone_with_its_running_jobs(group_a):
    long_gone = Worker.objects.create(
        name="glint-1@lost-host", kind="celery", host="lost-host", pid=1,
        last_seen=timezone.now() - dt.timedelta(days=2),
    )  # fmt: skip
    Heartbeat("embedded").beat()
    assert not Worker.objects.filter(pk=long_gone.pk).exists(), "forgotten after a day"
    Worker.objects.create(
        name="glint-99@old-host",
        kind="celery",
        host="old-host",
        pid=99,
        last_seen=timezone.now() - dt.timedelta(minutes=5),
    )
    job = copy_job(
        group_a, add_repo(group_a, "w-source", "p1"), add_repo(group_a, "w-target", "p2")
    )
    Job.objects.filter(pk=job.pk).update(state=states.RUNNING, lease_owner=claims.worker_owner())
    admin = client_for(make_user("Cluster Admin", admin=True))

    listed = admin.get("/api/v1/workers/").json()
    assert [(w["name"], w["kind"], w["alive"], w["running_jobs"]) for w in listed] == [
        (worker_name(), "embedded", True, [job.pk]),
        ("glint-99@old-host", "celery", False, []),
    ]
    page = admin.get("/jobs/workers/").content.decode()
    assert worker_name() in page and f"#{job.pk}" in page
    assert "alive" in page and "gone" in page

    member = client_for(make_user("Plain Member", group=group_a))
    assert member.get("/api/v1/workers/").status_code == 403
    assert member.get("/jobs/workers/").status_code == 403


def test_a_runner_s_heartbeat_row_lives_as_long_as_the_runner():
    heartbeat = Heartbeat("embedded")
    heartbeat.start()
    deadline = time.monotonic() + 10
    while not Worker.objects.filter(name=heartbeat.name).exists():
        assert time.monotonic() < deadline, "no heartbeat"
        time.sleep(0.05)
    heartbeat.stop()
    assert not Worker.objects.filter(name=heartbeat.name).exists(), "a clean stop says goodbye"
