"""devcloud's EC2 peer behaves as EC2 where moto alone would not (devcloud/moto_patches.py).

Each test names the EC2 behaviour it checks; all run against the real moto server devcloud
started on loopback, through boto3 with explicit endpoint, region and keys.
"""

from __future__ import annotations

import base64
import hashlib
import uuid

import boto3
import pytest
from botocore.exceptions import ClientError

pytestmark = pytest.mark.devcloud

BLOCK = 512 * 1024


@pytest.fixture(scope="module")
def session(devcloud_ec2):
    peer = devcloud_ec2.ec2_peer
    keys = peer.users["glint"]
    return boto3.session.Session(
        aws_access_key_id=keys.access_key_id,
        aws_secret_access_key=keys.secret_access_key,
        region_name=peer.region,
    )


@pytest.fixture(scope="module")
def clients(session, devcloud_ec2):
    url = devcloud_ec2.ec2_peer.endpoint_url
    return session.client("ec2", endpoint_url=url), session.client("ebs", endpoint_url=url)


def _checksum(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def _snapshot(ebs, blocks: dict[int, bytes], gib: int = 1) -> str:
    snapshot_id = ebs.start_snapshot(VolumeSize=gib)["SnapshotId"]
    for index, data in blocks.items():
        ebs.put_snapshot_block(
            SnapshotId=snapshot_id,
            BlockIndex=index,
            BlockData=data,
            DataLength=len(data),
            Checksum=_checksum(data),
            ChecksumAlgorithm="SHA256",
        )
    ebs.complete_snapshot(SnapshotId=snapshot_id, ChangedBlocksCount=len(blocks))
    return snapshot_id


def test_register_image_keeps_the_given_root_snapshot_and_attributes(clients):
    ec2, ebs = clients
    snapshot_id = _snapshot(ebs, {0: b"\x01" * BLOCK}, gib=2)
    name = f"peer-{uuid.uuid4().hex[:8]}"
    image_id = ec2.register_image(
        Name=name,
        RootDeviceName="/dev/xvda",
        BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": snapshot_id}}],
        VirtualizationType="hvm",
        Architecture="arm64",
        BootMode="uefi",
        EnaSupport=True,
    )["ImageId"]
    image = ec2.describe_images(ImageIds=[image_id])["Images"][0]
    assert image["RootDeviceName"] == "/dev/xvda"
    assert image["RootDeviceType"] == "ebs"
    [mapping] = image["BlockDeviceMappings"]
    assert mapping["Ebs"]["SnapshotId"] == snapshot_id
    assert mapping["Ebs"]["VolumeSize"] == 2
    assert (image["Architecture"], image["BootMode"], image["EnaSupport"]) == (
        "arm64",
        "uefi",
        True,
    )
    assert image["VirtualizationType"] == "hvm"
    # EC2: a registered AMI's snapshot is in use until the AMI is deregistered.
    with pytest.raises(ClientError) as err:
        ec2.delete_snapshot(SnapshotId=snapshot_id)
    assert err.value.response["Error"]["Code"] == "InvalidSnapshot.InUse"
    ec2.deregister_image(ImageId=image_id)
    ec2.delete_snapshot(SnapshotId=snapshot_id)


def test_a_second_ami_of_one_name_is_refused(clients):
    ec2, ebs = clients
    name = f"dup-{uuid.uuid4().hex[:8]}"
    snapshot_id = _snapshot(ebs, {})
    mapping = [{"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": snapshot_id}}]
    first = ec2.register_image(Name=name, RootDeviceName="/dev/xvda", BlockDeviceMappings=mapping)
    with pytest.raises(ClientError) as err:
        ec2.register_image(Name=name, RootDeviceName="/dev/xvda", BlockDeviceMappings=mapping)
    assert err.value.response["Error"]["Code"] == "InvalidAMIName.Duplicate"
    assert first["ImageId"] in err.value.response["Error"]["Message"]


