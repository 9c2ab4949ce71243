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
