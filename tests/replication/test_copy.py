"""Copies between real clouds (devcloud: real Keystone + Glance on loopback)."""

from __future__ import annotations

import threading

import pytest

from glint.replication import (
    ContentCache,
    CopyCancelled,
    CopyObserver,
    CopySource,
    CopyTarget,
    SourceVerificationFailed,
    TargetOutcome,
    TargetState,
    cache_image,
    copy_image,
)
from tests.replication.helpers import SOURCE, TARGETS, flip_byte

pytestmark = pytest.mark.devcloud

KIB = 1024


class Recorder(CopyObserver):
    """Keeps every event, and the thread each arrived in."""

    def __init__(self):
        self.events = []

    def image_created(self, target_key, image_id):
        self.events.append(("created", target_key, image_id))

    def state_changed(self, target_key, state):
        self.events.append(("state", target_key, state))

    def progress(self, target_key, code, done, total):
        self.events.append(("progress", target_key, code, done, total))

    def warning(self, target_key, message):
        self.events.append(("warning", target_key, message))


def test_copy_to_two_clouds_verified_with_properties_and_provenance(clouds, tmp_path):
    """A copy to a cloud behind another Keystone (sha512) and one hashing with sha256: both
    verified by their own hashes, portable properties carried, cloud-local ones not,
    provenance set, private until verified and then the chosen visibility."""
    source_id = clouds.make_image(
        SOURCE,
        300 * KIB + 7,
        min_disk=2,
        min_ram=128,
        tags=["base", "el9"],
        hw_disk_bus="virtio",
        os_distro="almalinux",
        os_version="9",
        architecture="x86_64",
        site_note="keep me",
        img_signature="c2lnbmF0dXJl",
        img_signature_hash_method="SHA-256",
        instance_uuid="0b7f2b4e-0000-4000-8000-000000000000",
    )
    recorder = Recorder()
    targets = [
        CopyTarget("two", clouds.driver(TARGETS[0]), visibility="community"),
        CopyTarget("three", clouds.driver(TARGETS[1])),
    ]
    result = copy_image(
        CopySource(clouds.driver(SOURCE), source_id, repo_ref="repo-1"),
        targets,
        cache=ContentCache(tmp_path / "cache", min_free_bytes=0),
        observer=recorder,
    )

    assert result.ok, {k: t.error for k, t in result.targets.items()}
    source = result.source
    for key, cloud, visibility in (
        ("two", TARGETS[0], "community"),
        ("three", TARGETS[1], "private"),
    ):
        target = result.targets[key]
        assert target.outcome is TargetOutcome.COPIED
        assert target.bytes_written == source.size
        with clouds.driver(cloud) as driver:
            copy = driver.get_image(target.image_id)
        assert copy.status == "active" and copy.size == source.size
        assert copy.checksum == source.checksum
        assert copy.hash_algo == clouds.devcloud.hash_algo(cloud)
        assert result.hashes[copy.hash_algo] == copy.hash_value
        assert copy.visibility == visibility
        assert (copy.name, copy.min_disk, copy.min_ram) == (source.name, 2, 128)
        assert sorted(copy.tags) == ["base", "el9"]
        assert (copy.disk_format, copy.container_format) == ("raw", "bare")
        props = copy.properties
        assert {
            k: props.get(k)
            for k in ("hw_disk_bus", "os_distro", "os_version", "architecture", "site_note")
        } == {
            "hw_disk_bus": "virtio",
            "os_distro": "almalinux",
            "os_version": "9",
            "architecture": "x86_64",
            "site_note": "keep me",
        }
        for denied in ("img_signature", "img_signature_hash_method", "instance_uuid"):
            assert denied not in props
        assert props["glint_source_repo"] == "repo-1"
        assert props["glint_source_id"] == source_id
        assert props["glint_sha256"] == result.sha256
        assert props["owner_specified.openstack.sha256"] == result.sha256
        assert props["owner_specified.openstack.md5"] == source.checksum
        # Created private; the chosen visibility only after the verification.
        states = [e[2] for e in recorder.events if e[0] == "state" and e[1] == key]
        assert states == [TargetState.WRITING, TargetState.VERIFYING, TargetState.DONE]
    created = {e[1]: e[2] for e in recorder.events if e[0] == "created"}
    assert created == {
        "two": result.targets["two"].image_id,
        "three": result.targets["three"].image_id,
    }
    # Neither target fell behind, so not a byte went to the spool and the cache keeps nothing
    # (issue 13): a retry reads the source again.
    assert result.spooled_bytes == 0
    assert ContentCache(tmp_path / "cache").entries() == []


def test_second_copy_finds_the_first_and_writes_nothing(clouds):
    """Idempotency: copying again to a target that has a verified copy does no work."""
    source_id = clouds.make_image(SOURCE, 64 * KIB)
    source = CopySource(clouds.driver(SOURCE), source_id, repo_ref="r1")
    first = copy_image(source, [CopyTarget("t", clouds.driver(TARGETS[0]))])
    assert first.ok
    again = copy_image(source, [CopyTarget("t", clouds.driver(TARGETS[0]))])
    assert again.targets["t"].outcome is TargetOutcome.EXISTS
    assert again.targets["t"].image_id == first.targets["t"].image_id
    assert len(clouds.images(TARGETS[0])) == 1


