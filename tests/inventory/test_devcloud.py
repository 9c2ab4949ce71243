"""The poller, matrix, conflicts, pages and API against real Keystones and Glances (devcloud).

One set of images is uploaded for the module (each with a unique tag, and deleted at the end):

=========  ==========================================  ===================================
label      where                                       expected
=========  ==========================================  ===================================
replica    devcloud-1 (sha512) and devcloud-3 (sha256)  one row, two present cells
drift      devcloud-1 and devcloud-2, other contents    type 1 across repos
clash      devcloud-2 twice, other contents             type 1 within a repo
dup        devcloud-1 twice, same contents              type 2
z1, z2     devcloud-3, same contents                    type 3 within a repo
w1, w2     devcloud-1 / devcloud-2, same contents       type 3 across repos
community  devcloud-1-p2, visibility community          foreign cell in devcloud-1, hidden
queued     devcloud-2, no data                          unverifiable row
=========  ==========================================  ===================================
"""

from __future__ import annotations

import socket
import time
import uuid

import pytest
from django.test import Client

from glint.clouds import NotFound, RepoConnection, get_driver
from glint.inventory.models import HiddenRow, Image, RepoInventory
from glint.inventory.poller import poll_due, poll_repos
from glint.jobs.matrix import group_matrix
from glint.matrix.conflicts import ConflictKind
from glint.matrix.rows import CellState
from glint.repos.choices import AuthType
from glint.repos.models import Repo
from tests.devcloud_repos import add_devcloud_repo

pytestmark = pytest.mark.devcloud

TAG = uuid.uuid4().hex[:8]
CLOUDS = ("devcloud-1", "devcloud-2", "devcloud-3")


def name(label: str) -> str:
    return f"glint-inv-{label}-{TAG}"


def content(label: str) -> bytes:
    return f"{label}:{TAG}\n".encode() * 300


@pytest.fixture(scope="module")
def scenario(devcloud):
    drivers = {
        c: get_driver(RepoConnection.from_clouds_yaml(devcloud.cloud_config(c)))
        for c in (*CLOUDS, "devcloud-1-p2")
    }
    created = []

    def upload(cloud, label, data_label=None, **fields):
        data = content(data_label or label)
        record = drivers[cloud].create_and_write(
            {"name": name(label), "disk_format": "raw", "container_format": "bare", **fields},
            [data],
            size=len(data),
        )
        created.append((cloud, record.id))
        return record

    try:
        upload("devcloud-1", "replica")
        upload("devcloud-3", "replica")
        upload("devcloud-1", "drift", "drift-1")
        upload("devcloud-2", "drift", "drift-2")
        upload("devcloud-2", "clash", "clash-1")
        upload("devcloud-2", "clash", "clash-2")
        upload("devcloud-1", "dup")
        upload("devcloud-1", "dup")
        upload("devcloud-3", "z1", "z")
        upload("devcloud-3", "z2", "z")
        upload("devcloud-1", "w1", "w")
        upload("devcloud-2", "w2", "w")
        upload("devcloud-1-p2", "community", visibility="community")
        queued = drivers["devcloud-2"].create_image(
            {"name": name("queued"), "disk_format": "raw", "container_format": "bare"}
        )
        created.append(("devcloud-2", queued.id))
        yield created
    finally:
        for cloud, image_id in created:
            try:
                drivers[cloud].delete(image_id)
            except NotFound:
                pass
        for driver in drivers.values():
            driver.close()


@pytest.fixture
def repos_a(devcloud, scenario, group_a):
    return [add_devcloud_repo(devcloud, group_a, cloud) for cloud in CLOUDS]


def by_label(rows, label):
    return [r for r in rows if r.name == name(label)]


def state_of(row, repos):
    return [row.cells[repo.pk].state for repo in repos]


