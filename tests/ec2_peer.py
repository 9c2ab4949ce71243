"""Connections to devcloud's EC2 peer (moto on 127.0.0.1) for the tests of the EC2 kind."""

from __future__ import annotations

import boto3

from glint.clouds.addresses import EndpointPolicy
from glint.clouds.ec2 import Ec2Connection

#: The tests' development allowance: the peer on 127.0.0.1, nothing else on loopback.
DEV = EndpointPolicy(dev_loopback=("127.0.0.1",))


def peer_connection(peer, **overrides) -> Ec2Connection:
    """Glint's connection to the peer as its ``glint`` user, through :data:`DEV`."""
    keys = peer.users["glint"]
    values = dict(
        region=peer.region,
        access_key_id=keys.access_key_id,
        secret_access_key=keys.secret_access_key,
        endpoint_url=peer.endpoint_url,
        endpoint_policy=DEV,
    )
    values.update(overrides)
    return Ec2Connection(**values)


def peer_client(peer, service: str = "ec2"):
    """A plain boto3 client of the peer, to look behind Glint's back."""
    keys = peer.users["glint"]
    return boto3.client(
        service,
        region_name=peer.region,
        aws_access_key_id=keys.access_key_id,
        aws_secret_access_key=keys.secret_access_key,
        endpoint_url=peer.endpoint_url,
    )
