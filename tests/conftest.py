import sys
from pathlib import Path

import pytest

# devcloud is a plain package at the repo root, not installed: make it importable.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

pytest_plugins = ["devcloud.pytest_plugin"]


@pytest.fixture(scope="session")
def pki(tmp_path_factory):
    """One test PKI on disk for the session (see tests/live.py)."""
    from tests.live import make_pki

    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def client_for_member(db):
    """A Django test client signed in (by certificate) as a member of a fresh group."""
    from glint.accounts.services import add_group
    from tests.clients import client_for, make_user

    return client_for(make_user("Plain Member", group=add_group("plain-group")))


@pytest.fixture
def group_a(db):
    """Group "alpha" (the people under test usually belong here)."""
    from glint.accounts.services import add_group

    return add_group("alpha")


@pytest.fixture
def group_b(db):
    """Group "beta" (another group, whose things group A must never reach)."""
    from glint.accounts.services import add_group

    return add_group("beta")


@pytest.fixture(scope="session")
def live_glint(devcloud, pki, tmp_path_factory):
    """One real ``glint serve`` (TLS) for the session, with devcloud repos and a signed-in admin."""
    from tests.live import start_live_glint

    yield from start_live_glint(devcloud, pki, tmp_path_factory.mktemp("live-glint"))


@pytest.fixture
def web():
    """A web server on 127.0.0.1 (``tests.transfers.helpers.WebServer``) for links and lists."""
    from tests.transfers.helpers import WebServer

    server = WebServer()
    yield server
    server.close()
