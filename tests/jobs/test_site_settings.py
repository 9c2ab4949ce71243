"""What a person sets and sees about sites: a repo's site (a queue's name, so refused when it
cannot be one), where a group's copies run, ``glint worker --site``, and a job page that says
when no worker of the job's site is running."""

from __future__ import annotations

import datetime

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from glint.jobs.models import Job, Worker
from tests.clients import client_for, make_user
from tests.jobs.helpers import copy_job
from tests.live import run_glint
from tests.plans.helpers import add_repo
from tests.repos.helpers import post_json

BAD_SITE = "CERN Meyrin"


@pytest.mark.django_db
def test_a_site_that_cannot_name_a_queue_is_refused_with_the_reason(group_a):
    repo = add_repo(group_a, "r-site", "p1")
    manager = client_for(make_user("Site Manager", group=group_a, role="manager"))

    response = post_json(manager, f"/api/v1/repos/{repo.pk}/", {"site": BAD_SITE}, "patch")

    assert response.status_code == 400
    assert "letters, digits, dots, dashes and underscores" in response.json()["site"][0]
    repo.refresh_from_db()
    assert repo.site == ""


@pytest.mark.django_db
def test_an_admin_sets_where_a_group_s_copies_run(group_a):
    admin = client_for(make_user("Site Admin", admin=True))

    response = post_json(
        admin, f"/api/v1/groups/{group_a.pk}/", {"copies_run_at": "source"}, "patch"
    )
    assert response.status_code == 200, response.content
    group_a.refresh_from_db()
    assert group_a.copies_run_at == "source"
    assert (
        post_json(
            admin, f"/api/v1/groups/{group_a.pk}/", {"copies_run_at": "anywhere"}, "patch"
        ).status_code
        == 400
    )

    page = admin.post(
        f"/accounts/groups/{group_a.pk}/edit/", {"name": "alpha", "copies_run_at": "target"}
    )
    assert page.status_code == 302
    group_a.refresh_from_db()
    assert group_a.copies_run_at == "target"


@pytest.mark.django_db
def test_the_job_page_says_when_no_worker_of_its_site_runs(group_a):
    source, far = add_repo(group_a, "s-src", "p1"), add_repo(group_a, "s-far", "p2", site="far")
    job = copy_job(group_a, source, far)
    Job.objects.filter(pk=job.pk).update(site="far")
    member = client_for(make_user("Site Member", group=group_a))
    warning = "no worker of site far is running"

    assert warning in member.get(f"/jobs/{job.pk}/").content.decode()

    long_ago = timezone.now() - datetime.timedelta(minutes=5)
    Worker.objects.create(name="glint-1@gone", kind="celery", host="gone", pid=1, sites=["far"])
    Worker.objects.filter(name="glint-1@gone").update(last_seen=long_ago)
    assert warning in member.get(f"/jobs/{job.pk}/").content.decode(), "a gone worker runs nothing"

    Worker.objects.create(name="glint-2@near", kind="celery", host="near", pid=2, sites=["near"])
    assert warning in member.get(f"/jobs/{job.pk}/").content.decode(), "another site's worker"

    Worker.objects.create(name="glint-3@far", kind="celery", host="far", pid=3, sites=["far"])
    page = member.get(f"/jobs/{job.pk}/").content.decode()
    assert warning not in page and "<dt>Site</dt><dd>far" in page


def test_glint_worker_refuses_a_site_that_cannot_name_a_queue(tmp_path):
    result = run_glint(tmp_path, "worker", "--site", BAD_SITE, GLINT_JOB_RUNNER="celery")
    assert result.returncode == 2 and "is no site name" in result.stderr, result.stderr
    from_env = run_glint(tmp_path, "worker", GLINT_JOB_RUNNER="celery", GLINT_SITES="a b!")
    assert from_env.returncode == 2 and "'b!' is no site name" in from_env.stderr, from_env.stderr


@pytest.mark.django_db(transaction=True)
def test_old_site_labels_become_site_names(group_a):
    executor = MigrationExecutor(connection)
    before, after = [("repos", "0001_initial")], [("repos", "0002_site_name")]
    executor.migrate(before)
    apps = executor.loader.project_state(before).apps
    Repo = apps.get_model("repos", "Repo")
    labels = {"r-1": BAD_SITE, "r-2": "site_a.1", "r-3": " Zürich / DC 2 ", "r-4": ""}
    for name, site in labels.items():
        Repo.objects.create(group_id=group_a.pk, name=name, auth_url="https://k.invalid", site=site)

    executor.loader.build_graph()
    executor.migrate(after)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())

    from glint.repos.models import Repo as CurrentRepo

    assert dict(CurrentRepo.objects.filter(name__in=labels).values_list("name", "site")) == {
        "r-1": "CERN-Meyrin",
        "r-2": "site_a.1",
        "r-3": "Z-rich-DC-2",
        "r-4": "",
    }
