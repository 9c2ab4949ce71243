"""Copies proven by the clouds' own hashes (real Keystone + Glance of devcloud).

When the source's Glance recorded a sha512 and a target's Glance hashes with sha512 too, the
target's own value proves its copy, so Glint hashes the stream only with sha256 (its content
key). A copy whose reported hash differs is refused; a target that reports no hash is read back
and hashed by Glint.
"""

from __future__ import annotations

import dataclasses

import pytest

from glint.replication import (
    ContentCache,
    CopySource,
    CopyTarget,
    SourceVerificationFailed,
    TargetOutcome,
    TargetVerificationFailed,
    copy_image,
)
from glint.replication import fanout as fanout_module
from tests.replication.helpers import SOURCE, TARGETS, flip_byte

pytestmark = pytest.mark.devcloud

KIB = 1024
SHA512_TARGET = TARGETS[0]  # the same algorithm as the source
OTHER_SHA512_TARGET = f"{SHA512_TARGET}-p2"


@pytest.fixture
def stream_algorithms(monkeypatch) -> list[tuple[str, ...]]:
    """The algorithms each fan-out hashes its stream with (the hasher is only watched)."""
    seen: list[tuple[str, ...]] = []

    class Watched(fanout_module.MultiHasher):
        def __init__(self, algorithms):
            algorithms = tuple(algorithms)
            seen.append(algorithms)
            super().__init__(algorithms)

    monkeypatch.setattr(fanout_module, "MultiHasher", Watched)
    return seen


def damaging(driver):
    """The driver with one byte of its upload flipped on the way (a damaged transfer; a real
    network between two loopback processes cannot be made to do it)."""
    write_data = driver.write_data

    def write_damaged(image_id, chunks, size=None):
        def flipped():
            for index, chunk in enumerate(chunks):
                yield bytes([chunk[0] ^ 0xFF]) + chunk[1:] if index == 0 else chunk

        return write_data(image_id, flipped(), size=size)

    driver.write_data = write_damaged
    return driver


def hashless(driver):
    """The driver with the hashes left out of every record it returns (a mock: a real Glance
    always reports its os_hash_value and checksum)."""

    def strip(record):
        return dataclasses.replace(record, hash_algo=None, hash_value=None, checksum=None)

    get_image, write_data = driver.get_image, driver.write_data
    driver.get_image = lambda image_id: strip(get_image(image_id))
    driver.write_data = lambda image_id, chunks, size=None: strip(
        write_data(image_id, chunks, size=size)
    )
    return driver


def copy(clouds, source_id, targets, tmp_path, *, read_once=False):
    return copy_image(
        CopySource(clouds.driver(SOURCE), source_id, repo_ref="r1", read_once=read_once),
        targets,
        cache=ContentCache(tmp_path / "cache", min_free_bytes=0),
    )


@pytest.mark.parametrize("read_once", [False, True])
def test_the_targets_hash_proves_the_copy_and_glint_hashes_only_sha256(
    clouds, tmp_path, stream_algorithms, read_once
):
    """Also for a source that can be read only once: its whole stream is spooled, and kept in
    the cache once the target's hash proved it."""
    source_id = clouds.make_image(SOURCE, 700 * KIB + 3)
    target = CopyTarget("t", clouds.driver(SHA512_TARGET))
    result = copy(clouds, source_id, [target], tmp_path, read_once=read_once)

    assert result.ok, result.targets["t"].error
    assert stream_algorithms == [("sha256",)]
    source = result.source
    assert result.hashes["sha512"] == source.hash_value
    with clouds.driver(SHA512_TARGET) as driver:
        copy_record = driver.get_image(result.targets["t"].image_id)
    assert copy_record.hash_value == source.hash_value
    assert copy_record.properties["glint_sha256"] == result.sha256
    entry = ContentCache(tmp_path / "cache").find("sha512", source.hash_value)
    if read_once:  # the proven bytes stay in the cache, findable by the source's own hash
        assert entry is not None and entry.sha256 == result.sha256
    else:  # nothing was spooled (the target kept up), so nothing is kept
        assert result.spooled_bytes == 0 and entry is None


