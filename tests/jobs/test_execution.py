"""Jobs run by a worker in this process against the devcloud: the cloud is asked again right
before a delete, and every step from plan to job end leaves an audit record with the requester."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection

from glint.audit.models import AuditRecord
from glint.inventory.poller import poll_repos
from glint.jobs import execution
from glint.jobs import services as job_services
from glint.jobs.models import Job, JobTarget
from glint.matrix.planning import Change
from glint.plans import services as plans
from glint.plans.choices import Action
from tests.clients import make_user
from tests.jobs.helpers import run_in_process
from tests.jobs.images import MOVING, driver_for, images_named, upload
from tests.plans.helpers import row_of, version

pytestmark = [pytest.mark.devcloud, pytest.mark.django_db(transaction=True)]


def plan_and_apply(group, user, name: str, repo, action: str) -> int:
    """A person's plan of one cell change, applied; the one job it started."""
    plan = plans.create_plan(
        group, user, [Change(row_of(group, name).id, repo.pk, action)], version(group)
    )
    (job_id,) = plans.apply_plan(plan, user)
    return job_id


def test_a_delete_of_an_image_protected_after_planning_is_refused_and_the_image_stays(
    devcloud, group_a, repos, image_name
):
    two = repos[1]
    upload(devcloud, "devcloud-1", image_name, 64 * 1024, seed="same")
    doomed = upload(devcloud, "devcloud-2", image_name, 64 * 1024, seed="same")
    poll_repos(repos)
    member = make_user("Delete Member", group=group_a)
    job_id = plan_and_apply(group_a, member, image_name, two, Action.DELETE)

    with driver_for(devcloud, "devcloud-2") as cloud:
        cloud.set_properties(doomed, set={"protected": True})  # someone protects it after the plan
    try:
        assert run_in_process(job_id) == "failed"
        (target,) = Job.objects.get(pk=job_id).targets.all()
        assert target.error_code == "protected" and target.next_attempt_at is None
        assert target.error == f"image {doomed} is protected in devcloud-2: not deleted"
        assert [image.id for image in images_named(devcloud, image_name)["devcloud-2"]] == [doomed]
        end = AuditRecord.objects.get(action="job.end", details__job=job_id)
        assert (end.outcome, end.user_dn) == ("failed", member.dn)
    finally:
        with driver_for(devcloud, "devcloud-2") as cloud:
            cloud.set_properties(doomed, set={"protected": False})


def test_applying_a_plan_leaves_audit_records_with_the_requesters_dn(
    devcloud, group_a, repos, image_name
):
    two = repos[1]
    upload(devcloud, "devcloud-1", image_name, 64 * 1024)
    poll_repos(repos)
    member = make_user("Audited Member", group=group_a)
    job_id = plan_and_apply(group_a, member, image_name, two, Action.COPY)

    assert (
        run_in_process(job_id) == "done"
    )  # in this thread, with no request: the job names its requester

    records = {
        r.action: r
        for r in AuditRecord.objects.filter(action__in=("plan.apply", "job.copy", "job.end"))
    }
    assert {action: r.user_dn for action, r in records.items()} == dict.fromkeys(
        ("plan.apply", "job.copy", "job.end"), member.dn
    )
    applied = records["plan.apply"].details
    assert (applied["jobs"], applied["copies"], applied["deletes"], applied["refused"]) == (
        [job_id],
        1,
        0,
        0,
    )
    assert records["job.copy"].details["job"] == job_id and records["job.copy"].image == image_name
    assert (records["job.end"].outcome, records["job.end"].details["state"]) == ("ok", "done")


def test_a_cancel_that_lands_after_every_target_is_done_leaves_the_job_done(
    devcloud, group_a, repos, image_name, monkeypatch
):
    upload(devcloud, "devcloud-1", image_name, 64 * 1024)
    poll_repos(repos)
    member = make_user("Late Canceller", group=group_a)
    job_id = plan_and_apply(group_a, member, image_name, repos[1], Action.COPY)
    run_kind = execution.run_kind

    def copy_then_cancel(job, *args, **kwargs):
        # The person's cancel arrives between the last verified byte and the job's end: a
        # moment no real part can be made to hit on purpose, so the test puts it there.
        run_kind(job, *args, **kwargs)
        job_services.cancel(Job.objects.get(pk=job.pk), member)

    monkeypatch.setattr(execution, "run_kind", copy_then_cancel)
    assert run_in_process(job_id) == "done"
    job = Job.objects.get(pk=job_id)
    assert (job.error_code, job.error) == ("", "")
    assert [t.state for t in job.targets.all()] == ["done"]
    assert len(images_named(devcloud, image_name)["devcloud-2"]) == 1, "the copy is kept"


def test_a_cancel_made_in_the_process_that_runs_the_job_stops_it_at_once(
    devcloud, group_a, repos, image_name, monkeypatch
):
    """The worker looks at the job row for a cancel only now and then (here: never, within the
    test); a cancel made in the process that runs the job reaches it directly. The source hangs
    (frozen) so the copy cannot end by itself meanwhile."""
    monkeypatch.setattr(execution, "CANCEL_POLL_SECONDS", 600.0)
    upload(devcloud, "devcloud-1", image_name, MOVING)
    poll_repos(repos)
    member = make_user("Quick Canceller", group=group_a)
    job_id = plan_and_apply(group_a, member, image_name, repos[1], Action.COPY)
    ended: list[str] = []

    def run() -> None:
        try:
            ended.append(run_in_process(job_id))
        finally:
            connection.close()

    runner = threading.Thread(target=run, daemon=True)
    runner.start()
    deadline = time.monotonic() + 60
    while not JobTarget.objects.filter(job_id=job_id, bytes_done__gt=0).exists():
        assert time.monotonic() < deadline and runner.is_alive(), "the copy began writing"
        time.sleep(0.02)
    with devcloud.frozen("devcloud-1"):
        job_services.cancel(Job.objects.get(pk=job_id), member)
        runner.join(15)
        assert not runner.is_alive(), "the cancel stopped the job without waiting for a poll"
    assert ended == ["cancelled"]
    assert images_named(devcloud, image_name)["devcloud-2"] == [], "nothing is left behind"
