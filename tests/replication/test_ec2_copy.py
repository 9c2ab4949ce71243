"""Copies into EC2 (devcloud's patched moto peer), a cloud that writes an image in one step and
stores raw disks only, and out of it."""

from __future__ import annotations

import hashlib

import pytest

from glint.clouds import CloudError, get_driver
from glint.replication import (
    ContentCache,
    ConversionFailed,
    CopyObserver,
    CopySource,
    CopyTarget,
    SourceVerificationFailed,
    copy_image,
)
from tests.ec2_peer import peer_client, peer_connection
from tests.replication.helpers import (
    SOURCE,
    TARGETS,
    flip_byte,
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


def test_a_qcow2_image_reaches_ec2_as_raw_and_other_targets_as_it_is(clouds, ec2, qcow2, tmp_path):
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
