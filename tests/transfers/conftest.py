"""Fixtures of the upload and download tests: devcloud repos in the test database, loopback web
servers, and fresh image names cleaned up in every cloud (the helpers are in ``helpers.py``)."""

from __future__ import annotations

import socket

import pytest

from tests.clients import client_for, make_user
from tests.devcloud_repos import add_devcloud_repo
from tests.jobs.helpers import fresh_image_name
from tests.transfers.helpers import WebServer


@pytest.fixture
def image_name(devcloud):
    """A fresh image name; every image of that name is deleted from every cloud afterwards."""
    yield from fresh_image_name(devcloud, "xfer")


@pytest.fixture
def member(group_a):
    """A member of group alpha, who uploads."""
    return make_user("Upload Member", group=group_a)


@pytest.fixture
def client(member):
    return client_for(member)


@pytest.fixture
def repos(devcloud, group_a):
    return [add_devcloud_repo(devcloud, group_a, cloud) for cloud in ("devcloud-1", "devcloud-2")]


@pytest.fixture
def web2():
    """A web server on 127.0.0.2 (another loopback address: allow-list it alone, and 127.0.0.1 stays
    refused, e.g. as a redirect target)."""
    server = WebServer("127.0.0.2")
    yield server
    server.close()


@pytest.fixture
def connects(monkeypatch):
    """Every address Glint's fetcher connects to (the real connect still happens)."""
    calls = []
    real = socket.create_connection

    def recording(address, *args, **kwargs):
        calls.append(address)
        return real(address, *args, **kwargs)

    monkeypatch.setattr("socket.create_connection", recording)
    return calls
