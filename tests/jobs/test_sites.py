"""Sites: repos at two sites, a ``glint worker --site`` for each, and a real Redis between them.

devcloud-1 is the source (no site), devcloud-2 is at site ``a`` and devcloud-3 at site ``b``, set
the way an operator would: ``glint repo import --site``. A copy to both is one job per site, and
each site's worker runs its own; a worker of another site never takes a site's job, even when the
site's only worker died with it.
"""

from __future__ import annotations

import time

import pytest
import redis

from tests.jobs.helpers import JOB_SETTINGS, celery_glint, target, writing
from tests.jobs.images import MOVING, images_named, upload
from tests.redis_server import running_redis

pytestmark = [pytest.mark.timeout(300), pytest.mark.devcloud]

SMALL = 4 * 2**20
SITES = {"devcloud-2": "a", "devcloud-3": "b"}


@pytest.fixture(scope="module")
def broker_url(tmp_path_factory):
    with running_redis(tmp_path_factory.mktemp("redis"), "sites-redis-7d2e") as url:
        yield url


@pytest.fixture(scope="module")
def live(devcloud, pki, tmp_path_factory, broker_url):
    data_dir = tmp_path_factory.mktemp("sites-glint")
    yield from celery_glint(devcloud, pki, data_dir, broker_url, SITES)


def site_queues(broker: str) -> dict[str, list[str]]:
    """How many messages wait in each queue (the default one and the two sites')."""
    client = redis.Redis.from_url(broker, socket_timeout=5)
    try:
        return {queue: client.llen(queue) for queue in ("celery", "glint.site.a", "glint.site.b")}
    finally:
        client.close()


def finished(job: dict) -> bool:
    return job["state"] not in ("queued", "running")


def test_a_copy_to_two_sites_runs_each_site_s_targets_on_that_site_s_worker(
    devcloud, live, api, workers, broker_url, image_name
):
    upload(devcloud, "devcloud-1", image_name, SMALL)
    jobs = api.copy_jobs(image_name, ("devcloud-2", "devcloud-3"))

    assert len(jobs) == 2, "one job per site"
    by_site = {api.job(job_id)["site"]: job_id for job_id in jobs}
    assert set(by_site) == {"a", "b"}
    assert site_queues(broker_url) == {"celery": 0, "glint.site.a": 1, "glint.site.b": 1}, (
        "each job waits in its site's queue"
    )

    worker_a, worker_b = workers.start("--site", "a"), workers.start("--site", "b")
    for site, worker in (("a", worker_a), ("b", worker_b)):
        job = api.wait(by_site[site], finished, timeout=120, what="finished")
        assert job["state"] == "done", job
        (only,) = job["targets"]
        assert only["repo_name"] == {"a": "devcloud-2", "b": "devcloud-3"}[site]
        assert only["ran_by"] == workers.name(worker), "the job records who ran it"
    runners = {w["name"]: w["sites"] for w in api.get("workers/")}
    assert runners == {workers.name(worker_a): ["a"], workers.name(worker_b): ["b"]}


def test_kill_9_of_a_site_s_worker_waits_for_another_worker_of_that_site(
    devcloud, live, api, workers, image_name
):
    first_a, worker_b = workers.start("--site", "a"), workers.start("--site", "b")
    upload(devcloud, "devcloud-1", image_name, MOVING)
    (job_id,) = api.copy_jobs(image_name, ("devcloud-2",))
    api.wait(job_id, writing, timeout=60, what="writing")

    with devcloud.frozen("devcloud-1"):  # the source hangs: the copy cannot end meanwhile
        workers.kill(first_a)
    # Site b's worker sweeps the expired lease and sends the job again, to site a's queue.
    time.sleep(3 * float(JOB_SETTINGS["GLINT_JOB_LEASE_SECONDS"]))
    job = api.job(job_id)
    assert job["state"] in ("queued", "running") and job["attempts"] == 1, (
        "no worker of another site took the job"
    )

    second_a = workers.start("--site", "a")
    job = api.wait(job_id, finished, timeout=180, what="finished")
    assert job["state"] == "done" and job["attempts"] >= 2, job
    assert target(job, "devcloud-2")["ran_by"] == workers.name(second_a)
    assert workers.name(worker_b) not in str(job)
    found = images_named(devcloud, image_name)
    assert [i.status for i in found["devcloud-2"]] == ["active"], "one verified copy, no leftover"
    assert found["devcloud-2"][0].checksum == found["devcloud-1"][0].checksum