def test_put_snapshot_block_refuses_a_wrong_checksum_and_stores_nothing(clients):
    _, ebs = clients
    snapshot_id = ebs.start_snapshot(VolumeSize=1)["SnapshotId"]
    data = b"\x02" * BLOCK
    with pytest.raises(ClientError) as err:
        ebs.put_snapshot_block(
            SnapshotId=snapshot_id,
            BlockIndex=3,
            BlockData=data,
            DataLength=BLOCK,
            Checksum=_checksum(b"other bytes"),
            ChecksumAlgorithm="SHA256",
        )
    assert err.value.response["Error"]["Code"] == "ValidationException"
    assert ebs.list_snapshot_blocks(SnapshotId=snapshot_id)["Blocks"] == []


def test_blocks_read_back_with_their_checksums(clients):
    _, ebs = clients
    data = bytes(range(256)) * (BLOCK // 256)
    snapshot_id = _snapshot(ebs, {5: data})
    [block] = ebs.list_snapshot_blocks(SnapshotId=snapshot_id)["Blocks"]
    assert block["BlockIndex"] == 5
    got = ebs.get_snapshot_block(
        SnapshotId=snapshot_id, BlockIndex=5, BlockToken=block["BlockToken"]
    )
    assert got["BlockData"].read() == data
    assert got["Checksum"] == _checksum(data)


def test_a_deleted_snapshot_has_no_blocks_left(clients):
    """DeleteSnapshot deletes the blocks too: the EBS direct APIs no longer know the snapshot
    (moto kept them, in memory, for ever)."""
    ec2, ebs = clients
    snapshot_id = _snapshot(ebs, {0: b"\x01" * BLOCK})
    ec2.delete_snapshot(SnapshotId=snapshot_id)
    with pytest.raises(ClientError) as refused:
        ebs.list_snapshot_blocks(SnapshotId=snapshot_id)
    assert refused.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_copy_image_copies_the_backing_snapshot_and_applies_its_tag_specifications(
    clients, session, devcloud_ec2
):
    """EC2 copies an AMI's backing snapshots (User Guide, "Copy an AMI"): the copy in another
    region reads the source's blocks from a snapshot of its own, tagged as CopyImage's
    TagSpecifications say, with the source's root device and boot mode."""
    ec2, ebs = clients
    source_snapshot = _snapshot(ebs, {0: b"\x01" * BLOCK, 3: b"\x03" * BLOCK}, gib=2)
    source_id = ec2.register_image(
        Name=f"peer-{uuid.uuid4().hex[:8]}",
        RootDeviceName="/dev/xvda",
        BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": source_snapshot}}],
        VirtualizationType="hvm",
        BootMode="uefi",
    )["ImageId"]
    url = devcloud_ec2.ec2_peer.endpoint_url
    away = session.client("ec2", endpoint_url=url, region_name="eu-central-1")
    away_ebs = session.client("ebs", endpoint_url=url, region_name="eu-central-1")
    copy_id = away.copy_image(
        SourceImageId=source_id,
        SourceRegion=session.region_name,
        Name="copied",
        TagSpecifications=[
            {"ResourceType": "image", "Tags": [{"Key": "which", "Value": "ami"}]},
            {"ResourceType": "snapshot", "Tags": [{"Key": "which", "Value": "snapshot"}]},
        ],
    )["ImageId"]
    copy = away.describe_images(ImageIds=[copy_id])["Images"][0]
    assert (copy["RootDeviceName"], copy["BootMode"]) == ("/dev/xvda", "uefi")
    [mapping] = copy["BlockDeviceMappings"]
    snapshot_id = mapping["Ebs"]["SnapshotId"]
    assert snapshot_id != source_snapshot and mapping["Ebs"]["VolumeSize"] == 2
    assert copy["Tags"] == [{"Key": "which", "Value": "ami"}]
    [snapshot] = away.describe_snapshots(SnapshotIds=[snapshot_id])["Snapshots"]
    assert snapshot["Tags"] == [{"Key": "which", "Value": "snapshot"}]
    assert f"from SourceAmi {source_id}" in snapshot["Description"]
    blocks = away_ebs.list_snapshot_blocks(SnapshotId=snapshot_id)["Blocks"]
    assert [b["BlockIndex"] for b in blocks] == [0, 3]
    got = away_ebs.get_snapshot_block(
        SnapshotId=snapshot_id, BlockIndex=3, BlockToken=blocks[1]["BlockToken"]
    )
    assert got["BlockData"].read() == b"\x03" * BLOCK
