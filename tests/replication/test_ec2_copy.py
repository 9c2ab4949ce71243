"""Copies into EC2 (devcloud's patched moto peer), a cloud that writes an image in one step."""

from __future__ import annotations

import pytest

from glint.clouds import CloudError, get_driver
from glint.replication import CopySource, CopyTarget, SourceVerificationFailed, copy_image
from tests.ec2_peer import peer_client, peer_connection
from tests.replication.helpers import SOURCE, flip_byte

pytestmark = pytest.mark.devcloud

KIB = 1024


@pytest.fixture
def ec2(devcloud_ec2):
    peer = devcloud_ec2.ec2_peer
    connection = peer_connection(peer)
    client = peer_client(peer)
    made: list[str] = []
    with get_driver(connection) as driver:
        yield driver, client, made
        for image_id in made:
            try:
                driver.delete(image_id)
            except CloudError:  # already gone
                pass
    client.close()


def _snapshots_named(client, name: str) -> list[dict]:
    return [
        s
        for s in client.describe_snapshots(OwnerIds=["self"])["Snapshots"]
        if name in (s.get("Description") or "")
    ]


def test_a_glance_image_copied_to_ec2_is_verified(clouds, ec2):
    driver, client, made = ec2
    name = clouds.name("to-ec2")
    source_id = clouds.make_image(SOURCE, 700 * KIB + 3, name=name)
    result = copy_image(
        CopySource(clouds.driver(SOURCE), source_id, repo_ref="r1"),
        [CopyTarget("ec2", driver)],
    )
    target = result.targets["ec2"]
    assert result.ok, target.error
    made.append(target.image_id)
    copy = driver.get_image(target.image_id)
    assert copy.name == name and copy.size == 700 * KIB + 3
    with clouds.driver(SOURCE) as glance, glance.open_read(source_id) as reader:
        want = b"".join(reader)
    with driver.open_read(target.image_id) as reader:
        assert b"".join(reader)[: len(want)] == want


def test_a_corrupt_source_leaves_no_ami_and_no_snapshot(clouds, ec2):
    driver, client, _ = ec2
    name = clouds.name("corrupt")
    source_id = clouds.make_image(SOURCE, 2 * 1024 * KIB + 5, name=name)
    flip_byte(clouds.devcloud.store_dir(SOURCE) / source_id, 1_000_000)
    result = copy_image(
        CopySource(clouds.driver(SOURCE), source_id, repo_ref="r1"),
        [CopyTarget("ec2", driver)],
    )
    assert isinstance(result.targets["ec2"].error, SourceVerificationFailed)
    assert [i for i in driver.list_images() if i.name == name] == []
    assert _snapshots_named(client, name) == []
