"""The ec2 driver against devcloud's EC2 peer (moto on loopback, patched like EC2)."""

from __future__ import annotations

import hashlib
import io
import uuid

import boto3
import botocore.response
import pytest

from glint.clouds import errors, get_driver
from glint.clouds.addresses import EndpointPolicy
from glint.clouds.ec2 import BLOCK_SIZE, WRITING_TAG, Ec2Connection, _ami_name
from tests.clouds.listener import RecordingListener
from tests.ec2_peer import DEV, Recording, peer_connection

pytestmark = pytest.mark.devcloud


@pytest.fixture(scope="module")
def peer(devcloud_ec2):
    return devcloud_ec2.ec2_peer


@pytest.fixture
def cloud(peer):
    with get_driver(peer_connection(peer)) as driver:
        yield driver


def _sparse_image() -> bytes:
    """5 MiB + 100 bytes: data in blocks 0 and 7 and the partial last one, zeros elsewhere."""
    image = bytearray(5 * 1024 * 1024 + 100)
    image[:10] = b"bootsector"
    image[7 * BLOCK_SIZE + 5 : 7 * BLOCK_SIZE + 9] = b"data"
    image[-3:] = b"end"
    return bytes(image)


def test_the_secret_is_not_in_repr(peer):
    connection = peer_connection(peer, session_token="token-secret")
    assert peer.users["glint"].secret_access_key not in repr(connection)
    assert "token-secret" not in repr(connection)
    assert not hasattr(connection, "auth_url")


def test_sparse_round_trip_sends_only_data_blocks(cloud, peer):
    """Only the blocks with data reach the peer (counted as it received them), and the read-back
    fills the rest with zeros: equal to the bytes written, also from an offset."""
    image = _sparse_image()
    name = f"sparse-{uuid.uuid4().hex[:8]}"
    with Recording(peer) as received:
        record = cloud.create_and_write(
            {
                "name": name,
                "disk_format": "raw",
                "glint_sha256": hashlib.sha256(image).hexdigest(),
                "hw_firmware_type": "uefi",
                "architecture": "x86_64",
            },
            [image[i : i + 1_000_000] for i in range(0, len(image), 1_000_000)],
            size=len(image),
        )
    assert sorted(received.block_puts()) == [0, 7, 10]  # 8 of 11 blocks were zeros
    assert record.name == name and record.status == "active" and record.size == len(image)
    assert record.properties["glint_sha256"] == hashlib.sha256(image).hexdigest()
    assert record.properties["boot_mode"] == "uefi"
    snapshot_id = _root_snapshot(peer, record.id)
    blocks = _ebs(peer).list_snapshot_blocks(SnapshotId=snapshot_id)["Blocks"]
    assert sorted(b["BlockIndex"] for b in blocks) == [0, 7, 10]
    with cloud.open_read(record.id) as reader:
        assert b"".join(reader) == image
    with cloud.open_read(record.id, offset=7 * BLOCK_SIZE + 5) as reader:
        assert b"".join(reader) == image[7 * BLOCK_SIZE + 5 :]
    assert record.id in {r.id for r in cloud.list_images()}


def test_a_corrupted_block_is_detected_on_read(cloud):
    """A block whose bytes do not match the checksum EBS gives with it fails the read, naming
    the block. The peer keeps what it was given intact, so the corruption (on the wire or at
    rest) is made in the driver's EBS client as each answer arrives: a mock of the one fault a
    real peer cannot show."""
    image = bytes(BLOCK_SIZE) + b"second block" + bytes(BLOCK_SIZE - 12)
    record = cloud.create_and_write(
        {"name": f"corrupt-{uuid.uuid4().hex[:8]}"}, [image], size=len(image)
    )

    def flip_a_byte(parsed, **kwargs):
        data = bytearray(parsed["BlockData"].read())
        data[3] ^= 0xFF
        parsed["BlockData"] = botocore.response.StreamingBody(io.BytesIO(data), len(data))

    cloud.ebs.meta.events.register("after-call.ebs.GetSnapshotBlock", flip_a_byte)
    try:
        with pytest.raises(errors.TransferInterrupted, match="block 1 .* does not match"):
            with cloud.open_read(record.id) as reader:
                b"".join(reader)
    finally:
        cloud.ebs.meta.events.unregister("after-call.ebs.GetSnapshotBlock", flip_a_byte)
    with cloud.open_read(record.id) as reader:
        assert b"".join(reader) == image
    cloud.delete(record.id)


