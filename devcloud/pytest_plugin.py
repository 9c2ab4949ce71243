"""Session fixtures that boot a devcloud for the tests that ask for one.

Both are lazy (a session that requests neither starts nothing) and torn down at session end:
``try``/``finally`` covers failures and Ctrl-C, an ``atexit`` hook covers an interpreter exit
that skips fixture finalisation, and SIGTERM (a CI time-out) is turned into ``SystemExit`` so
both run. ``down`` is idempotent, so running it twice is harmless.

- ``devcloud``: 3 clouds on 2 Keystones (clouds 1 and 3 on keystone-1, cloud 2 on
  keystone-2), 2 projects per cloud, cloud 3's Glance on sha256, plain HTTP.
- ``devcloud_tls``: 1 cloud on 1 Keystone, 2 projects, HTTPS with devcloud's own CA, and tokens that
  live ``TLS_TOKEN_EXPIRATION`` seconds (Keystone has no minimum; it truncates ``issued_at`` to the
  second, so a token can live up to a second less), for token-refresh tests.
- ``devcloud_ec2``: the EC2 peer alone (moto, patched like EC2), its IAM checks off.
- ``devcloud_ec2_iam``: another EC2 peer whose IAM checks are on, with user ``reader`` allowed
  only ``sts:GetCallerIdentity``: a bad key and a denied action answer as in AWS.
"""

from __future__ import annotations

import atexit
import dataclasses
import os
import signal

import pytest

from . import core, ec2

TLS_TOKEN_EXPIRATION = 10

# botocore looks for credentials at the EC2 instance metadata service (169.254.169.254) when a
# client is given none: never from a test, whatever a test forgets to pass.
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"


def _sigterm_to_exit() -> None:
    """Let SIGTERM unwind the session (running finalizers) unless someone else handles it."""
    if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):

        def handler(signum, frame):
            raise SystemExit(128 + signum)

        try:
            signal.signal(signal.SIGTERM, handler)
        except ValueError:  # not in the main thread
            pass


def _session_devcloud(tmp_path_factory, name: str, **options):
    directory = tmp_path_factory.mktemp(name)
    _sigterm_to_exit()
    atexit.register(_quiet_down, directory)
    dc = core.up(directory, **options)
    try:
        yield dc
    finally:
        dc.down()
        atexit.unregister(_quiet_down)


def _quiet_down(directory) -> None:
    try:
        core.down(directory)
    except Exception:
        pass


@pytest.fixture(scope="session")
def devcloud(tmp_path_factory):
    """The shared devcloud: 3 clouds, 2 Keystones, 2 projects per cloud, cloud 3 on sha256."""
    yield from _session_devcloud(
        tmp_path_factory,
        "devcloud",
        clouds=3,
        keystones=2,
        projects_per_cloud=2,
        sha256_clouds=(3,),
    )


@pytest.fixture(scope="session")
def devcloud_tls(tmp_path_factory):
    """One cloud over HTTPS (``devcloud_tls.ca_file``), tokens of ``TLS_TOKEN_EXPIRATION`` s."""
    yield from _session_devcloud(
        tmp_path_factory,
        "devcloud_tls",
        clouds=1,
        keystones=1,
        projects_per_cloud=2,
        tls=True,
        token_expiration=TLS_TOKEN_EXPIRATION,
    )


@pytest.fixture(scope="session")
def devcloud_ec2(tmp_path_factory):
    """The EC2 peer alone: moto on 127.0.0.1 (``devcloud_ec2.ec2_peer``), IAM checks off."""
    yield from _session_devcloud(
        tmp_path_factory, "devcloud_ec2", clouds=0, keystones=0, with_ec2=True
    )


@dataclasses.dataclass(frozen=True)
class IamPeer:
    """An EC2 peer that checks keys and IAM policies, and the keys of its user ``reader``."""

    peer: ec2.Ec2Peer
    reader: ec2.Ec2Keys


@pytest.fixture(scope="session")
def devcloud_ec2_iam(tmp_path_factory):
    """An EC2 peer that checks keys and IAM policies (EC2 and STS calls only: see
    ``devcloud/ec2.py``), with user ``reader`` allowed only ``sts:GetCallerIdentity``."""
    for dc in _session_devcloud(
        tmp_path_factory, "devcloud_ec2_iam", clouds=0, keystones=0, with_ec2=True
    ):
        reader = ec2.add_user(dc.ec2_peer, "reader", ["sts:GetCallerIdentity"])
        ec2.enforce_iam(dc.ec2_peer)
        yield IamPeer(dc.ec2_peer, reader)