def test_poll_builds_rows_cells_and_conflicts_of_every_type(repos_a, group_a):
    r1, r2, r3 = repos_a
    results = poll_repos(repos_a)
    assert sorted((r.repo_id, r.ok) for r in results) == [(r.pk, True) for r in repos_a], results

    matrix = group_matrix(group_a)
    (replica,) = by_label(matrix.rows, "replica")
    assert state_of(replica, repos_a) == [CellState.PRESENT, CellState.ABSENT, CellState.PRESENT]
    assert replica.content_key.startswith("sha256:") and replica.verifiable and not replica.hidden

    (dup,) = by_label(matrix.rows, "dup")
    assert len(dup.cells[r1.pk].copies) == 2
    (community,) = by_label(matrix.rows, "community")
    assert community.cells[r1.pk].state == CellState.FOREIGN and community.hidden
    (queued,) = by_label(matrix.rows, "queued")
    assert not queued.verifiable and queued.cells[r2.pk].statuses == ["queued"]
    assert len(by_label(matrix.rows, "drift")) == 2 and len(by_label(matrix.rows, "clash")) == 2

    found = {
        (c.kind, c.repo_id): c
        for c in matrix.conflicts
        if any(TAG in copy.name for copy in c.copies)
    }
    assert set(found) == {
        (ConflictKind.DRIFT, None),
        (ConflictKind.NAME_CONFLICT, r2.pk),
        (ConflictKind.DUPLICATE, r1.pk),
        (ConflictKind.SAME_CONTENT, r3.pk),
        (ConflictKind.SAME_CONTENT_ACROSS, None),
    }
    assert {c.name for c in found[(ConflictKind.SAME_CONTENT_ACROSS, None)].copies} == {
        name("w1"),
        name("w2"),
    }
    assert len(found[(ConflictKind.NAME_CONFLICT, r2.pk)].copies) == 2

    # A second poll of unchanged clouds changes nothing, so the inventory versions stay put.
    before = dict(matrix.versions)
    assert not any(r.changed for r in poll_repos(repos_a))
    assert group_matrix(group_a).versions == before


def test_a_failing_cloud_is_reported_while_the_others_poll(devcloud, repos_a, group_a):
    r1, r2, r3 = repos_a
    poll_repos(repos_a)
    kept = Image.objects.filter(repo=r2).count()
    devcloud.stop("devcloud-2")
    try:
        results = {r.repo_id: r for r in poll_repos(repos_a)}
    finally:
        devcloud.start("devcloud-2")
    assert results[r1.pk].ok and results[r3.pk].ok
    assert not results[r2.pk].ok and results[r2.pk].error
    r2.refresh_from_db()
    assert r2.last_poll_ok is False and r2.last_poll_error == results[r2.pk].error
    inventory = RepoInventory.objects.get(pk=r2.pk)
    assert inventory.failures == 1 and inventory.errors_total == 1
    assert Image.objects.filter(repo=r2).count() == kept  # an outage is not a deletion


def test_a_silent_cloud_is_cut_off_at_its_deadline(devcloud, repos_a, group_a):
    with socket.socket() as silent:  # accepts connections (kernel backlog) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        stuck = Repo.objects.create(
            group=group_a,
            name="silent",
            auth_url=f"http://127.0.0.1:{port}/v3",
            auth_type=AuthType.PASSWORD,
            username="u",
            password="p",
            project_name="p",
            project_domain_name="Default",
            user_domain_name="Default",
        )
        started = time.monotonic()
        results = {r.repo_id: r for r in poll_repos([*repos_a, stuck], timeout=3)}
        elapsed = time.monotonic() - started
    assert elapsed < 3 + 2, elapsed
    assert not results[stuck.pk].ok and all(results[r.pk].ok for r in repos_a)
    stuck.refresh_from_db()
    assert stuck.last_poll_ok is False and stuck.last_poll_error


def test_a_project_shared_by_two_groups_has_separate_hidden_flags(
    devcloud, scenario, group_a, group_b
):
    ra = add_devcloud_repo(devcloud, group_a, "devcloud-1")
    rb = add_devcloud_repo(devcloud, group_b, "devcloud-1", name="shared")
    assert ra.cloud_project == rb.cloud_project
    poll_repos([ra, rb])
    (row_a,) = by_label(group_matrix(group_a).rows, "replica")
    (row_b,) = by_label(group_matrix(group_b).rows, "replica")
    assert row_a.cells[ra.pk].state == row_b.cells[rb.pk].state == CellState.PRESENT
    HiddenRow.objects.create(
        group=group_a, name=row_a.name, content_key=row_a.content_key, hidden=True
    )
    assert by_label(group_matrix(group_a).rows, "replica")[0].hidden
    assert not by_label(group_matrix(group_b).rows, "replica")[0].hidden