def test_delete_removes_the_ami_and_its_snapshot(cloud, peer):
    record = cloud.create_and_write({"name": f"del-{uuid.uuid4().hex[:8]}"}, [b"x" * 10], size=10)
    snapshot_id = _root_snapshot(peer, record.id)
    cloud.delete(record.id)
    assert record.id not in {r.id for r in cloud.list_images()}
    ec2 = _ec2(peer)
    remaining = [s["SnapshotId"] for s in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]]
    assert snapshot_id not in remaining


def test_a_second_image_of_a_name_is_registered_under_a_name_of_its_own(cloud, peer):
    """EC2 keeps registered AMI names unique (the peer too: a moto patch); the replace and
    rename-old policies write a second image of the name before the first one goes."""
    name = f"dup-{uuid.uuid4().hex[:8]}"
    first = cloud.create_and_write({"name": name}, [b"a" * 10], size=10)
    second = cloud.create_and_write({"name": name}, [b"b" * 10], size=10)
    assert first.name == second.name == name
    assert {first.id, second.id} <= {r.id for r in cloud.list_images() if r.name == name}
    registered = {
        i["ImageId"]: i["Name"]
        for i in _ec2(peer).describe_images(ImageIds=[first.id, second.id])["Images"]
    }
    assert registered == {
        first.id: name,
        second.id: f"{name} ({_root_snapshot(peer, second.id)})",
    }


def test_a_rename_changes_the_name_tag_and_keeps_the_registered_name(cloud, peer):
    name = f"ren-{uuid.uuid4().hex[:8]}"
    record = cloud.create_and_write({"name": name}, [b"r" * 10], size=10)
    renamed = cloud.set_properties(record.id, set={"name": f"{name}.old-2026 ü"})
    assert renamed.name == f"{name}.old-2026 ü"
    assert "Name" not in renamed.properties
    assert next(r for r in cloud.list_images() if r.id == record.id).name == renamed.name
    assert _ec2(peer).describe_images(ImageIds=[record.id])["Images"][0]["Name"] == name


def test_a_name_ec2_would_refuse_is_registered_in_a_form_it_accepts():
    assert _ami_name("Ubuntu 24.04: cloud/ü") == "Ubuntu 24.04- cloud/-"
    assert _ami_name("x") == "x--"
    assert _ami_name("n" * 200, suffix=" (snap-1)") == "n" * 119 + " (snap-1)"


def test_the_snapshot_is_reported_before_its_first_block_and_stands_for_the_write(cloud, peer):
    """on_started names the snapshot while it is empty; until the write ends that id reads as an
    unfinished image of Glint's (saving, with its provenance), then as the AMI; delete takes it."""
    name = f"started-{uuid.uuid4().hex[:8]}"
    seen = []

    def on_started(snapshot_id: str) -> None:
        assert _ebs(peer).list_snapshot_blocks(SnapshotId=snapshot_id)["Blocks"] == []
        record = cloud.get_image(snapshot_id)
        assert (record.status, record.name) == ("saving", name)
        assert record.properties["glint_source_id"] == "src-1"
        assert snapshot_id in {r.id for r in cloud.list_images() if r.status == "saving"}
        seen.append(snapshot_id)

    record = cloud.create_and_write(
        {"name": name, "glint_source_id": "src-1"}, [b"x" * 10], size=10, on_started=on_started
    )
    assert seen == [_root_snapshot(peer, record.id)]
    assert cloud.get_image(seen[0]).id == record.id and record.status == "active"
    assert WRITING_TAG not in _tags(_ec2(peer).describe_snapshots(SnapshotIds=seen)["Snapshots"][0])
    cloud.delete(seen[0])
    assert record.id not in {r.id for r in cloud.list_images()}
    assert seen[0] not in _snapshot_ids(peer)


def test_a_failing_on_started_leaves_no_snapshot(cloud, peer):
    before = _snapshot_ids(peer)

    def refuse(snapshot_id: str) -> None:
        raise RuntimeError("could not record it")

    with pytest.raises(RuntimeError):
        cloud.create_and_write({"name": "never"}, [b"x" * 10], size=10, on_started=refuse)
    assert _snapshot_ids(peer) == before


def test_a_snapshot_glint_did_not_make_is_no_image_and_is_never_deleted(cloud, peer):
    theirs = _ebs(peer).start_snapshot(VolumeSize=1, Description="someone else's")["SnapshotId"]
    with pytest.raises(errors.NotFound):
        cloud.get_image(theirs)
    with pytest.raises(errors.InvalidRequest, match="not made by Glint"):
        cloud.delete(theirs)
    assert theirs in _snapshot_ids(peer) and theirs not in {r.id for r in cloud.list_images()}


