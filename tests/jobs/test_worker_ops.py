"""One ``glint worker --site a --site b`` with ``GLINT_LOG_FORMAT=json``, a real Redis and the
devcloud: it runs the jobs of both sites and of none; its lines are JSON and name the job, its
requester and its repos; no line of the worker or of ``glint serve`` holds a secret (cloud
password, application credential secret, a subscription's token, a session cookie, the broker's
password); the workers API and the cluster page show each worker's last heartbeat.
"""

from __future__ import annotations

import datetime
import json

import pytest
import redis
import requests

from tests.jobs.helpers import celery_glint
from tests.jobs.images import driver_for, upload
from tests.live import DN_PREFIX, LIVE_ADMIN_CN, free_port
from tests.redis_server import running_redis

pytestmark = [pytest.mark.timeout(300), pytest.mark.devcloud]

REDIS_PASSWORD = "ops-redis-91ac"
#: Target repo → its site ("": none, the default queue). devcloud-3-appcred signs in with an
#: application credential, the others with a password.
TARGETS = {"devcloud-2": "a", "devcloud-3-appcred": "b", "devcloud-3-p2": ""}
TOKEN = "list-user:list-token-5be0"
URL_SECRET = "url-secret-77d1"
COOKIE = "session-cookie-c0ffee4a"


@pytest.fixture(scope="module")
def broker_url(tmp_path_factory):
    with running_redis(tmp_path_factory.mktemp("redis"), REDIS_PASSWORD) as url:
        yield url


@pytest.fixture(scope="module")
def live(devcloud, pki, tmp_path_factory, broker_url):
    data_dir = tmp_path_factory.mktemp("ops-glint")
    yield from celery_glint(
        devcloud,
        pki,
        data_dir,
        broker_url,
        TARGETS,
        GLINT_LOG_FORMAT="json",
        GLINT_FETCH_ALLOW_CIDRS="127.0.0.0/8",  # the list URL of the subscription test
    )


@pytest.fixture
def image_name(image_name, devcloud):
    """As tests/jobs/conftest.py's, and also deleted from devcloud-3-p2."""
    yield image_name
    with driver_for(devcloud, "devcloud-3-p2") as driver:
        for record in driver.list_images():
            if record.name == image_name:
                driver.delete(record.id)


def json_lines(text: str) -> tuple[list[dict], list[str]]:
    """The log's JSON lines, and its other lines that look like log lines (Celery's banner is
    printed, not logged, so it is left out)."""
    parsed, other = [], []
    for line in text.splitlines():
        if line.startswith("{"):
            parsed.append(json.loads(line))
        elif "INFO" in line or "WARNING" in line or "ERROR" in line:
            other.append(line)
    return parsed, other


def secrets(devcloud) -> set[str]:
    clouds = {c: devcloud.cloud_config(c)["auth"] for c in ("devcloud-1", *TARGETS)}
    found = {auth["password"] for auth in clouds.values() if "password" in auth}
    found.add(clouds["devcloud-3-appcred"]["application_credential_secret"])
    assert len(found) == 4, "every repo's secret is known to the test"
    return found | {REDIS_PASSWORD, TOKEN, TOKEN.split(":")[1], URL_SECRET, COOKIE}


def test_a_worker_of_two_sites_runs_their_jobs_and_the_default_queues_in_json(
    devcloud, live, api, workers, broker_url, image_name
):
    worker = workers.start("--site", "a", "--site", "b")
    upload(devcloud, "devcloud-1", image_name, 2**20)
    jobs = api.copy_jobs(image_name, tuple(TARGETS))
    assert len(jobs) == 3, "one job per site, and one of no site"
    ended = {
        job_id: api.wait(job_id, lambda j: j["state"] not in ("queued", "running"), what="ended")
        for job_id in jobs
    }
    by_site = {job["site"]: job for job in ended.values()}
    assert set(by_site) == {"a", "b", ""}, ended
    for job in ended.values():
        assert job["state"] == "done", job
        assert {t["ran_by"] for t in job["targets"]} == {workers.name(worker)}, job
    client = redis.Redis.from_url(broker_url, socket_timeout=5)
    try:
        assert [client.llen(q) for q in ("celery", "glint.site.a", "glint.site.b")] == [0, 0, 0]
    finally:
        client.close()

    lines, plain = json_lines(workers.logs())
    assert not plain, f"the worker logged lines that are not JSON: {plain[:5]}"
    assert any("Task glint.jobs.run[" in line["message"] for line in lines), "Celery's own too"
    admin_dn = f"{DN_PREFIX}{LIVE_ADMIN_CN}"
    for job_id, job in ended.items():
        about = [line for line in lines if line.get("job") == job_id]
        assert about, f"no line names job {job_id}"
        assert all(line["dn"] == admin_dn for line in about), about
        target_repo = api.repos[job["targets"][0]["repo_name"]]
        assert all({api.repos["devcloud-1"], target_repo} <= set(line["repos"]) for line in about)
    text = workers.logs() + live.server.log()
    assert not [s for s in secrets(devcloud) if s in text], "a log holds a secret"


def test_requests_with_a_token_and_a_cookie_log_json_with_request_ids_and_no_secret(
    devcloud, live, api, pki
):
    closed = free_port()  # the list's host does not answer: the refresh fails, and logs why
    created = api.post(
        "subscriptions/",
        {
            "group": api.group,
            "name": "logged-list",
            "url": f"https://list-user:{URL_SECRET}@127.0.0.1:{closed}/list.json?key={URL_SECRET}",
            "token": TOKEN,
            "endorser_dn": "/C=CA/O=Glint Test Grid/CN=Image Publisher",
            "endorser_ca": "/C=CA/O=Glint Test Grid/CN=Glint Test CA",
            "targets": [api.repos["devcloud-2"]],
        },
        expect=201,
    )
    api.post(f"subscriptions/{created['id']}/refresh/", expect=200)
    for method in ("GET", "POST"):  # the POST fails the CSRF check, which Django logs
        requests.request(
            method,
            f"{live.url}/jobs/workers/",
            headers={"Cookie": f"sessionid={COOKIE}; csrftoken={COOKIE}"},
            cert=str(live.cert_file),
            verify=str(pki.ca_file),
            timeout=30,
        )

    log = live.server.log()
    lines, plain = json_lines(log)
    assert not plain, f"glint serve logged lines that are not JSON: {plain[:5]}"
    about_requests = [line for line in lines if "request_id" in line]
    assert about_requests and all(line["request_id"] for line in about_requests)
    csrf = [line for line in lines if line["logger"] == "django.security.csrf"]
    assert csrf and all(line.get("request_id") for line in csrf), lines[-5:]
    assert not [s for s in secrets(devcloud) if s in log], "a log holds a secret"


def test_the_workers_api_and_the_cluster_page_show_the_last_heartbeat(live, api, workers, pki):
    worker = workers.start("--site", "a")
    (listed,) = [w for w in api.get("workers/") if w["name"] == workers.name(worker)]
    seen = datetime.datetime.fromisoformat(listed["last_seen"])
    age = datetime.datetime.now(datetime.UTC) - seen
    assert datetime.timedelta(0) <= age < datetime.timedelta(seconds=30), listed
    assert listed["alive"] and listed["sites"] == ["a"]
    page = requests.get(
        f"{live.url}/jobs/workers/", cert=str(live.cert_file), verify=str(pki.ca_file), timeout=30
    )
    assert page.status_code == 200 and workers.name(worker) in page.text
    assert " ago" in page.text.split(workers.name(worker), 1)[1].split("</tr>", 1)[0]
