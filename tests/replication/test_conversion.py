"""Conversions through the content cache with the real qemu-img and tar: every target format is
what ``qemu-img info`` says and holds the original disk's bytes; a failed conversion leaves
nothing behind in the cache."""

from __future__ import annotations

import hashlib
import json
import random
import subprocess
import threading

import pytest

from glint.replication import ContentCache, ConversionFailed, CopyCancelled, convert

MiB = 1024 * 1024
#: Not a whole MiB: the vhd must be rounded up.
VIRTUAL = 3 * MiB + 4096


def _store(cache: ContentCache, data: bytes):
    spool = cache.spool(len(data))
    spool.write(data)
    spool.end()
    entry = spool.commit({"sha256": hashlib.sha256(data).hexdigest()})
    spool.close()
    return entry


@pytest.fixture
def disk(tmp_path):
    """A qcow2 with data at the start and the end, and the raw disk it holds."""
    raw = tmp_path / "disk.raw"
    with raw.open("wb") as out:
        out.truncate(VIRTUAL)
        out.write(b"boot sector" * 40)
        out.seek(VIRTUAL - 4096)
        out.write(b"\xab" * 4096)
    qcow2 = tmp_path / "disk.qcow2"
    subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw, qcow2], check=True)
    return qcow2.read_bytes(), raw.read_bytes()


def _info(path, fmt):
    out = subprocess.run(
        ["qemu-img", "info", "--output=json", "-f", fmt, str(path)], check=True, capture_output=True
    )
    return json.loads(out.stdout)


def _as_raw(path, fmt, tmp_path) -> bytes:
    out = tmp_path / f"back-{fmt}.raw"
    subprocess.run(["qemu-img", "convert", "-f", fmt, "-O", "raw", path, out], check=True)
    return out.read_bytes()


@pytest.mark.parametrize(
    ("target", "qemu_format", "size"),
    [
        ("raw", "raw", VIRTUAL),
        ("qcow2", "qcow2", VIRTUAL),
        ("vmdk", "vmdk", VIRTUAL),
        ("vhd", "vpc", 4 * MiB),
    ],
)
def test_each_format_holds_the_disk(tmp_path, disk, target, qemu_format, size):
    qcow2, raw = disk
    cache = ContentCache(tmp_path / "cache", min_free_bytes=0)
    entry = _store(cache, qcow2)
    percents = []

    converted = convert(cache, entry, "qcow2", target, progress=lambda d, t: percents.append(d))

    info = _info(converted.path, qemu_format)
    assert info["format"] == qemu_format and info["virtual-size"] == size
    if target == "vmdk":
        assert info["format-specific"]["data"]["create-type"] == "streamOptimized"
    if target == "vhd":
        assert converted.size == size + 512, "fixed: the data, then the footer"
    back = _as_raw(converted.path, qemu_format, tmp_path)
    assert back[:VIRTUAL] == raw and not back[VIRTUAL:].strip(b"\0")
    assert converted.hashes["sha256"] == hashlib.sha256(converted.path.read_bytes()).hexdigest()
    if target != "qcow2":
        assert percents and percents[-1] == 10000
    again = convert(cache, entry, "qcow2", target)
    assert again.path == converted.path, "the second time comes from the cache"


def test_gce_is_disk_raw_in_a_gzip_tar(tmp_path, disk):
    qcow2, raw = disk
    cache = ContentCache(tmp_path / "cache", min_free_bytes=0)
    converted = convert(cache, _store(cache, qcow2), "qcow2", "gce")
    listing = subprocess.run(
        ["tar", "-tzf", converted.path], check=True, capture_output=True, text=True
    )
    assert listing.stdout.split() == ["disk.raw"]
    subprocess.run(["tar", "-xzf", converted.path, "-C", tmp_path], check=True)
    assert (tmp_path / "disk.raw").read_bytes() == raw


def test_a_corrupt_source_fails_and_leaves_nothing(tmp_path, disk):
    qcow2, _raw = disk
    broken = qcow2[:512] + b"\xff" * (len(qcow2) - 512)  # header kept, tables garbage
    cache = ContentCache(tmp_path / "cache", min_free_bytes=0)
    entry = _store(cache, broken)
    before = sorted(p.name for p in (tmp_path / "cache").rglob("*"))

    with pytest.raises(ConversionFailed) as failed:
        convert(cache, entry, "qcow2", "raw")

    assert "qemu-img" in failed.value.message
    assert sorted(p.name for p in (tmp_path / "cache").rglob("*")) == before


def test_a_backing_file_is_refused_before_qemu_img_reads_it(tmp_path):
    base = tmp_path / "base.raw"
    base.write_bytes(b"secret" * 100)
    overlay = tmp_path / "overlay.qcow2"
    subprocess.run(
        ["qemu-img", "create", "-q", "-f", "qcow2", "-b", base, "-F", "raw", overlay], check=True
    )
    cache = ContentCache(tmp_path / "cache", min_free_bytes=0)
    with pytest.raises(ConversionFailed, match="backing file"):
        convert(cache, _store(cache, overlay.read_bytes()), "qcow2", "raw")
    with pytest.raises(ConversionFailed, match="unknown format"):
        convert(cache, _store(cache, b"x"), "raw", "ova")


def test_a_cancel_stops_qemu_img_at_once_and_leaves_nothing(tmp_path):
    data = random.Random(7).randbytes(96 * MiB)  # takes qemu-img a second or two to compress
    cache = ContentCache(tmp_path / "cache", min_free_bytes=0)
    entry = _store(cache, data)
    before = sorted(p.name for p in (tmp_path / "cache").rglob("*"))
    cancel = threading.Event()
    reported = []

    def progress(done: int, total: int) -> None:
        reported.append(done / total)
        cancel.set()  # a person cancels as soon as the conversion shows progress

    with pytest.raises(CopyCancelled):
        convert(cache, entry, "raw", "vmdk", progress=progress, cancel=cancel)

    assert max(reported) < 1, "qemu-img was stopped before it finished"
    assert sorted(p.name for p in (tmp_path / "cache").rglob("*")) == before