def test_copy_image_is_offered_only_between_ec2_repos_one_endpoint_reaches(peer):
    """CopyImage works across regions of one AWS partition, or of one EC2-compatible endpoint;
    nothing is asked of a cloud to decide it."""

    def aws(region: str) -> Ec2Connection:
        return Ec2Connection(region=region, access_key_id="AKIAEXAMPLE", secret_access_key="s")

    with get_driver(aws("eu-west-1")) as driver:
        assert driver.can_copy_from(aws("us-east-1"))
        assert not driver.can_copy_from(aws("cn-north-1")), "another partition"
        assert not driver.can_copy_from(aws("RegionOne")), "no partition AWS knows"
        assert not driver.can_copy_from(peer_connection(peer)), "another endpoint"
        assert not driver.can_copy_from(None), "not an EC2 repo"
    with get_driver(peer_connection(peer)) as driver:
        assert driver.can_copy_from(peer_connection(peer, region="RegionTwo"))


def _tags(resource: dict) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in resource.get("Tags", [])}


def _snapshot_ids(peer) -> set[str]:
    return {s["SnapshotId"] for s in _ec2(peer).describe_snapshots(OwnerIds=["self"])["Snapshots"]}


def test_a_qcow2_is_refused_with_what_to_do(cloud):
    with pytest.raises(errors.FormatRefused, match="convert"):
        cloud.create_and_write({"name": "q", "disk_format": "qcow2"}, [b"QFI"], size=3)


def _ec2(peer):
    return _session(peer).client("ec2", endpoint_url=peer.endpoint_url)


def _ebs(peer):
    return _session(peer).client("ebs", endpoint_url=peer.endpoint_url)


def _session(peer):
    keys = peer.users["glint"]
    return boto3.session.Session(
        aws_access_key_id=keys.access_key_id,
        aws_secret_access_key=keys.secret_access_key,
        region_name=peer.region,
    )


def _root_snapshot(peer, image_id: str) -> str:
    image = _ec2(peer).describe_images(ImageIds=[image_id])["Images"][0]
    return image["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]


def test_an_assumed_role_reaches_the_same_account(peer):
    with get_driver(peer_connection(peer, role_arn=peer.role_arn)) as driver:
        assert driver.check().project_id == peer.account_id


def test_the_peer_on_loopback_is_refused_unless_the_policy_allows_it(peer):
    with get_driver(peer_connection(peer, endpoint_policy=EndpointPolicy())) as driver:
        with pytest.raises(errors.EndpointRefused, match=r"127\.0\.0\.1 is a loopback address"):
            driver.check()
    allowed = EndpointPolicy(dev_loopback=("127.0.0.0/8",))
    with get_driver(peer_connection(peer, endpoint_policy=allowed)) as driver:
        assert driver.check().project_id == peer.account_id


def test_assuming_a_role_goes_through_the_policy(peer):
    """STS is the first endpoint the driver reaches, before EC2 and EBS."""
    refused = peer_connection(peer, role_arn=peer.role_arn, endpoint_policy=EndpointPolicy())
    with pytest.raises(errors.EndpointRefused, match="loopback"):
        get_driver(refused)


def test_the_metadata_address_is_refused_by_the_policy():
    connection = Ec2Connection(
        region="us-east-1",
        access_key_id="AKIDEXAMPLE",
        secret_access_key="secret",
        endpoint_url="http://169.254.169.254/",
        endpoint_policy=DEV,
    )
    with get_driver(connection) as driver:
        with pytest.raises(errors.EndpointRefused) as refused:
            driver.check()
    # The policy's words, not the netguard's: nothing was looked up or sent.
    assert refused.value.reason == (
        "169.254.169.254 is a cloud metadata address, never allowed for a cloud endpoint"
    )


def test_a_refused_endpoint_receives_nothing(peer):
    listener = RecordingListener()  # on 127.0.0.2, which DEV leaves refused
    try:
        with get_driver(peer_connection(peer, endpoint_url=listener.url())) as driver:
            with pytest.raises(errors.EndpointRefused, match="127.0.0.2"):
                driver.list_images()
            with pytest.raises(errors.EndpointRefused, match="127.0.0.2"):  # EBS StartSnapshot
                driver.create_and_write({"name": "never"}, [b"data"], size=4)
    finally:
        listener.close()
    assert listener.received == []
