"""The distributed runner: a real ``glint serve`` (GLINT_JOB_RUNNER=celery) sends job ids through a
real Redis, and real ``glint worker`` processes, sharing its data directory and database, run them.

Redis runs on 127.0.0.1 with a password, so the tests also see that no log shows it.
"""

from __future__ import annotations

import base64
import json
import subprocess
import time

import pytest
import redis

from glint.jobs import states
from tests.jobs.helpers import CLOUDS, JOB_SETTINGS, copy_job, target, writing
from tests.jobs.images import (
    MOVING,
    assert_one_verified_copy_each,
    images_named,
    upload,
)
from tests.live import GLINT, free_port, glint_env, run_glint, start_live_glint
from tests.plans.helpers import add_repo
from tests.postgres import live_database
from tests.redis_server import running_redis_server

pytestmark = pytest.mark.timeout(300)

REDIS_PASSWORD = "redis-secret-4f1c"
SMALL = 4 * 2**20
# seconds in which glint serve's own threads would have claimed a job (they look every second)
IDLE = 4


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    """A throw-away redis-server on a free 127.0.0.1 port (no persistence), killed afterwards."""
    with running_redis_server(tmp_path_factory.mktemp("redis"), REDIS_PASSWORD) as server:
        yield server


@pytest.fixture(scope="module")
def broker_url(broker):
    return broker.url


@pytest.fixture(scope="module")
def live(devcloud, pki, tmp_path_factory, broker_url):
    """``glint serve`` that sends its jobs to the broker and runs none itself (on PostgreSQL when
    the run has one, as a site would)."""
    with live_database() as database:
        yield from start_live_glint(
            devcloud,
            pki,
            tmp_path_factory.mktemp("celery-glint"),
            clouds=CLOUDS,
            GLINT_JOB_RUNNER="celery",
            GLINT_BROKER_URL=broker_url,
            **JOB_SETTINGS,
            **database,
        )


def queued_messages(broker: str) -> list[str]:
    """The bodies of the task messages waiting in the broker's default queue, decoded."""
    client = redis.Redis.from_url(broker, socket_timeout=5)
    try:
        return [
            base64.b64decode(json.loads(raw)["body"]).decode()
            for raw in client.lrange("celery", 0, -1)
        ]
    finally:
        client.close()


@pytest.mark.devcloud
def test_serve_only_sends_the_job_id_and_a_worker_carries_out_the_copy(
    devcloud, live, api, workers, broker_url, image_name
):
    upload(devcloud, "devcloud-1", image_name, SMALL)
    job_id = api.copy(image_name, ("devcloud-2", "devcloud-3"))

    time.sleep(IDLE)
    job = api.job(job_id)
    assert (job["state"], job["attempts"]) == ("queued", 0), "glint serve ran the job itself"
    messages = queued_messages(broker_url)
    assert [json.loads(body)[:2] for body in messages] == [[[job_id], {}]], (
        "the message is the job id, nothing else"
    )
    secrets = {devcloud.cloud_config(c)["auth"]["password"] for c in CLOUDS}
    assert not any(secret in body for secret in secrets for body in messages)

    workers.start()
    job = api.wait(
        job_id, lambda j: j["state"] not in ("queued", "running"), timeout=120, what="finished"
    )
    assert job["state"] == "done", job
    assert {t["state"] for t in job["targets"]} == {"done"}
    assert_one_verified_copy_each(devcloud, image_name)
    assert "Task glint.jobs.run[" in workers.logs(), "the worker ran it"
    assert REDIS_PASSWORD not in live.server.log() + workers.logs(), (
        "a log shows the broker password"
    )
    runners = {w["kind"]: w for w in api.get("workers/")}
    assert set(runners) == {"celery"}, "the web server runs no job, the worker beats"
    assert runners["celery"]["alive"] and runners["celery"]["name"].startswith("glint-")