def test_a_copy_costs_keystone_no_new_token(clouds):
    """Every job opens fresh drivers; once one has authenticated, the shared tokens serve the
    next copies, and telling the target's own images from others' (its project id) needs no
    new token. It used to authenticate once per target of every job (issue 13)."""
    first, second = (
        clouds.make_image(SOURCE, 64 * KIB, name=clouds.name(f"token-{seed}"), seed=seed)
        for seed in (1, 2)
    )

    def copy(source_id: str):
        result = copy_image(
            CopySource(clouds.driver(SOURCE), source_id, repo_ref="r1"),
            [CopyTarget(cloud, clouds.driver(cloud)) for cloud in TARGETS],
        )
        assert result.ok, {k: t.error for k, t in result.targets.items()}
        assert {t.outcome for t in result.targets.values()} == {TargetOutcome.COPIED}

    keystones = {clouds.devcloud.keystone_url(c): c for c in (SOURCE, *TARGETS)}.values()

    def tokens_issued() -> int:
        return sum(
            line.startswith("POST /v3/auth/tokens")
            for cloud in keystones
            for line in clouds.devcloud.keystone_requests(cloud)
        )

    copy(first)  # the first drivers of this process may have to authenticate
    before = tokens_issued()
    copy(second)
    assert tokens_issued() == before


def test_corrupt_source_fails_every_target_and_leaves_no_copy(clouds):
    """Flip one byte of the source's file in the Glance store: the bytes no longer match the
    source's stored hash, every target fails with a verification error, none keeps a copy."""
    source_id = clouds.make_image(SOURCE, 2 * 1024 * KIB + 5)
    flip_byte(clouds.devcloud.store_dir(SOURCE) / source_id, 1_000_000)
    targets = [CopyTarget(c, clouds.driver(c)) for c in TARGETS]
    result = copy_image(CopySource(clouds.driver(SOURCE), source_id, repo_ref="r1"), targets)
    for target in result.targets.values():
        assert target.state is TargetState.FAILED
        assert isinstance(target.error, SourceVerificationFailed)
        assert "corrupt" in str(target.error)
    for cloud in TARGETS:
        assert clouds.images(cloud) == []


def test_retry_reads_the_cache_not_the_source(clouds, tmp_path):
    """A target retried after the first copy of a source that can be read only once (as an
    upload's stream) reads the verified bytes from the cache: the source driver's reads are
    made to fail, and the copy still succeeds (real clouds; only the source read is
    instrumented)."""
    cache = ContentCache(tmp_path, min_free_bytes=0)
    source_id = clouds.make_image(SOURCE, 1024 * KIB + 3)
    first = copy_image(
        CopySource(clouds.driver(SOURCE), source_id, "r1", read_once=True),
        [CopyTarget("a", clouds.driver(TARGETS[0]))],
        cache=cache,
    )
    assert first.ok and first.spooled_bytes == first.source.size
    source = clouds.driver(SOURCE)

    def no_reads(*args, **kwargs):
        raise AssertionError("the source was read again")

    source.open_read = no_reads
    again = copy_image(
        CopySource(source, source_id, "r1"),
        [CopyTarget("b", clouds.driver(TARGETS[1]))],
        cache=cache,
    )
    assert again.ok, again.targets["b"].error
    assert again.sha256 == first.sha256
    with clouds.driver(TARGETS[1]) as driver:
        assert driver.get_image(again.targets["b"].image_id).checksum == first.source.checksum


def test_retry_after_a_crash_deletes_the_half_written_image_and_never_duplicates(clouds):
    """A crash left the image the job recorded half-written (created, no data): the retry
    deletes it and makes one verified copy; a retry after a crash following the upload
    finishes the copy it finds instead of writing again."""
    source_id = clouds.make_image(SOURCE, 256 * KIB)
    target_driver = clouds.driver(TARGETS[0])
    leftover = target_driver.create_image(
        {
            "name": clouds.name(),
            "disk_format": "raw",
            "container_format": "bare",
            "visibility": "private",
            "glint_source_repo": "r1",
            "glint_source_id": source_id,
        }
    )
    result = copy_image(
        CopySource(clouds.driver(SOURCE), source_id, "r1"),
        [CopyTarget("t", target_driver, previous_image_id=leftover.id)],
    )
    assert result.targets["t"].outcome is TargetOutcome.COPIED
    assert [i.id for i in clouds.images(TARGETS[0])] == [result.targets["t"].image_id]

    again = copy_image(
        CopySource(clouds.driver(SOURCE), source_id, "r1"),
        [
            CopyTarget(
                "t", clouds.driver(TARGETS[0]), previous_image_id=result.targets["t"].image_id
            )
        ],
    )
    assert again.targets["t"].outcome is TargetOutcome.EXISTS
    assert len(clouds.images(TARGETS[0])) == 1


def test_a_cancel_ends_a_read_into_the_cache_from_a_source_that_hangs(clouds, devcloud, tmp_path):
    """A conversion job reads its source into the cache first; a cancel while the source cloud
    hangs (frozen mid-stream, its connection open) ends the read now, not at the read timeout,
    and keeps nothing."""
    image_id = clouds.make_image(SOURCE, 48 * 1024 * KIB)
    cache = ContentCache(tmp_path / "cache", min_free_bytes=0)
    reading, frozen, cancel = threading.Event(), threading.Event(), threading.Event()
    outcome: list[BaseException | tuple] = []

    def progress(done: int, total: int) -> None:
        reading.set()
        frozen.wait(30)  # the next read of the socket finds the source frozen

    def read() -> None:
        try:
            outcome.append(
                cache_image(
                    clouds.driver(SOURCE), image_id, cache, progress=progress, cancel=cancel
                )
            )
        except BaseException as exc:  # noqa: BLE001 - the test looks at it
            outcome.append(exc)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    assert reading.wait(60), "the read began"
    with devcloud.frozen(SOURCE):
        frozen.set()
        cancel.set()
        reader.join(15)
        assert not reader.is_alive(), "the cancel ended the blocked read"
    assert len(outcome) == 1 and isinstance(outcome[0], CopyCancelled), outcome
    assert not [p for p in (tmp_path / "cache").rglob("*") if p.is_file() and p.stat().st_size]
