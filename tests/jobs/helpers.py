"""Helpers of the job tests, shared with other test packages that run jobs (uploads, plans):
settings for a live server, an API client for it, and running a job in this process."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import requests

from glint.jobs import states
from tests.jobs.images import delete_named
from tests.live import LIVE_GROUP, run_glint, start_live_glint
from tests.postgres import live_database

#: Short back-offs and leases, so retries and crash recovery happen within a test's patience.
JOB_SETTINGS = {
    "GLINT_JOB_RETRY_BASE": "1",
    "GLINT_JOB_RETRY_MAX": "2",
    "GLINT_JOB_RETRY_LIMIT": "40",
    "GLINT_JOB_LEASE_SECONDS": "3",
}
CLOUDS = ("devcloud-1", "devcloud-2", "devcloud-3")


class LiveAPI:
    """The REST API of ``live`` as the admin of its group (follows the server across restarts)."""

    def __init__(self, live, pki, group_name: str = LIVE_GROUP):
        self.live, self.pki = live, pki
        self.group = next(
            g["id"] for g in self.get("groups/")["results"] if g["name"] == group_name
        )
        self.repos = {r["name"]: r["id"] for r in self.get("repos/", group=self.group)["results"]}

    def call(self, method: str, path: str, **kwargs) -> requests.Response:
        return requests.request(
            method,
            f"{self.live.url}/api/v1/{path}",
            cert=str(self.live.cert_file),
            verify=str(self.pki.ca_file),
            timeout=30,
            **kwargs,
        )

    def get(self, path: str, **params) -> dict:
        response = self.call("GET", path, params=params)
        assert response.status_code == 200, response.text
        return response.json()

    def post(self, path: str, body: dict | None = None, expect: int = 202) -> dict:
        response = self.call("POST", path, json=body or {})
        assert response.status_code == expect, response.text
        return response.json()

    def row(
        self, name: str, holders: tuple[str, ...] = ("devcloud-1",), timeout: float = 60
    ) -> tuple[dict, str]:
        """The matrix row called ``name`` once ``holders`` list it (polling as needed), and the
        version."""
        self.post(f"groups/{self.group}/refresh/")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            listing = self.get("images/", group=self.group, q=name, hidden="all")
            for row in listing["results"]:
                held = {cell["repo"] for cell in row["cells"] if cell["copies"]}
                # verifiable: a poll that met the upload unfinished listed it without a hash
                if (
                    row["name"] == name
                    and row["verifiable"]
                    and {self.repos[h] for h in holders} <= held
                ):
                    return row, listing["inventory_version"]
            time.sleep(0.5)
        raise AssertionError(f"{name} never appeared in {holders}")

    def copy(
        self, name: str, targets: tuple[str, ...], holders: tuple[str, ...] = ("devcloud-1",)
    ) -> int:
        """Plan and apply a copy of row ``name`` (once ``holders`` list it) to ``targets``;
        returns the job id."""
        (job_id,) = self.copy_jobs(name, targets, holders)
        return job_id

    def copy_jobs(
        self, name: str, targets: tuple[str, ...], holders: tuple[str, ...] = ("devcloud-1",)
    ) -> list[int]:
        """Plan and apply a copy of row ``name`` to ``targets``; returns the jobs' ids (one per
        site of the targets)."""
        row, version = self.row(name, holders)
        plan = self.post(
            "plans/",
            {
                "group": self.group,
                "inventory_version": version,
                "changes": [
                    {"row": row["id"], "repo": self.repos[t], "action": "copy"} for t in targets
                ],
            },
            expect=201,
        )
        assert all(item["status"] == "planned" for item in plan["items"]), plan["items"]
        return self.post(f"plans/{plan['id']}/apply/")["jobs"]

    def job(self, job_id: int) -> dict:
        return self.get(f"jobs/{job_id}/")

    def wait(self, job_id: int, ready, timeout: float = 120, what: str = "") -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = self.job(job_id)
            if ready(job):
                return job
            time.sleep(0.2)
        raise AssertionError(f"job {job_id} never became {what or 'ready'}: {job}")


def run_in_process(job_id: int) -> str:
    """Claim and run a job here, as a worker thread of ``glint serve`` does; its final state.

    Needs ``django_db(transaction=True)``: the worker's lease thread has its own connection.
    """
    from glint.jobs import claims, execution
    from glint.jobs.models import Job

    assert claims.claim(Job.objects.get(pk=job_id), "test-worker"), "another worker has the job"
    return execution.run_claimed(job_id, "test-worker")


def fresh_image_name(devcloud, prefix: str) -> Iterator[str]:
    """A fresh image name (for a fixture to yield); every image of that name is deleted from
    every cloud afterwards."""
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    yield name
    delete_named(devcloud, name)


def target(job: dict, repo_name: str) -> dict:
    return next(t for t in job["targets"] if t["repo_name"] == repo_name)


def writing(job: dict, repo_name: str | None = None) -> bool:
    """Bytes have reached a target (``repo_name``, or any)."""
    return any(
        t["bytes_done"] > 0 and t["state"] == "writing"
        for t in job["targets"]
        if repo_name in (None, t["repo_name"])
    )


def copy_job(group, source, target_repo, state=states.QUEUED):
    """A copy job row from ``source`` to ``target_repo`` (nothing is run)."""
    from glint.jobs.models import Job, JobTarget

    job = Job.objects.create(
        kind=states.COPY,
        group=group,
        source_repo=source,
        source_image_id="image-1",
        image_name="limits",
        row_key="limits",
        state=state,
    )
    JobTarget.objects.create(job=job, repo=target_repo, repo_name=target_repo.name)
    return job


def celery_glint(devcloud, pki, data_dir, broker_url: str, repos: dict[str, str], **settings):
    """A live ``glint serve`` (``tests.live.start_live_glint``, source devcloud-1) whose jobs go
    to Celery on ``broker_url``, on a fresh PostgreSQL database when the run has one (as a site
    would run it), with the devcloud clouds in ``repos`` imported into the live group at their
    site ("": none), as an operator does it: ``glint repo import --site``."""
    with live_database() as database:
        env = {
            "GLINT_JOB_RUNNER": "celery",
            "GLINT_BROKER_URL": broker_url,
            **JOB_SETTINGS,
            **settings,
            **database,
        }
        for live in start_live_glint(devcloud, pki, data_dir, clouds=("devcloud-1",), **env):
            for cloud, site in repos.items():
                result = run_glint(
                    live.server.data_dir,
                    *("repo", "import", str(devcloud.clouds_yaml), "--group", LIVE_GROUP),
                    *("--cloud", cloud, *(("--site", site) if site else ())),
                    **env,
                )
                assert result.returncode == 0, result.stderr
            yield live
