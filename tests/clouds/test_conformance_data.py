"""Conformance: image data goes in as a stream and comes back byte-identical.

Checks what the replication engine relies on: a generator can be written without the driver
gathering it in memory, the cloud's own hashes equal ours, a read can resume in the middle, and
the cloud's format inspection surfaces as :class:`FormatRefused`.
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

from .streams import Hashes, MiB, same_bytes, seeded_chunks

pytestmark = pytest.mark.devcloud

BIG = 50 * MiB


def test_streamed_write_and_read_back_50mib(target, cleanup):
    """50 MiB from a generator: bounded memory, Glance's hashes equal ours, read-back identical."""
    hashes = Hashes()
    tracemalloc.start()
    try:
        record = target.driver.create_image(
            {"name": "glint-test-big", "disk_format": "raw", "container_format": "bare"}
        )
        cleanup(target.driver, record.id)
        record = target.driver.write_data(record.id, hashes.tee(seeded_chunks(1, BIG)), size=BIG)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 * MiB, f"the write held {peak / MiB:.1f} MiB at once: it is not streaming"

    assert record.status == "active"
    assert record.size == BIG
    assert record.checksum == hashes.hexdigest("md5")
    assert record.hash_algo == target.hash_algo
    assert record.hash_value == hashes.hexdigest(target.hash_algo)

    back = Hashes()
    with target.driver.open_read(record.id) as reader:
        assert reader.size == BIG and reader.offset == 0
        sizes = []
        equal, where = same_bytes(back.tee(_noting(reader, sizes)), seeded_chunks(1, BIG))
    assert equal, f"read-back differs at byte {where}"
    assert back.size == BIG and back.hexdigest(target.hash_algo) == record.hash_value
    assert max(sizes) <= CHUNK_SIZE and len(sizes) >= BIG // CHUNK_SIZE


def _noting(chunks, sizes):
    for chunk in chunks:
        sizes.append(len(chunk))
        yield chunk


def test_resumed_range_read(target, new_image):
    """A read stopped part-way resumes at the byte it stopped, via offset (HTTP Range)."""
    size = 3 * MiB + 12345
    record = new_image("range")
    target.driver.write_data(record.id, seeded_chunks(2, size), size=size)

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

    with target.driver.open_read(record.id, offset=size) as reader:
        assert list(reader) == []


def test_read_into_reused_buffers_is_byte_identical_and_resumes(target, new_image):
    """``chunks_into``: the same bytes as iterating, from the start and from an offset, into
    buffers the caller reuses (the engine's ChunkPool): a driver that reads straight into them
    (Glance) never writes a buffer the caller still holds, and needs only a few of them."""
    size = 5 * MiB + 4321
    record = new_image("into")
    target.driver.write_data(record.id, seeded_chunks(3, size), size=size)
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


def test_read_of_image_without_data(target, new_image):
    record = new_image("nodata")
    with pytest.raises(ImageNotReady):
        target.driver.open_read(record.id)


def test_second_write_conflicts(target, new_image):
    record = new_image("twice")
    target.driver.write_data(record.id, [b"\0" * 4096])
    with pytest.raises(Conflict) as info:
        target.driver.write_data(record.id, [b"\0" * 4096])
    assert info.value.code == "conflict" and record.id in str(info.value)


@pytest.mark.parametrize("announced", [3 * MiB, MiB], ids=["stream-short", "stream-long"])
def test_stream_of_other_size_than_announced_is_refused(target, new_image, announced):
    """With a size the body goes out with Content-Length: a stream that ends early must not leave
    the cloud waiting for the rest, and one that runs on must not send its excess. Either way
    SizeMismatch, and the image takes no data: it never becomes ``active`` and ends ``queued``
    (through ``saving`` while a TLS front-end still passes the broken request on), deletable."""
    record = new_image(f"size-{announced}")
    with pytest.raises(SizeMismatch) as info:
        target.driver.write_data(record.id, seeded_chunks(5, 2 * MiB), size=announced)
    assert str(announced) in str(info.value) and record.id in str(info.value)
    assert _settled(target.driver, record.id).status == "queued"
    target.driver.delete(record.id)


def test_stream_failing_at_its_end_leaves_the_image_inactive(target, new_image):
    """The engine checks the source's hash when its stream ends, after the last byte: that
    failure must still stop the image, so the last chunk of a sized body is held until the
    caller's stream has ended."""
    record = new_image("late-failure")

    def chunks():
        yield from seeded_chunks(6, 2 * MiB)
        time.sleep(1)  # the cloud has had time to read every byte sent so far
        raise ValueError("the source's bytes do not match its hash")

    with pytest.raises(ValueError, match="do not match"):
        target.driver.write_data(record.id, chunks(), size=2 * MiB)
    assert _settled(target.driver, record.id).status == "queued"


def _settled(driver, image_id: str, seconds: float = 10):
    """The image once it has left ``saving`` (an aborted upload takes Glance a moment)."""
    deadline = time.monotonic() + seconds
    while (record := driver.get_image(image_id)).status == "saving" and time.monotonic() < deadline:
        time.sleep(0.1)
    return record


def test_delete(target):
    record = target.driver.create_and_write(
        {"name": "glint-test-delete", "disk_format": "raw", "container_format": "bare"},
        [b"x" * 1000],
    )
    target.driver.delete(record.id)
    with pytest.raises(NotFound):
        target.driver.get_image(record.id)
    with pytest.raises(NotFound):
        target.driver.delete(record.id)


@pytest.fixture(scope="session")
def small_qcow2(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("qcow2") / "disk.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(path), "64M"], check=True)
    return path


def _file_chunks(path: Path):
    with path.open("rb") as handle:
        while chunk := handle.read(64 * 1024):
            yield chunk


def test_real_qcow2_accepted(target, new_image, small_qcow2):
    record = new_image("qcow2", disk_format="qcow2")
    record = target.driver.write_data(record.id, _file_chunks(small_qcow2))
    assert record.status == "active" and record.disk_format == "qcow2"
    assert record.size == small_qcow2.stat().st_size
    assert record.virtual_size == 64 * MiB
    with target.driver.open_read(record.id) as reader:
        equal, where = same_bytes(reader, _file_chunks(small_qcow2))
    assert equal, f"differs at byte {where}"


def test_random_bytes_declared_qcow2_refused(target):
    """The cloud inspects data; create_and_write leaves no image behind when it is refused."""
    name = "glint-test-notqcow2"
    with pytest.raises(FormatRefused) as info:
        target.driver.create_and_write(
            {"name": name, "disk_format": "qcow2", "container_format": "bare"},
            seeded_chunks(3, 2 * MiB),
        )
    assert info.value.code == "format_refused"
    assert "qcow2" in str(info.value)
    assert not [i for i in target.driver.list_images() if i.name == name]


def test_refused_image_is_left_queued(target, new_image):
    """After a refusal the record is back to ``queued`` and can be deleted.

    Write the right data to a *new* image: Glance 33 keeps the refused bytes in its file store,
    so a second upload to the same image fails with HTTP 500 ("already exists" in its log).
    """
    record = new_image("refused", disk_format="qcow2")
    with pytest.raises(FormatRefused):
        target.driver.write_data(record.id, seeded_chunks(4, MiB))
    assert target.driver.get_image(record.id).status == "queued"
    target.driver.delete(record.id)
