"""A real ``glint serve`` with the three devcloud clouds as repos, and a small API client for it."""

from __future__ import annotations

import pytest

from tests.devcloud_repos import add_devcloud_repo
from tests.ec2_peer import ThrottledProxy
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


#: Bytes per second the throttled EC2 endpoint passes to the peer: a few MiB take seconds.
EC2_RATE = 2 * 2**20


@pytest.fixture(scope="module")
def slow_ec2(devcloud_ec2):
    """A throttling proxy in front of devcloud's EC2 peer (:class:`tests.ec2_peer.ThrottledProxy`),
    so a copy into an EC2 repo whose endpoint is ``slow_ec2.url`` is still writing its snapshot
    when a test acts."""
    proxy = ThrottledProxy(devcloud_ec2.ec2_peer.endpoint_url, EC2_RATE)
    yield proxy
    proxy.close()
