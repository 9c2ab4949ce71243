"""Copies into EC2 (devcloud's patched moto peer), a cloud that writes an image in one step and
stores raw disks only, and out of it."""

from __future__ import annotations

import hashlib
import os
import uuid

import pytest

from glint.clouds import CloudError, get_driver
from glint.replication import (
    ConflictPolicy,
    ContentCache,
    ConversionFailed,
    CopyObserver,
    CopySource,
    CopyTarget,
    SourceVerificationFailed,
    TargetOutcome,
    TargetVerificationFailed,
    copy_image,
)
from tests.ec2_peer import Recording, peer_client, peer_connection
from tests.replication.helpers import (
    SOURCE,
    TARGETS,
    flip_byte,
    read_disk,
    small_disk,
    unreadable_qcow2,
)

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


def test_a_glance_image_copied_to_ec2_is_verified_without_reading_it_back(
    clouds, ec2, devcloud_ec2
):
    driver, client, made = ec2
    name = clouds.name("to-ec2")
    source_id = clouds.make_image(SOURCE, 700 * KIB + 3, name=name)
    with Recording(devcloud_ec2.ec2_peer) as received:
        result = copy_image(
            CopySource(clouds.driver(SOURCE), source_id, repo_ref="r1"),
            [CopyTarget("ec2", driver)],
        )
    target = result.targets["ec2"]
    assert result.ok, target.error
    made.append(target.image_id)
    # Proven by what EBS checked on the way in (each block against the checksum of the verified
    # bytes sent, Capabilities.checked_writes): the copy is not read back.
    assert received.block_puts() and received.block_reads() == 0
    copy = driver.get_image(target.image_id)
    assert copy.name == name and copy.size == 700 * KIB + 3
    assert copy.properties["glint_sha256"] == result.sha256
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


class Progress(CopyObserver):
    """Every progress report, by target."""

    def __init__(self):
        self.reports: dict[str | None, list[tuple[str, int, int | None]]] = {}

    def progress(self, target_key, code, done, total):
        self.reports.setdefault(target_key, []).append((code, done, total))

    def codes(self, key) -> list[str]:
        return [code for code, _done, _total in self.reports.get(key, [])]


def _bytes(driver, image_id: str) -> bytes:
    with driver.open_read(image_id) as reader:
        return b"".join(reader)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def qcow2(tmp_path):
    """A small qcow2 (bytes) and its raw conversion."""
    return small_disk(tmp_path)


def _to_ec2(clouds, ec2, cache, image: bytes, name: str, observer=None):
    """Copy ``image`` (a qcow2 put in Glance first) to EC2 and devcloud-2 at once."""
    driver, _client, made = ec2
    source_id = clouds.put_image(SOURCE, image, name=name, disk_format="qcow2")
    result = copy_image(
        CopySource(clouds.driver(SOURCE), source_id, repo_ref="r1"),
        [CopyTarget("ec2", driver), CopyTarget("glance", clouds.driver(TARGETS[0]))],
        cache=cache,
        observer=observer,
    )
    made.extend(t.image_id for t in result.targets.values() if t.key == "ec2" and t.image_id)
    return result


def test_a_qcow2_image_reaches_ec2_as_raw_and_other_targets_as_it_is(
    clouds, ec2, qcow2, tmp_path, devcloud_ec2
):
    driver, _client, _made = ec2
    image, raw = qcow2
    cache = ContentCache(tmp_path / "cache")
    progress = Progress()
    result = _to_ec2(clouds, ec2, cache, image, clouds.name("qcow2"), progress)
    assert result.ok, {k: t.error for k, t in result.targets.items()}
    assert result.sha256 == _sha256(image)

    ami = driver.get_image(result.targets["ec2"].image_id)
    assert (ami.disk_format, ami.size) == ("raw", len(raw))
    assert _bytes(driver, ami.id) == raw
    assert ami.properties["glint_sha256"] == _sha256(raw)
    assert ami.properties["glint_made_from"] == f"sha256:{_sha256(image)}"

    with clouds.driver(TARGETS[0]) as glance:
        copy = glance.get_image(result.targets["glance"].image_id)
        assert (copy.disk_format, copy.size) == ("qcow2", len(image))
        assert _bytes(glance, copy.id) == image
        assert copy.properties["glint_sha256"] == _sha256(image)
        assert "glint_made_from" not in copy.properties

    # The conversion's progress shows on the EC2 target, in bytes of the source, then its write.
    codes = progress.codes("ec2")
    assert "copy.converting" in codes and codes.index("copy.converting") < codes.index(
        "copy.writing"
    )
    converting = [r for r in progress.reports["ec2"] if r[0] == "copy.converting"]
    assert converting[-1][1:] == (len(image), len(image))
    assert progress.reports["ec2"][-1] == ("copy.writing", len(raw), len(raw))
    assert "copy.converting" not in progress.codes("glance")
    # Converted once, through the cache: a retry or another copy of the same bytes reuses it.
    assert cache.converted(_sha256(image), "raw").hashes["sha256"] == _sha256(raw)
    # Copied again, the AMI made from these bytes counts as the copy: nothing is written.
    again = copy_image(
        CopySource(clouds.driver(SOURCE), result.source.id, repo_ref="r1"),
        [CopyTarget("ec2", driver)],
        cache=cache,
    )
    assert (again.targets["ec2"].outcome.value, again.targets["ec2"].image_id) == (
        "exists",
        ami.id,
    )


