"""Jobs on the real ``glint serve`` against the devcloud: crashes, outages, cancel, retry, secrets.

Images here are 96 MiB (generated on the fly) where a test must act while bytes are moving, small
otherwise.
"""

from __future__ import annotations

import pytest

from tests.jobs.helpers import target, writing
from tests.jobs.images import (
    MOVING,
    assert_one_verified_copy_each,
    images_named,
    upload,
)

pytestmark = pytest.mark.devcloud


def test_kill_9_mid_copy_then_restart_ends_done_with_one_copy_each(devcloud, live, api, image_name):
    upload(devcloud, "devcloud-1", image_name, MOVING)
    job_id = api.copy(image_name, ("devcloud-2", "devcloud-3"))
    api.wait(job_id, writing, what="writing")

    with devcloud.frozen("devcloud-1"):  # the source hangs: the copy cannot end meanwhile
        live.server.process.kill()  # SIGKILL: no clean-up code runs
        live.server.process.wait()
    assert {t[0] for t in live.server.query("SELECT state FROM jobs_job WHERE id = ?", job_id)} == {
        "running"
    }

    live.restart()
    job = api.wait(
        job_id, lambda j: j["state"] not in ("queued", "running"), timeout=180, what="finished"
    )
    assert job["state"] == "done", job
    assert job["attempts"] >= 2, "the job ran again after the restart"
    assert_one_verified_copy_each(devcloud, image_name)


def test_a_stopped_target_retries_and_succeeds_after_it_is_started(devcloud, live, api, image_name):
    upload(devcloud, "devcloud-1", image_name, MOVING)
    job_id = api.copy(image_name, ("devcloud-2", "devcloud-3"))
    api.wait(job_id, lambda j: writing(j, "devcloud-3"), what="writing to devcloud-3")
    with devcloud.frozen("devcloud-1"):  # the source hangs: devcloud-3's copy cannot end first
        devcloud.stop("devcloud-3")
    try:
        job = api.wait(job_id, lambda j: j["state"] == "partial", timeout=120, what="partial")
        assert target(job, "devcloud-2")["state"] == "done", "the other target finished meanwhile"
        stopped = target(job, "devcloud-3")
        assert stopped["state"] == "failed" and stopped["next_attempt_at"], (
            "it waits for an automatic retry"
        )
        assert job["next_attempt_at"], "the job says it will try again"
        done_copy = target(job, "devcloud-2")
        # devcloud-2's verified copy carries Glint's sha256, which became the row's content key
        # after the job was planned: the matrix must still show devcloud-3 at work, not absent.
        row, _version = api.row(image_name, holders=("devcloud-1", "devcloud-2"))
        assert row["content_key"].startswith("sha256:"), row["content_key"]
        waiting = next(cell for cell in row["cells"] if cell["repo"] == api.repos["devcloud-3"])
        assert waiting["state"] in ("queued", "copying", "verifying", "failed"), waiting
    finally:
        devcloud.start("devcloud-3")

    job = api.wait(job_id, lambda j: j["state"] == "done", timeout=120, what="done")
    assert target(job, "devcloud-3")["attempts"] > 1, "devcloud-3 was retried"
    kept = target(job, "devcloud-2")
    assert (kept["attempts"], kept["image_id"]) == (1, done_copy["image_id"]), (
        "the done target was not redone"
    )
    assert_one_verified_copy_each(devcloud, image_name)


def test_cancel_stops_promptly_and_leaves_nothing_then_retry_copies(
    devcloud, live, api, image_name
):
    upload(devcloud, "devcloud-1", image_name, MOVING)
    job_id = api.copy(image_name, ("devcloud-2", "devcloud-3"))
    api.wait(job_id, writing, what="writing")

    # The source hangs mid-read (frozen, its connection open): the copy cannot end before the
    # cancel reaches it, and the cancel must not wait for the read timeout either.
    with devcloud.frozen("devcloud-1"):
        api.post(f"jobs/{job_id}/cancel/")
        job = api.wait(job_id, lambda j: j["state"] == "cancelled", timeout=15, what="cancelled")
    assert {t["state"] for t in job["targets"]} == {"cancelled"}
    found = images_named(devcloud, image_name)
    assert (len(found["devcloud-1"]), found["devcloud-2"], found["devcloud-3"]) == (1, [], []), (
        found
    )
    assert api.call("POST", f"jobs/{job_id}/cancel/").status_code == 409, (
        "a cancelled job cannot be cancelled"
    )

    api.post(f"jobs/{job_id}/retry/")
    job = api.wait(
        job_id, lambda j: j["state"] not in ("queued", "running"), timeout=120, what="finished"
    )
    assert job["state"] == "done", job
    assert_one_verified_copy_each(devcloud, image_name)


def test_jobs_list_filters_and_other_groups_see_nothing(live, api, pki):
    jobs = api.get("jobs/", group=api.group)["results"]
    assert jobs, "the tests above left jobs"
    assert api.get("jobs/", group=api.group, state="done")["count"] <= len(jobs)
    assert all(j["state"] == "cancelled" for j in api.get("jobs/", state="cancelled")["results"])
    by_repo = api.get("jobs/", repo=api.repos["devcloud-3"])["results"]
    assert by_repo and all(
        any(t["repo_name"] == "devcloud-3" for t in j["targets"]) for j in by_repo
    )
    assert api.call("GET", "jobs/", params={"state": "exploded"}).status_code == 400

    outsider = live.server.add_user("Jobs Outsider", "--group", "browser-other")
    _cert, _key, pem = pki.person("Jobs Outsider")
    assert outsider
    import requests

    seen = requests.get(
        f"{live.url}/api/v1/jobs/", cert=str(pem), verify=str(pki.ca_file), timeout=30
    )
    assert seen.status_code == 200 and seen.json()["count"] == 0
    detail = requests.get(
        f"{live.url}/api/v1/jobs/{jobs[0]['id']}/",
        cert=str(pem),
        verify=str(pki.ca_file),
        timeout=30,
    )
    assert detail.status_code == 404
    cancel = requests.post(
        f"{live.url}/api/v1/jobs/{jobs[0]['id']}/retry/",
        cert=str(pem),
        verify=str(pki.ca_file),
        timeout=30,
    )
    assert cancel.status_code == 404


def test_job_rows_and_api_hold_no_secret(devcloud, live, api):
    secrets = {
        devcloud.cloud_config(c)["auth"]["password"]
        for c in ("devcloud-1", "devcloud-2", "devcloud-3")
    }
    rows = repr(live.server.query("SELECT * FROM jobs_job")) + repr(
        live.server.query("SELECT * FROM jobs_jobtarget")
    )
    listing = api.call("GET", "jobs/").text
    assert "jobs-" in rows and "jobs-" in listing, "there are job rows to look at"
    for secret in secrets:
        assert secret not in rows and secret not in listing


def test_the_cluster_lists_the_server_s_own_job_runner(live, api):
    """The running server's runner is listed alive (a server killed earlier in this module may be
    listed too, until its heartbeats are missed)."""
    runners = {r["pid"]: r for r in api.get("workers/")}
    mine = runners[live.server.process.pid]
    assert mine["kind"] == "embedded" and mine["alive"]
