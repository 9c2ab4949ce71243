"""A real ``glint serve`` with the three devcloud clouds as repos, and a small API client for it."""

from __future__ import annotations

import pytest

from tests.devcloud_repos import add_devcloud_repo
from tests.jobs.helpers import CLOUDS, JOB_SETTINGS, LiveAPI, fresh_image_name
from tests.jobs.workers import Workers
from tests.live import start_live_glint


@pytest.fixture(scope="module")
def live(devcloud, pki, tmp_path_factory):
    yield from start_live_glint(
        devcloud, pki, tmp_path_factory.mktemp("jobs-glint"), clouds=CLOUDS, **JOB_SETTINGS
    )


@pytest.fixture
def api(live, pki):
    return LiveAPI(live, pki)


@pytest.fixture
def repos(devcloud, group_a):
    """Group alpha's repos on devcloud-1, -2 and -3, for tests that run jobs in this process."""
    return [add_devcloud_repo(devcloud, group_a, cloud) for cloud in CLOUDS]


@pytest.fixture
def image_name(devcloud):
    """A fresh image name; every image of that name is deleted from every cloud afterwards."""
    yield from fresh_image_name(devcloud, "jobs")


@pytest.fixture
def workers(live):
    """``glint worker`` processes on the module's ``live`` server, stopped afterwards."""
    manager = Workers(live)
    yield manager
    manager.stop_all()
