"""Two ``glint serve`` processes on one PostgreSQL database, and two groups each with a repo on
the same cloud project: the project is listed once per poll interval across them all, counted
where it matters, in the requests the cloud's Glance received (its access log)."""

from __future__ import annotations

import os
import time

import psycopg
import pytest

from devcloud import core
from tests.live import run_glint, start_server
from tests.postgres import fresh_databases

pytestmark = [
    pytest.mark.devcloud,
    pytest.mark.timeout(300),
    # before the module's devcloud starts: without PostgreSQL there is nothing to count
    pytest.mark.skipif(
        not os.environ.get("GLINT_DATABASE_URL", "").startswith("postgresql"),
        reason="two glint serve on one database need PostgreSQL (scripts/test starts one)",
    ),
]

#: Seconds between polls of a repo. The pollers look every 2 s (``poller.TICK_SECONDS``), so one
#: project's polls come 6 to 8 s apart: WINDOW holds at most 5 of them, and twice as many when
#: the processes or the groups each polled it.
INTERVAL = 6
WINDOW = 4 * INTERVAL
GROUPS = ("alpha", "beta")


@pytest.fixture(scope="module")
def counted_cloud(tmp_path_factory):
    """A devcloud of its own (one Keystone, one Glance): every listing its Glance logs is this
    module's, not another test's server polling the shared devcloud."""
    cloud = core.up(tmp_path_factory.mktemp("counted-devcloud"), clouds=1, keystones=1)
    try:
        yield cloud
    finally:
        cloud.down()


def listings(cloud) -> int:
    """Full image listings Glance received: each starts with the ``visibility=all`` query's first
    page (``GlanceDriver.list_images``); a repo's check asks for ``limit=1`` only."""
    return sum(
        1
        for line in cloud.glance_requests("devcloud-1")
        if line.startswith("GET /v2/images?visibility=all&limit=") and "marker=" not in line
    )


def test_a_project_shared_by_two_groups_and_two_web_processes_is_listed_once_an_interval(
    counted_cloud, pki, tmp_path
):
    with fresh_databases(1) as (url,):
        settings = {"GLINT_DATABASE_URL": url, "GLINT_POLL_INTERVAL": str(INTERVAL)}
        setup = [("migrate",), *(("group", "add", g) for g in GROUPS)]
        setup += [
            (
                "repo",
                "import",
                str(counted_cloud.clouds_yaml),
                "--group",
                g,
                "--cloud",
                "devcloud-1",
            )
            for g in GROUPS
        ]
        for args in setup:
            result = run_glint(tmp_path, *args, **settings)
            assert result.returncode == 0, result.stderr
        servers = [
            start_server(tmp_path, *pki.serve_args, log_name=f"serve-{n}.log", **settings)
            for n in (1, 2)
        ]
        try:
            time.sleep(INTERVAL)  # both pollers are running and the first poll is behind us
            before = listings(counted_cloud)
            time.sleep(WINDOW)
            listed = listings(counted_cloud) - before
            assert all(s.process.poll() is None for s in servers), "both replicas kept serving"
        finally:
            for server in servers:
                server.stop()
        with psycopg.connect(url) as db:
            polls = db.execute(
                "SELECT r.name, i.polls_total FROM repos_repo r"
                " JOIN inventory_repoinventory i ON i.repo_id = r.id"
            ).fetchall()
    assert 2 <= listed <= WINDOW // INTERVAL + 1, (
        f"Glance received {listed} listings in {WINDOW} s: one project, polled every {INTERVAL} s"
    )
    counts = [count for _name, count in polls]
    assert len(counts) == 2 and counts[0] == counts[1] >= listed, (
        f"each listing is recorded for both groups' repos: {polls}"
    )