def test_a_format_glint_cannot_convert_is_refused_before_anything_is_read(clouds, ec2, tmp_path):
    driver, client, _made = ec2
    name = clouds.name("ami")
    source_id = clouds.make_image(SOURCE, 600 * KIB, name=name, disk_format="ami")
    cache = ContentCache(tmp_path / "cache")
    result = copy_image(
        CopySource(clouds.driver(SOURCE), source_id, repo_ref="r1"),
        [CopyTarget("ec2", driver)],
        cache=cache,
    )
    error = result.targets["ec2"].error
    assert isinstance(error, ConversionFailed) and "ami" in error.message, error
    assert result.sha256 is None and cache.entries() == []  # the source was not read
    assert [i for i in driver.list_images() if i.name == name] == []
    assert _snapshots_named(client, name) == []


def test_a_conversion_that_fails_is_a_typed_error_leaving_nothing_behind(
    clouds, ec2, qcow2, tmp_path
):
    driver, client, _made = ec2
    image = unreadable_qcow2(qcow2[0])
    cache = ContentCache(tmp_path / "cache")
    name = clouds.name("unreadable")
    result = _to_ec2(clouds, ec2, cache, image, name)
    error = result.targets["ec2"].error
    assert isinstance(error, ConversionFailed) and "L1 table" in error.message, error
    assert [i for i in driver.list_images() if i.name == name] == []
    assert _snapshots_named(client, name) == []
    assert cache.converted(_sha256(image), "raw") is None
    assert list((tmp_path / "cache" / "spool").iterdir()) == []
    # The other target stores the bytes as they are, and gets them.
    assert result.targets["glance"].error is None


def test_an_ami_glint_made_goes_to_glance_raw_checked_against_its_sha256_tag(
    clouds, ec2, qcow2, tmp_path
):
    driver, client, _made = ec2
    image, raw = qcow2
    name = clouds.name("back")
    made = _to_ec2(clouds, ec2, ContentCache(tmp_path / "cache"), image, name)
    ami_id = made.targets["ec2"].image_id
    assert made.ok and ami_id

    back = copy_image(
        CopySource(driver, ami_id, repo_ref="ec2"),
        [CopyTarget("glance", clouds.driver(TARGETS[1]))],
        cache=ContentCache(tmp_path / "cache-2"),
    )
    assert back.ok, back.targets["glance"].error
    with clouds.driver(TARGETS[1]) as glance:
        copy = glance.get_image(back.targets["glance"].image_id)
        assert (copy.disk_format, copy.size) == ("raw", len(raw))
        assert _bytes(glance, copy.id) == raw
        assert copy.properties["glint_sha256"] == _sha256(raw)
        assert copy.properties["glint_made_from"] == f"sha256:{_sha256(image)}"

    # A tag that does not match the AMI's bytes fails the copy: nothing is kept.
    client.create_tags(Resources=[ami_id], Tags=[{"Key": "glint_sha256", "Value": "0" * 64}])
    refused = copy_image(
        CopySource(driver, ami_id, repo_ref="ec2"),
        [CopyTarget("glance", clouds.driver(TARGETS[1]), name=f"{name}-bad")],
    )
    assert isinstance(refused.targets["glance"].error, SourceVerificationFailed)
    assert clouds.images(TARGETS[1], f"{name}-bad") == []


# Group.raw_copies_format: an AMI copied to Glance as qcow2 (issue #14)


def test_an_ami_copied_to_glance_as_qcow2_is_a_conversion_naming_the_ami_s_content(
    clouds, ec2, tmp_path
):
    driver, _client, made = ec2
    # A whole number of sectors, as every real disk is: qcow2 sizes are.
    ami_id, data = _glint_ami(driver, clouds.name("as-qcow2"), tail=300 * KIB)
    made.append(ami_id)
    result = copy_image(
        CopySource(driver, ami_id, repo_ref="ec2"),
        [
            CopyTarget("qcow2", clouds.driver(TARGETS[0]), disk_format="qcow2"),
            CopyTarget("raw", clouds.driver(TARGETS[1])),
        ],
        cache=ContentCache(tmp_path / "cache"),
    )
    assert result.ok, {k: t.error for k, t in result.targets.items()}

    with clouds.driver(TARGETS[0]) as glance:
        copy = glance.get_image(result.targets["qcow2"].image_id)
        stored = _bytes(glance, copy.id)
    assert (copy.disk_format, copy.size) == ("qcow2", len(stored))
    assert read_disk(tmp_path, stored) == ("qcow2", data)
    assert copy.properties["glint_sha256"] == _sha256(stored)
    assert copy.properties["glint_made_from"] == f"sha256:{_sha256(data)}"
    # The default: the AMI's bytes as they are.
    with clouds.driver(TARGETS[1]) as glance:
        copy = glance.get_image(result.targets["raw"].image_id)
        assert copy.disk_format == "raw" and _bytes(glance, copy.id) == data
        assert copy.properties["glint_sha256"] == _sha256(data)
        assert "glint_made_from" not in copy.properties


