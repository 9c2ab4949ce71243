"""Helpers of the driver conformance suite: the variants it runs (see ``conftest.py``), the
kit of each cloud kind (how a shared operation is done on it, and cross-project set-up), and
names and connections for devcloud entries."""

from __future__ import annotations

import dataclasses
import time
import uuid
import warnings
from collections.abc import Callable, Iterable
from typing import Any

from glint.clouds import Capabilities, CloudDriver, ImageRecord, RepoConnection
from glint.clouds.ec2 import BLOCK_SIZE, BLOCKS_IN_FLIGHT, SNAPSHOT_TAG
from tests.ec2_peer import peer_client

MiB = 1024 * 1024


@dataclasses.dataclass(frozen=True)
class Variant:
    """One conformance run: a cloud entry of a devcloud fixture, and a second project on the
    same cloud that owns the images shared with (or published to) the first."""

    label: str
    fixture: str
    cloud: str
    other: str
    kind: str = "openstack"


#: The OpenStack variants (``test_variants_cover_the_matrix`` checks what they span).
VARIANTS = [
    Variant("http-password-sha512", "devcloud", "devcloud-1", "devcloud-1-p2"),
    Variant("http-appcred-sha512", "devcloud", "devcloud-2-appcred", "devcloud-2-p2-appcred"),
    Variant("http-appcred-sha256", "devcloud", "devcloud-3-appcred", "devcloud-3-p2"),
    Variant("tls-password", "devcloud_tls", "devcloud-1", "devcloud-1-p2"),
]
#: Every variant the shared tests run against: each OpenStack one and devcloud's EC2 peer.
ALL_VARIANTS = [*VARIANTS, Variant("ec2", "devcloud_ec2", "ec2", "", kind="ec2")]


class Write:
    """One image being written on a kind: ``write`` may be called again (a second write of the
    same image), ``names`` are the ids an error about it must name, ``left_without_data``
    checks that a failed write left no image with data behind."""

    names: tuple[str, ...] = ()
    #: The image's record before its data, on a kind that has one (OpenStack).
    record: ImageRecord | None = None

    def write(self, chunks: Iterable[bytes], size: int | None = None) -> ImageRecord:
        raise NotImplementedError

    def left_without_data(self) -> bool:
        raise NotImplementedError


class Kit:
    """What the tests need from a cloud kind beyond the protocol: how a shared operation is done
    on it (OpenStack: create, then write), what it is expected to report, and setting up
    cross-project cases. Written with openstacksdk, independently of the driver under test."""

    kind = "openstack"
    #: Bytes a streamed write may hold at once (the driver's own buffers).
    write_buffer = 8 * MiB
    capabilities = Capabilities(import_methods=("web-download",))

    def __init__(self, dc: Any):
        self.dc = dc

    def start(self, driver: CloudDriver, fields: dict, track: Callable) -> Write:
        return _OpenStackWrite(driver, driver.create_image(fields), track)

    def cloud_hashes(self, hashes: Any, algo: str | None) -> tuple:
        """(checksum, hash_algo, hash_value) the cloud reports for bytes hashed by ``hashes``."""
        return hashes.hexdigest("md5"), algo, hashes.hexdigest(algo)

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


class _OpenStackWrite(Write):
    def __init__(self, driver: CloudDriver, record: ImageRecord, track: Callable):
        self.driver, self.record = driver, record
        self.names = (record.id,)
        track(driver, record.id)

    def write(self, chunks, size=None):
        return self.driver.write_data(self.record.id, chunks, size=size)

    def left_without_data(self) -> bool:
        """The record takes no data: it ends ``queued`` (through ``saving`` while a TLS
        front-end still passes the broken request on), and can be deleted."""
        deadline = time.monotonic() + 10
        while (record := self.driver.get_image(self.record.id)).status == "saving":
            if time.monotonic() > deadline:
                break
            time.sleep(0.1)
        self.driver.delete(self.record.id)
        return record.status == "queued"


class Ec2Kit(Kit):
    """EC2 writes in one step (``create_and_write``, the size up front) and stores raw disks;
    it publishes no image hash. Looks behind the driver with plain boto3 clients of the peer."""

    kind = "ec2"
    # The blocks queued for the threads that send them, botocore's copy of each block in
    # flight, and the stream's chunk with the block being cut from it.
    write_buffer = 3 * BLOCKS_IN_FLIGHT * BLOCK_SIZE + 2 * MiB
    capabilities = Capabilities(can_stream_write=False, writes_in_one_step=True)

    def start(self, driver, fields, track):
        return _Ec2Write(self, driver, fields, track)

    def cloud_hashes(self, hashes, algo):
        return None, None, None

    def snapshots_named(self, name: str) -> list[str]:
        """The peer's snapshots Glint made for an image of ``name`` (or tagged with its AMI)."""
        found = peer_client(self.dc.ec2_peer).describe_snapshots(
            OwnerIds=["self"], Filters=[{"Name": f"tag:{SNAPSHOT_TAG}", "Values": [name]}]
        )["Snapshots"]
        return [s["SnapshotId"] for s in found]


class _Ec2Write(Write):
    def __init__(self, kit: Ec2Kit, driver: CloudDriver, fields: dict, track: Callable):
        self.kit, self.driver, self.fields, self.track = kit, driver, fields, track

    def write(self, chunks, size=None):
        if size is None:  # EC2 needs it up front; the tests' streams are lists when unsized
            chunks = list(chunks)
            size = sum(len(c) for c in chunks)
        record = self.driver.create_and_write(self.fields, chunks, size=size)
        self.names = (record.id,)
        self.track(self.driver, record.id)
        return record

    def left_without_data(self) -> bool:
        """No AMI of that name, and no snapshot left of the write."""
        name = self.fields["name"]
        listed = [i for i in self.driver.list_images() if i.name == name]
        return not listed and not self.kit.snapshots_named(name)


def kit_for(variant: Variant, dc: Any) -> Kit:
    return Ec2Kit(dc) if variant.kind == "ec2" else Kit(dc)


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
