"""``/metrics`` counts the jobs by kind, state and site, the bytes copied and verified, each copy's
rate in a histogram, and verification failures, naming no image and no person; the counters
never go down when jobs are deleted, and a real copy raises them."""

from __future__ import annotations

import pytest
from django.test import Client

from glint.inventory.poller import poll_repos
from glint.jobs import states
from glint.jobs.models import Job, JobTarget
from glint.jobs.runners import save_target
from glint.plans.choices import Action
from tests.clients import make_user
from tests.jobs.helpers import copy_job, run_in_process
from tests.jobs.images import upload
from tests.jobs.test_execution import plan_and_apply
from tests.plans.helpers import add_repo

pytestmark = pytest.mark.django_db

MiB = 2**20
#: The series that must never go down.
COUNTERS = (
    "glint_copied_bytes_total",
    "glint_verification_failures_total",
    'glint_copy_throughput_bytes_per_second_bucket{le="10485760"}',
    'glint_copy_throughput_bytes_per_second_bucket{le="+Inf"}',
    "glint_copy_throughput_bytes_per_second_sum",
    "glint_copy_throughput_bytes_per_second_count",
)


def _end(job, **values):
    """End ``job``'s target the way a run does (``save_target``: the row and the counters)."""
    save_target(JobTarget.objects.get(job=job), **values)


def _metrics() -> dict[str, float]:
    """``/metrics``' series without labels or with the throughput's, by name."""
    text = Client().get("/metrics").content.decode()
    pairs = (line.rsplit(" ", 1) for line in text.splitlines() if not line.startswith("#"))
    return {name: float(value) for name, value in pairs}


def test_metrics_count_jobs_bytes_rates_and_verification_failures(group_a):
    source, target = add_repo(group_a, "m-source", "p1"), add_repo(group_a, "m-target", "p2")
    done = copy_job(group_a, source, target, state=states.DONE)
    _end(
        done, state="done", outcome="copied", bytes_done=5 * MiB, bytes_total=5 * MiB, rate=20 * MiB
    )
    failed = copy_job(group_a, source, target, state=states.FAILED)
    _end(failed, state="failed", error_code="target_verification_failed", bytes_done=MiB)
    copy_job(group_a, source, target)  # queued
    at_site = copy_job(group_a, source, add_repo(group_a, "m-far", "p3", site="far"))
    Job.objects.filter(pk=at_site.pk).update(site="far")

    text = Client().get("/metrics").content.decode()  # a probe has no certificate
    lines = set(text.splitlines())
    assert 'glint_jobs{kind="copy",state="done",site=""} 1' in lines
    assert 'glint_jobs{kind="copy",state="failed",site=""} 1' in lines
    assert 'glint_jobs{kind="copy",state="queued",site=""} 1' in lines
    assert 'glint_jobs{kind="delete",state="queued",site=""} 0' in lines
    assert 'glint_jobs{kind="copy",state="queued",site="far"} 1' in lines, "by site"
    assert 'glint_jobs{kind="copy",state="done",site="far"} 0' in lines, "each site every series"
    assert f"glint_copied_bytes_total {5 * MiB}" in lines, "only the verified copy's bytes"
    assert f'glint_copy_throughput_bytes_per_second_bucket{{le="{10 * MiB}"}} 0' in lines
    assert f'glint_copy_throughput_bytes_per_second_bucket{{le="{50 * MiB}"}} 1' in lines
    assert 'glint_copy_throughput_bytes_per_second_bucket{le="+Inf"} 1' in lines
    assert "glint_copy_throughput_bytes_per_second_count 1" in lines
    assert "glint_verification_failures_total 1" in lines
    assert "glint_repos{" in text, "the inventory's part is still there"
    assert done.image_name not in text and "m-source" not in text


def test_the_counters_do_not_go_down_when_jobs_are_deleted(group_a):
    source, target = add_repo(group_a, "k-source", "p1"), add_repo(group_a, "k-target", "p2")
    done = copy_job(group_a, source, target, state=states.DONE)
    _end(done, state="done", outcome="copied", bytes_done=3 * MiB, rate=5 * MiB)
    failed = copy_job(group_a, source, target, state=states.FAILED)
    _end(failed, state="failed", error_code="source_verification_failed")
    exists = copy_job(group_a, source, target, state=states.DONE)
    _end(exists, state="done", outcome="exists", bytes_done=7 * MiB)  # no byte was copied
    before = _metrics()
    assert before["glint_copied_bytes_total"] == 3 * MiB
    assert before["glint_verification_failures_total"] == 1
    assert before["glint_copy_throughput_bytes_per_second_count"] == 1

    Job.objects.all().delete()  # pruned, or removed with their group
    after = _metrics()
    assert {n: after[n] for n in COUNTERS} == {n: before[n] for n in COUNTERS}

    again = copy_job(group_a, source, target, state=states.DONE)
    _end(again, state="done", outcome="copied", bytes_done=2 * MiB, rate=2 * MiB)
    assert _metrics()["glint_copied_bytes_total"] == 5 * MiB, "counted on from where it was"


@pytest.mark.devcloud
@pytest.mark.django_db(transaction=True)
def test_a_finished_copy_raises_the_bytes_copied_and_the_rate_histogram(
    devcloud, group_a, repos, image_name
):
    upload(devcloud, "devcloud-1", image_name, 256 * 1024)
    poll_repos(repos)
    before = _metrics()
    job_id = plan_and_apply(
        group_a, make_user("Counted", group=group_a), image_name, repos[1], Action.COPY
    )
    assert run_in_process(job_id) == "done"
    after = _metrics()
    assert (
        after["glint_copied_bytes_total"] - before.get("glint_copied_bytes_total", 0) == 256 * 1024
    )
    count = "glint_copy_throughput_bytes_per_second_count"
    assert after[count] == before.get(count, 0) + 1
    assert after['glint_copy_throughput_bytes_per_second_bucket{le="+Inf"}'] == after[count]
    assert after["glint_verification_failures_total"] == before["glint_verification_failures_total"]
