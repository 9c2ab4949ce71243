"""Two ``glint serve`` processes on one PostgreSQL database (two web replicas behind a load
balancer): what one changes, a hide or a finished copy, the other shows on its next request,
whatever either cached."""

from __future__ import annotations

import dataclasses

import pytest

from tests.jobs.helpers import JOB_SETTINGS, LiveAPI, fresh_image_name
from tests.jobs.images import assert_one_verified_copy_each, upload
from tests.live import start_live_glint, start_server
from tests.postgres import fresh_databases

pytestmark = pytest.mark.devcloud


@pytest.fixture
def replicas(devcloud, pki, tmp_path):
    """``(api_1, api_2)``: the admin's API on each replica."""
    with fresh_databases(1) as (url,):
        # No broker: what one replica commits must reach the other through the database alone.
        settings = {"GLINT_DATABASE_URL": url, **JOB_SETTINGS}
        assert "GLINT_BROKER_URL" not in settings
        lives = start_live_glint(devcloud, pki, tmp_path, **settings)
        first = next(lives)
        server = start_server(tmp_path, *first.serve_args, log_name="serve-2.log", **settings)
        second = dataclasses.replace(first, server=server, url=f"https://127.0.0.1:{server.port}")
        try:
            yield LiveAPI(first, pki), LiveAPI(second, pki)
        finally:
            server.stop()
            lives.close()


def test_a_hide_and_a_copy_on_one_replica_are_seen_on_the_other(devcloud, replicas):
    one, two = replicas
    names = fresh_image_name(devcloud, "replica")
    name = next(names)
    try:
        upload(devcloud, "devcloud-1", name, 256 * 1024)
        row, _version = one.row(name)
        two.row(name)  # the second replica has built and cached its matrix with the row in it

        one.post(f"images/{row['id']}/hide/", expect=200)
        (shown,) = two.get("images/", group=two.group, q=name, hidden="true")["results"]
        assert shown["hidden"], "the hide made on replica one is seen on replica two at once"

        one.post(f"images/{row['id']}/show/", expect=200)
        job = one.wait(one.copy(name, ("devcloud-2",)), lambda j: j["state"] == "done")
        assert_one_verified_copy_each(devcloud, name, clouds=("devcloud-1", "devcloud-2"))
        one.row(name, ("devcloud-1", "devcloud-2"))  # the poll after the job has recorded it
        # Replica two cached its matrix before the copy: its very next read must show the copy
        # in devcloud-2, with no retry.
        assert holders(two, name) == {two.repos["devcloud-1"], two.repos["devcloud-2"]}
        assert two.job(job["id"])["state"] == "done"
    finally:
        next(names, None)  # deletes every image of that name


def holders(api: LiveAPI, name: str) -> set[int]:
    """The repos whose cells hold a copy in row ``name``, from one API read."""
    (row,) = [r for r in api.get("images/", group=api.group, q=name, hidden="all")["results"]]
    return {cell["repo"] for cell in row["cells"] if cell["copies"]}
