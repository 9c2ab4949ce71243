"""Helpers of the driver conformance suite: the variants it runs (see ``conftest.py``), the
cross-project set-up kit, and names and connections for devcloud entries."""

from __future__ import annotations

import dataclasses
import uuid
import warnings
from typing import Any

from glint.clouds import CloudDriver, RepoConnection


@dataclasses.dataclass(frozen=True)
class Variant:
    """One conformance run: a cloud entry of a devcloud fixture, and a second project on the
    same cloud that owns the images shared with (or published to) the first."""

    label: str
    fixture: str
    cloud: str
    other: str


VARIANTS = [
    Variant("http-password-sha512", "devcloud", "devcloud-1", "devcloud-1-p2"),
    Variant("http-appcred-sha512", "devcloud", "devcloud-2-appcred", "devcloud-2-p2-appcred"),
    Variant("http-appcred-sha256", "devcloud", "devcloud-3-appcred", "devcloud-3-p2"),
    Variant("tls-password", "devcloud_tls", "devcloud-1", "devcloud-1-p2"),
]


class Kit:
    """What the tests need from a cloud kind beyond the protocol (setting up cross-project
    cases). Written with openstacksdk, independently of the driver under test."""

    def __init__(self, dc: Any):
        self.dc = dc

    def sdk(self, cloud: str) -> Any:
        import openstack.config
        import openstack.connection

        region = openstack.config.OpenStackConfig(
            config_files=[str(self.dc.clouds_yaml)], load_envvars=False
        ).get_one(cloud=cloud)
        return openstack.connection.Connection(config=region)

    def share(self, owner_cloud: str, image_id: str, member_project_id: str) -> None:
        """Share an image with another project; its membership stays ``pending``."""
        with warnings.catch_warnings():  # the SDK's own deprecation notices, not ours
            warnings.simplefilter("ignore")
            conn = self.sdk(owner_cloud)
            try:
                conn.image.add_member(image_id, member_id=member_project_id)
            finally:
                conn.close()


@dataclasses.dataclass
class Target:
    """A driver under test and what the tests need to know about its cloud."""

    variant: Variant
    dc: Any
    connection: RepoConnection
    driver: CloudDriver
    other_cloud: str | None
    other: CloudDriver | None
    hash_algo: str
    kit: Kit


def connection_for(dc: Any, cloud: str, **overrides: Any) -> RepoConnection:
    """The driver connection for one clouds.yaml entry of a devcloud."""
    return RepoConnection.from_clouds_yaml(dc.cloud_config(cloud), **overrides)


def glance_of(cloud: str) -> str:
    """``devcloud-3-p2-appcred`` -> ``devcloud-3``: the Glance a clouds.yaml entry uses."""
    return "-".join(cloud.split("-")[:2])


def unique_name(tag: str) -> str:
    return f"glint-test-{tag}-{uuid.uuid4().hex[:8]}"
