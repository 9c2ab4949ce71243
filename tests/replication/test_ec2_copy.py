"""Copies into EC2 (devcloud's patched moto peer), a cloud that writes an image in one step."""

from __future__ import annotations

import hashlib
import os
import uuid

import pytest

from glint.clouds import CloudError, get_driver
from glint.replication import (
    ConflictPolicy,
    CopySource,
    CopyTarget,
    SourceVerificationFailed,
    TargetOutcome,
    copy_image,
)
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


def test_replace_writes_the_new_ami_beside_the_old_one_then_removes_the_old(clouds, ec2):
    """An AMI's registered name is unique and fixed: the new copy is registered under a name of
    its own, named by its Name tag, and the old AMI goes only once the new one is verified."""
    driver, client, made = ec2
    name = clouds.name("replace-ec2")
    old_bytes = b"old content" * 100
    old = driver.create_and_write(
        {"name": name, "glint_sha256": hashlib.sha256(old_bytes).hexdigest()},
        [old_bytes],
        size=len(old_bytes),
    )
    made.append(old.id)
    source_id = clouds.make_image(SOURCE, 300 * KIB, name=name)
    result = copy_image(
        CopySource(clouds.driver(SOURCE), source_id, repo_ref="r1"),
        [CopyTarget("ec2", driver, policy=ConflictPolicy.REPLACE)],
    )
    target = result.targets["ec2"]
    assert result.ok, target.error
    made.append(target.image_id)
    assert [r.id for r in driver.list_images() if r.name == name] == [target.image_id]
    assert client.describe_images(ImageIds=[old.id])["Images"] == []


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


# EC2 -> EC2: CopyImage server-side, verified after, streaming when it is refused

AWAY = "eu-central-1"  # the second region of the peer
OTHER_ACCOUNT_ROLE = "arn:aws:iam::210987654321:role/other-account"


def _glint_ami(driver, name: str) -> tuple[str, bytes]:
    """An AMI as Glint leaves a verified copy (with ``glint_sha256``): data, a zero block, data."""
    data = os.urandom(600 * KIB) + bytes(512 * KIB) + os.urandom(300 * KIB + 7)
    fields = {"name": name, "glint_sha256": hashlib.sha256(data).hexdigest()}
    return driver.create_and_write(fields, [data], size=len(data)).id, data


def _read(driver, image_id: str) -> bytes:
    with driver.open_read(image_id) as reader:
        return b"".join(reader)


def test_an_ami_copied_to_another_region_is_copied_server_side_and_verified(devcloud_ec2, ec2):
    driver, _client, made = ec2
    peer = devcloud_ec2.ec2_peer
    name = f"copy-image-{uuid.uuid4().hex[:8]}"
    source_id, data = _glint_ami(driver, name)
    made.append(source_id)
    with get_driver(peer_connection(peer, region=AWAY)) as away:
        result = copy_image(
            CopySource(driver, source_id, repo_ref="r-ec2"), [CopyTarget("away", away)]
        )
        target = result.targets["away"]
        assert result.ok, target.error
        assert (target.outcome, target.bytes_written) == (TargetOutcome.PULLED, 0), (
            "EC2 copied it itself: no byte passed through Glint"
        )
        copy = away.get_image(target.image_id)
        assert copy.name == name and copy.status == "active" and copy.size == len(data)
        assert copy.properties["glint_sha256"] == hashlib.sha256(data).hexdigest()
        assert copy.properties["glint_source_id"] == source_id
        assert _read(away, copy.id) == data
        snapshot = away._root_snapshot(away.ec2.describe_images(ImageIds=[copy.id])["Images"][0])
        away.delete(copy.id)
        assert copy.id not in {i.id for i in away.list_images()}
        left = away.ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]
        assert snapshot[0] not in {s["SnapshotId"] for s in left}, "its snapshot went with it"


def test_a_copy_image_refused_for_an_ami_of_another_account_streams_the_image(devcloud_ec2, ec2):
    """Across accounts CopyImage needs the AMI shared with the target's account; this one is
    not (EC2 answers InvalidAMIID.NotFound), so Glint reads it with the source's keys and
    writes it with the target's."""
    driver, _client, made = ec2
    peer = devcloud_ec2.ec2_peer
    name = f"copy-other-{uuid.uuid4().hex[:8]}"
    with get_driver(peer_connection(peer, role_arn=OTHER_ACCOUNT_ROLE)) as other:
        assert other.check().project_id != driver.check().project_id, "another account"
        source_id, data = _glint_ami(other, f"{name}-source")
        try:
            result = copy_image(
                CopySource(other, source_id, repo_ref="r-other"),
                [CopyTarget("ec2", driver, name=name)],
            )
        finally:
            other.delete(source_id)
    target = result.targets["ec2"]
    assert result.ok, target.error
    made.append(target.image_id)
    assert target.outcome is TargetOutcome.COPIED and target.bytes_written == len(data)
    assert any("would not copy the image itself" in w for w in target.warnings), target.warnings
    assert _read(driver, target.image_id) == data
