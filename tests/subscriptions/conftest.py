"""A subscription's world: a test CA directory with a CRL (the server's trust store), an endorser
of that CA, a loopback web server for the list and its images (reachable through
``GLINT_FETCH_ALLOW_CIDRS``, as an operator allows a site mirror), and a name prefix whose images
are deleted from every cloud afterwards."""

from __future__ import annotations

import pytest

from tests.pki import CADirectory, make_ca
from tests.subscriptions.helpers import fresh_prefix
from tests.subscriptions.lists import Endorser


@pytest.fixture
def trust(tmp_path, settings, monkeypatch):
    """The server's CA directory (with a CRL revoking ``revoked``): ``(directory, good, revoked,
    other)``, ``other`` a valid endorser of the same CA that no subscription trusts."""
    ca = make_ca("Subscription Test CA")
    good, revoked = Endorser.of(ca, "Image Publisher"), Endorser.of(ca, "Revoked Publisher")
    other = Endorser.of(ca, "Other Publisher")
    directory = CADirectory(tmp_path / "certificates")
    directory.path.mkdir()
    directory.add_ca(ca, revoked=[revoked.cert])
    monkeypatch.setitem(settings.GLINT, "tls_client_ca_dir", str(directory.path))
    monkeypatch.setitem(settings.GLINT, "tls_client_ca", "")
    return directory, good, revoked, other


@pytest.fixture
def web(web, settings):
    """The loopback web server, which the fetcher may reach."""
    settings.GLINT_FETCH_ALLOW_CIDRS = ["127.0.0.0/8"]
    return web


@pytest.fixture
def prefix(devcloud):
    """A fresh name prefix; the images named with it are deleted from every cloud afterwards."""
    yield from fresh_prefix(devcloud, "sub")
