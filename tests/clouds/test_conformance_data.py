"""Conformance: image data goes in as a stream and comes back byte-identical.

Checks what the replication engine relies on: a generator can be written without the driver
gathering it in memory, the cloud's own hashes (where it publishes one) equal ours, a read can
resume in the middle, a failed write leaves no image with data, and the cloud's format
inspection surfaces as :class:`FormatRefused`. Run against every kind (``conftest.py``).
"""

from __future__ import annotations

import subprocess
import time
import tracemalloc
from pathlib import Path

import pytest

from glint.clouds import (
    CHUNK_SIZE,
    Conflict,
    FormatRefused,
    ImageNotReady,
    NotFound,
    SizeMismatch,
)
from glint.replication.chunk_memory import ChunkPool
from tests.clouds.helpers import unique_name

from .streams import Hashes, MiB, same_bytes, seeded_chunks

pytestmark = pytest.mark.devcloud

BIG = 50 * MiB


def test_streamed_write_and_read_back_50mib(target, new_image):
    """50 MiB from a generator: bounded memory, the cloud's hashes equal ours, read-back
    identical."""
    hashes = Hashes()
    started = new_image("big")
    tracemalloc.start()
    try:
        record = started.write(hashes.tee(seeded_chunks(1, BIG)), size=BIG)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < target.kit.write_buffer, (
        f"the write held {peak / MiB:.1f} MiB at once: it is not streaming"
    )

    assert record.status == "active"
    assert record.size == BIG
    assert (record.checksum, record.hash_algo, record.hash_value) == target.kit.cloud_hashes(
        hashes, target.hash_algo
    )

    back = Hashes()
    with target.driver.open_read(record.id) as reader:
        assert reader.size == BIG and reader.offset == 0
        sizes = []
        equal, where = same_bytes(back.tee(_noting(reader, sizes)), seeded_chunks(1, BIG))
    assert equal, f"read-back differs at byte {where}"
    assert back.size == BIG and back.hexdigest("sha256") == hashes.hexdigest("sha256")
    assert max(sizes) <= CHUNK_SIZE and len(sizes) >= BIG // CHUNK_SIZE


def _noting(chunks, sizes):
    for chunk in chunks:
        sizes.append(len(chunk))
        yield chunk


def test_resumed_range_read(target, new_image):
    """A read stopped part-way resumes at the byte it stopped, via offset (HTTP Range)."""
    size = 3 * MiB + 12345
    record = new_image("range").write(seeded_chunks(2, size), size=size)

    got = Hashes()
    with target.driver.open_read(record.id) as reader:
        first = next(iter(reader))
        consumed = sum(len(c) for c in got.tee([first]))
    middle = consumed + 777  # not on a chunk boundary
    skipped = _slice(seeded_chunks(2, size), consumed, middle)
    list(got.tee([skipped]))
    with target.driver.open_read(record.id, offset=middle) as reader:
        assert reader.offset == middle and reader.size == size
        list(got.tee(reader))
    whole = Hashes()
    list(whole.tee(seeded_chunks(2, size)))
    assert got.size == size and got.hexdigest("sha256") == whole.hexdigest("sha256")


def test_read_from_the_end_yields_nothing(target, new_image):
    """A resumed read whose offset is the image's size has nothing left: no chunk at all (an
    empty one reads as the end of a stream to some consumers)."""
    size = MiB + 12345
    record = new_image("end").write(seeded_chunks(2, size), size=size)
    with target.driver.open_read(record.id, offset=size) as reader:
        assert list(reader) == []


def test_read_into_reused_buffers_is_byte_identical_and_resumes(target, new_image):
    """``chunks_into``: the same bytes as iterating, from the start and from an offset, into
    buffers the caller reuses (the engine's ChunkPool): a driver that reads straight into them
    (Glance) never writes a buffer the caller still holds, and needs only a few of them."""
    size = 5 * MiB + 4321
    record = new_image("into").write(seeded_chunks(3, size), size=size)
    for offset in (0, 2 * MiB + 5):
        pool, got = ChunkPool(), Hashes()
        with target.driver.open_read(record.id, offset=offset) as reader:
            list(got.tee(bytes(chunk) for chunk in reader.chunks_into(pool.take)))
        want = Hashes()
        list(want.tee([_slice(seeded_chunks(3, size), offset, size)]))
        assert got.size == size - offset
        assert got.hexdigest("sha256") == want.hexdigest("sha256")
        assert len(pool) <= 2


def _slice(chunks, start, stop):
    out, pos = [], 0
    for chunk in chunks:
        lo, hi = max(start - pos, 0), min(stop - pos, len(chunk))
        if lo < hi:
            out.append(chunk[lo:hi])
        pos += len(chunk)
    return b"".join(out)