def test_an_ami_that_is_a_conversion_goes_to_glance_as_qcow2_naming_the_original(
    clouds, ec2, qcow2, tmp_path
):
    driver, _client, _made = ec2
    image, raw = qcow2
    made = _to_ec2(clouds, ec2, ContentCache(tmp_path / "cache"), image, clouds.name("round"))
    ami_id = made.targets["ec2"].image_id
    assert made.ok and ami_id

    back = copy_image(
        CopySource(driver, ami_id, repo_ref="ec2"),
        [CopyTarget("glance", clouds.driver(TARGETS[1]), disk_format="qcow2")],
        cache=ContentCache(tmp_path / "cache-2"),
    )
    assert back.ok, back.targets["glance"].error
    with clouds.driver(TARGETS[1]) as glance:
        copy = glance.get_image(back.targets["glance"].image_id)
        stored = _bytes(glance, copy.id)
    assert copy.disk_format == "qcow2" and read_disk(tmp_path, stored) == ("qcow2", raw)
    # Made from the AMI's bytes, which were made from the qcow2 in devcloud-1: the copy names
    # that content, the row's, not the AMI's raw bytes.
    assert copy.properties["glint_made_from"] == f"sha256:{_sha256(image)}"
    assert copy.properties["glint_sha256"] == _sha256(stored)


def test_an_ami_glint_did_not_make_is_copied_by_its_block_checksums(clouds, ec2, qcow2):
    driver, _client, made = ec2
    _image, raw = qcow2
    name = clouds.name("foreign")
    ami = driver.create_and_write({"name": name, "disk_format": "raw"}, iter([raw]), size=len(raw))
    made.append(ami.id)
    assert "glint_sha256" not in ami.properties

    result = copy_image(
        CopySource(driver, ami.id, repo_ref="ec2"), [CopyTarget("glance", clouds.driver(SOURCE))]
    )
    assert result.ok, result.targets["glance"].error
    assert result.sha256 == _sha256(raw)
    with clouds.driver(SOURCE) as glance:
        copy = glance.get_image(result.targets["glance"].image_id)
        assert _bytes(glance, copy.id) == raw
        assert copy.properties["glint_sha256"] == _sha256(raw)


def test_without_a_cache_to_convert_in_only_the_raw_only_target_fails(clouds, ec2, qcow2):
    driver, _client, _made = ec2
    name = clouds.name("no-cache")
    result = _to_ec2(clouds, ec2, None, qcow2[0], name)
    error = result.targets["ec2"].error
    assert isinstance(error, ConversionFailed) and "content cache" in error.message, error
    assert [i for i in driver.list_images() if i.name == name] == []
    assert result.targets["glance"].error is None


# EC2 -> EC2: CopyImage server-side, verified after, streaming when it is refused

AWAY = "eu-central-1"  # the second region of the peer
OTHER_ACCOUNT_ROLE = "arn:aws:iam::210987654321:role/other-account"


def _glint_ami(driver, name: str, tail: int = 300 * KIB + 7) -> tuple[str, bytes]:
    """An AMI as Glint leaves a verified copy (with ``glint_sha256``): data, a zero block, data
    (``tail`` bytes of it)."""
    data = os.urandom(600 * KIB) + bytes(512 * KIB) + os.urandom(tail)
    fields = {"name": name, "glint_sha256": hashlib.sha256(data).hexdigest()}
    return driver.create_and_write(fields, [data], size=len(data)).id, data


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
        assert _bytes(away, copy.id) == data
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
    assert _bytes(driver, target.image_id) == data


def test_a_conversion_changed_in_the_cache_is_never_sent_as_complete(tmp_path):
    """The last chunk of a conversion sent to a cloud that checks writes waits for its hash."""
    from glint.replication.target_run import _file_chunks

    path = tmp_path / "converted"
    path.write_bytes(os.urandom(3 * 1024 * KIB + 5))
    good = _sha256(path.read_bytes())
    assert b"".join(_file_chunks(path, good)) == path.read_bytes()
    sent: list[bytes] = []
    with pytest.raises(TargetVerificationFailed, match="no longer hashes"):
        for chunk in _file_chunks(path, "0" * 64):
            sent.append(chunk)
    assert sum(map(len, sent)) == 3 * 1024 * KIB  # the last chunk (5 bytes) was held back
