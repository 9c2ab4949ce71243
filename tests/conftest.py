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