@pytest.mark.kinds("openstack", why="an EC2 AMI exists only once its snapshot is written")
def test_read_of_image_without_data(target, new_image):
    started = new_image("nodata")
    with pytest.raises(ImageNotReady):
        target.driver.open_read(started.record.id)


@pytest.mark.kinds(
    "openstack",
    why="an EC2 write makes a new AMI each time: a second one of a name is registered under a "
    "name of its own (test_ec2_driver), which the replace and rename-old policies need",
)
def test_second_write_conflicts(new_image):
    """Writing an image's data twice is a conflict naming the image."""
    started = new_image("twice")
    started.write([b"\1" * 4096], size=4096)
    with pytest.raises(Conflict) as info:
        started.write([b"\1" * 4096], size=4096)
    assert info.value.code == "conflict" and started.names[0] in str(info.value)


@pytest.mark.parametrize("announced", [3 * MiB, MiB], ids=["stream-short", "stream-long"])
def test_stream_of_other_size_than_announced_is_refused(new_image, announced):
    """With a size the body goes out with Content-Length: a stream that ends early must not leave
    the cloud waiting for the rest, and one that runs on must not send its excess. Either way
    SizeMismatch naming the image where it exists, and the image takes no data."""
    started = new_image(f"size-{announced}")
    with pytest.raises(SizeMismatch) as info:
        started.write(seeded_chunks(5, 2 * MiB), size=announced)
    assert str(announced) in str(info.value)
    assert all(name in str(info.value) for name in started.names)
    assert started.left_without_data()


def test_stream_failing_at_its_end_leaves_the_image_without_data(new_image):
    """The engine checks the source's hash when its stream ends, after the last byte: that
    failure must still stop the image, so the last chunk of a sized body (EC2: the snapshot
    until it is completed) is held until the caller's stream has ended."""
    started = new_image("late-failure")

    def chunks():
        yield from seeded_chunks(6, 2 * MiB)
        time.sleep(1)  # the cloud has had time to read every byte sent so far
        raise ValueError("the source's bytes do not match its hash")

    with pytest.raises(ValueError, match="do not match"):
        started.write(chunks(), size=2 * MiB)
    assert started.left_without_data()


def test_delete(target):
    record = target.driver.create_and_write(
        {"name": unique_name("delete"), "disk_format": "raw", "container_format": "bare"},
        [b"x" * 1000],
        size=1000,
    )
    target.driver.delete(record.id)
    with pytest.raises(NotFound):
        target.driver.get_image(record.id)
    with pytest.raises(NotFound):
        target.driver.delete(record.id)
    with pytest.raises(NotFound), target.driver.open_read(record.id) as reader:
        b"".join(reader)


@pytest.fixture(scope="session")
def small_qcow2(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("qcow2") / "disk.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(path), "64M"], check=True)
    return path


def _file_chunks(path: Path):
    with path.open("rb") as handle:
        while chunk := handle.read(64 * 1024):
            yield chunk


@pytest.mark.kinds("openstack", why="EC2 stores raw disks: it refuses any qcow2 (test below)")
def test_real_qcow2_accepted(target, new_image, small_qcow2):
    record = new_image("qcow2", disk_format="qcow2").write(_file_chunks(small_qcow2))
    assert record.status == "active" and record.disk_format == "qcow2"
    assert record.size == small_qcow2.stat().st_size
    assert record.virtual_size == 64 * MiB
    with target.driver.open_read(record.id) as reader:
        equal, where = same_bytes(reader, _file_chunks(small_qcow2))
    assert equal, f"differs at byte {where}"


def test_random_bytes_declared_qcow2_refused(target):
    """The cloud inspects data; create_and_write leaves no image behind when it is refused."""
    name = unique_name("notqcow2")
    with pytest.raises(FormatRefused) as info:
        target.driver.create_and_write(
            {"name": name, "disk_format": "qcow2", "container_format": "bare"},
            seeded_chunks(3, 2 * MiB),
        )
    assert info.value.code == "format_refused"
    assert "qcow2" in str(info.value)
    assert not [i for i in target.driver.list_images() if i.name == name]


def test_refused_image_is_left_without_data(new_image):
    """After a refusal the image holds no data (OpenStack: its record is back to ``queued`` and
    can be deleted).

    Write the right data to a *new* image: Glance 33 keeps the refused bytes in its file store,
    so a second upload to the same image fails with HTTP 500 ("already exists" in its log).
    """
    started = new_image("refused", disk_format="qcow2")
    with pytest.raises(FormatRefused):
        started.write(seeded_chunks(4, MiB), size=MiB)
    assert started.left_without_data()
