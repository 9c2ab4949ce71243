"""``/metrics`` counts the jobs by kind, state and site, the bytes copied and verified, each copy's
rate in a histogram, and verification failures, naming no image and no person."""

from __future__ import annotations

import pytest
from django.test import Client

from glint.jobs import states
from glint.jobs.models import Job, JobTarget
from tests.jobs.helpers import copy_job
from tests.plans.helpers import add_repo

pytestmark = pytest.mark.django_db

MiB = 2**20


def test_metrics_count_jobs_bytes_rates_and_verification_failures(group_a):
    source, target = add_repo(group_a, "m-source", "p1"), add_repo(group_a, "m-target", "p2")
    done = copy_job(group_a, source, target, state=states.DONE)
    JobTarget.objects.filter(job=done).update(
        state="done", outcome="copied", bytes_done=5 * MiB, bytes_total=5 * MiB, rate=20 * MiB
    )
    failed = copy_job(group_a, source, target, state=states.FAILED)
    JobTarget.objects.filter(job=failed).update(
        state="failed", error_code="target_verification_failed", bytes_done=MiB
    )
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