def test_a_stream_its_caller_keeps_is_not_spooled_again_and_glint_hashes_it_itself(
    clouds, tmp_path, stream_algorithms
):
    """An upload's stream is written into its part file as it arrives: the engine writes none of
    it to disk again, and since nothing can read the stream a second time, Glint hashes it with
    the target's algorithm itself instead of leaving the proof to the target's hash."""
    source_id = clouds.make_image(SOURCE, 700 * KIB + 3)
    cache = ContentCache(tmp_path / "cache", min_free_bytes=0)
    result = copy_image(
        CopySource(
            clouds.driver(SOURCE), source_id, repo_ref="r1", read_once=True, kept_by_caller=True
        ),
        [CopyTarget("t", clouds.driver(SHA512_TARGET))],
        cache=cache,
    )

    assert result.ok, result.targets["t"].error
    assert (result.spooled_bytes, cache.entries()) == (0, [])
    assert [set(algorithms) for algorithms in stream_algorithms] == [{"sha256", "sha512"}]
    assert result.hashes["sha512"] == result.source.hash_value


def test_a_copy_whose_hash_differs_from_the_sources_is_refused(clouds, tmp_path):
    """One target's upload is damaged on the way: its Glance reports another sha512, and that
    copy is deleted; the other target's copy is proven and kept."""
    source_id = clouds.make_image(SOURCE, 300 * KIB)
    targets = [
        CopyTarget("damaged", damaging(clouds.driver(SHA512_TARGET))),
        CopyTarget("clean", clouds.driver(OTHER_SHA512_TARGET)),
    ]
    result = copy(clouds, source_id, targets, tmp_path)

    damaged = result.targets["damaged"]
    assert damaged.outcome is TargetOutcome.FAILED
    assert isinstance(damaged.error, TargetVerificationFailed)
    assert "source cloud recorded" in str(damaged.error)
    assert clouds.images(SHA512_TARGET) == []
    assert result.targets["clean"].outcome is TargetOutcome.COPIED
    assert result.hashes["sha512"] == result.source.hash_value


@pytest.mark.parametrize("read_once", [False, True])
def test_a_corrupt_source_is_named_when_every_targets_hash_differs(clouds, tmp_path, read_once):
    """The source's store file is damaged: the target's hash differs from the source's record,
    and hashing the source's bytes again shows the source, not the transfer, is at fault: a
    second read of the source (nothing was spooled), or the whole spool of a source that can be
    read only once."""
    source_id = clouds.make_image(SOURCE, 2 * 1024 * KIB + 5)
    flip_byte(clouds.devcloud.store_dir(SOURCE) / source_id, 1_000_000)
    target = CopyTarget("t", clouds.driver(SHA512_TARGET))
    result = copy(clouds, source_id, [target], tmp_path, read_once=read_once)

    error = result.targets["t"].error
    assert isinstance(error, SourceVerificationFailed) and "corrupt" in str(error)
    assert clouds.images(SHA512_TARGET) == []
    assert ContentCache(tmp_path / "cache").entries() == []


@pytest.mark.parametrize("damaged", [False, True])
def test_a_target_reporting_no_hash_is_verified_by_reading_it_back(clouds, tmp_path, damaged):
    source_id = clouds.make_image(SOURCE, 300 * KIB + 1)
    driver = hashless(clouds.driver(SHA512_TARGET))
    if damaged:
        driver = damaging(driver)
    result = copy(clouds, source_id, [CopyTarget("t", driver)], tmp_path)

    target = result.targets["t"]
    if damaged:
        assert isinstance(target.error, TargetVerificationFailed)
        assert clouds.images(SHA512_TARGET) == []
    else:
        assert target.outcome is TargetOutcome.COPIED, target.error
        assert result.hashes["sha512"] == result.source.hash_value