def test_pages_show_the_matrix_and_hide_show_moves_rows(repos_a, group_a, client_a, client_b):
    poll_repos(repos_a)
    page = client_a.get(f"/images/?group={group_a.pk}&q={TAG}")
    text = page.content.decode()
    assert page.status_code == 200 and name("replica") in text and "conflicts-banner" in text
    assert name("community") not in text  # another project's image starts hidden
    assert (
        name("community")
        in client_a.get(f"/images/?group={group_a.pk}&view=hidden&q={TAG}").content.decode()
    )

    (row,) = by_label(group_matrix(group_a).rows, "replica")
    moved = client_a.post(f"/images/{row.id}/hide/", HTTP_HX_REQUEST="true")
    assert moved.status_code == 200 and "moved to" in moved.content.decode()
    assert (
        name("replica") not in client_a.get(f"/images/?group={group_a.pk}&q={TAG}").content.decode()
    )
    shown = client_a.post(f"/api/v1/images/{row.id}/show/")
    assert shown.status_code == 200 and shown.json()["hidden"] is False
    assert name("replica") in client_a.get(f"/images/?group={group_a.pk}&q={TAG}").content.decode()

    detail = client_a.get(f"/images/{row.id}/").content.decode()
    for copy in row.copies:
        assert copy.image_id in detail
    conflicts = client_a.get(f"/images/conflicts/?group={group_a.pk}").content.decode()
    assert name("clash") in conflicts and name("w2") in conflicts

    # Another group's member learns nothing about these rows.
    assert client_b.get(f"/images/{row.id}/").status_code == 404
    assert client_b.post(f"/images/{row.id}/hide/").status_code == 404
    assert client_b.get(f"/api/v1/images/{row.id}/").status_code == 404
    assert client_b.get(f"/api/v1/images/?group={group_a.pk}").status_code == 404
    assert client_b.post(f"/api/v1/repos/{repos_a[0].pk}/refresh/").status_code == 404


def test_api_lists_rows_and_conflicts_and_refreshes_on_demand(repos_a, group_a, client_a):
    poll_repos(repos_a)
    body = client_a.get(f"/api/v1/images/?group={group_a.pk}&q={TAG}&limit=500").json()
    rows = {r["name"]: r for r in body["results"] if r["name"] == name("replica")}
    cells = {c["repo"]: c["state"] for c in rows[name("replica")]["cells"]}
    assert cells == {repos_a[0].pk: "present", repos_a[1].pk: "absent", repos_a[2].pk: "present"}
    assert body["inventory_version"] and [r["id"] for r in body["repos"]] == [r.pk for r in repos_a]

    detail = client_a.get(f"/api/v1/images/{rows[name('replica')]['id']}/").json()
    assert {i["repo"] for i in detail["images"]} == {repos_a[0].pk, repos_a[2].pk}

    kinds = {
        c["kind"]
        for c in client_a.get(f"/api/v1/conflicts/?group={group_a.pk}").json()
        if any(TAG in copy["name"] for copy in c["copies"])
    }
    assert kinds == {"drift", "name_conflict", "duplicate", "same_content", "same_content_across"}

    response = client_a.post(f"/api/v1/groups/{group_a.pk}/refresh/")
    assert response.status_code == 202 and sorted(response.json()["requested"]) == sorted(
        r.pk for r in repos_a
    )
    assert RepoInventory.objects.filter(refresh_requested_at__isnull=False).count() == 3
    assert {r.repo_id for r in poll_due()} >= {r.pk for r in repos_a}
    assert not RepoInventory.objects.filter(refresh_requested_at__isnull=False).exists()


def test_metrics_report_polls_by_id_without_names(repos_a, client_a):
    poll_repos(repos_a)
    text = Client().get("/metrics").content.decode()  # no certificate: a probe has none
    r1 = repos_a[0]
    assert f'glint_repo_poll_success{{repo="{r1.pk}",group="{r1.group_id}"}} 1' in text
    assert f'glint_repo_images{{repo="{r1.pk}",group="{r1.group_id}"}}' in text
    assert "glint_repo_poll_duration_seconds{" in text
    assert r1.name not in text and r1.auth_url not in text