@pytest.mark.devcloud
def test_kill_9_of_the_worker_mid_copy_then_a_new_worker_finishes_with_one_copy_each(
    devcloud, live, api, workers, image_name
):
    first = workers.start()
    upload(devcloud, "devcloud-1", image_name, MOVING)
    job_id = api.copy(image_name, ("devcloud-2", "devcloud-3"))
    api.wait(job_id, writing, timeout=60, what="writing")

    with devcloud.frozen("devcloud-1"):  # the source hangs: the copy cannot end meanwhile
        workers.kill(first)
    job = api.job(job_id)
    assert job["state"] == "running" and any(
        target(job, c)["state"] != "done" for c in ("devcloud-2", "devcloud-3")
    )

    workers.start()  # its beat sweeps the expired lease and sends the job again
    job = api.wait(
        job_id, lambda j: j["state"] not in ("queued", "running"), timeout=180, what="finished"
    )
    assert job["state"] == "done", job
    assert job["attempts"] >= 2, "the job ran again after the kill"
    assert_one_verified_copy_each(devcloud, image_name)
    assert all(len(images) == 1 for images in images_named(devcloud, image_name).values()), (
        "a duplicate image"
    )


@pytest.mark.devcloud
def test_the_broker_down_for_10_s_during_a_run_loses_no_job_and_runs_none_twice(
    devcloud, live, api, workers, broker, image_name
):
    workers.start()
    upload(devcloud, "devcloud-1", image_name, MOVING)
    running = api.copy(image_name, ("devcloud-2",))
    api.wait(running, writing, timeout=60, what="writing")

    broker.stop()
    down_at = time.monotonic()
    asked_while_down = api.copy(image_name, ("devcloud-3",))  # committed; its message is lost
    assert api.job(asked_while_down)["state"] == "queued"
    time.sleep(max(0.0, down_at + 10 - time.monotonic()))
    broker.start()

    # The running copy went on; the workers' periodic re-send brings the other one.
    for job_id in (running, asked_while_down):
        job = api.wait(
            job_id, lambda j: j["state"] not in ("queued", "running"), timeout=240, what="finished"
        )
        assert (job["state"], job["attempts"]) == ("done", 1), job
    assert_one_verified_copy_each(devcloud, image_name)
    assert f"job {asked_while_down}: not sent to the broker" in live.server.log()


def test_glint_worker_refuses_the_embedded_runner_and_an_unreachable_broker(tmp_path):
    embedded = run_glint(tmp_path, "worker")
    assert embedded.returncode != 0 and "GLINT_JOB_RUNNER=celery" in embedded.stderr, (
        embedded.stderr
    )

    closed = f"redis://:{REDIS_PASSWORD}@127.0.0.1:{free_port()}/0"
    result = subprocess.run(
        [GLINT, "worker"],
        env=glint_env(tmp_path, GLINT_JOB_RUNNER="celery", GLINT_BROKER_URL=closed),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (
        result.returncode != 0 and "cannot reach the broker redis://:***@127.0.0.1" in result.stderr
    ), result.stderr
    assert REDIS_PASSWORD not in result.stdout + result.stderr

    missing = subprocess.run(
        [GLINT, "worker"],
        env=glint_env(tmp_path, GLINT_JOB_RUNNER="celery"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert missing.returncode != 0 and "needs GLINT_BROKER_URL" in missing.stderr, missing.stderr


@pytest.mark.django_db
def test_the_task_keeps_the_repo_limits_and_ignores_jobs_that_are_not_claimable(
    group_a, settings, caplog
):
    from glint.jobs.celery import LIMIT_RETRIES, LIMIT_RETRY_SECONDS, run_job

    settings.GLINT_JOB_PER_REPO_LIMIT = 1
    source, busy_target = (
        add_repo(group_a, "limit-source", "p1"),
        add_repo(group_a, "limit-target", "p2"),
    )
    copy_job(group_a, add_repo(group_a, "other-source", "p3"), busy_target, state=states.RUNNING)
    waiting = copy_job(group_a, source, busy_target)

    with caplog.at_level("INFO", logger="celery.app.trace"):
        assert run_job.apply((waiting.pk,)).get() is None  # eagerly, the retries follow at once
    retries = [r for r in caplog.records if f"Retry in {LIMIT_RETRY_SECONDS}s" in r.getMessage()]
    assert len(retries) == LIMIT_RETRIES, (
        "over the limit, Celery tries the message again later, then gives up"
    )
    waiting.refresh_from_db()
    assert (waiting.state, waiting.attempts) == (states.QUEUED, 0), "nothing claimed the job"

    ended = copy_job(group_a, source, add_repo(group_a, "free-target", "p4"), state=states.DONE)
    assert run_job.apply((ended.pk,)).get() is None
    ended.refresh_from_db()
    assert (ended.state, ended.attempts) == (states.DONE, 0), (
        "a late or duplicate message is a no-op"
    )
