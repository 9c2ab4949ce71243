"""The content cache on a real directory: lookup by any digest, quota, expiry, free space, the
leftovers of a crashed writer, and upload parts."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time

import pytest

from glint.replication import CacheFull, ContentCache


def _store(cache: ContentCache, data: bytes):
    spool = cache.spool(len(data))
    spool.write(data)
    spool.end()
    entry = spool.commit(
        {"sha256": hashlib.sha256(data).hexdigest(), "sha512": hashlib.sha512(data).hexdigest()}
    )
    spool.close()
    return entry


def test_entry_is_found_by_any_of_its_digests(tmp_path):
    cache = ContentCache(tmp_path, min_free_bytes=0)
    data = os.urandom(5000)
    entry = _store(cache, data)
    assert cache.get(hashlib.sha256(data).hexdigest()).path == entry.path
    assert cache.find("sha512", hashlib.sha512(data).hexdigest()).path.read_bytes() == data
    assert cache.find("md5", hashlib.md5(data).hexdigest()) is None
    assert list((tmp_path / "spool").iterdir()) == []


def test_quota_evicts_the_least_recently_used_then_refuses(tmp_path):
    cache = ContentCache(tmp_path, quota_bytes=10_000, min_free_bytes=0)
    old = _store(cache, os.urandom(4000))
    time.sleep(0.01)
    used = _store(cache, os.urandom(4000))
    os.utime(old.path.with_suffix(".json"), (1, 1))  # least recently used
    cache.get(used.sha256)
    _store(cache, os.urandom(4000))
    assert cache.get(old.sha256) is None and cache.get(used.sha256) is not None
    writing = cache.spool(8_000)
    writing.write(os.urandom(8_000))
    with pytest.raises(CacheFull, match="quota 10000") as busy:
        cache.spool(4_000)  # fits once the spool being written is done: worth a retry
    assert busy.value.retryable
    writing.discard()
    writing.close()
    with pytest.raises(CacheFull, match="more than the whole quota") as never:
        cache.spool(20_000)
    assert not never.value.retryable, "it will never fit: no automatic retry"


def test_expired_entries_go_and_the_free_space_floor_holds(tmp_path):
    cache = ContentCache(tmp_path, max_age=60, min_free_bytes=0)
    entry = _store(cache, b"x" * 100)
    os.utime(entry.path.with_suffix(".json"), (time.time() - 120,) * 2)
    assert cache.evict_expired() == 1 and cache.entries() == []
    floor = ContentCache(tmp_path, min_free_bytes=10**18)
    with pytest.raises(CacheFull, match="must stay free"):
        floor.spool(1)


def test_discarded_spool_leaves_nothing(tmp_path):
    cache = ContentCache(tmp_path, min_free_bytes=0)
    spool = cache.spool(None)
    spool.write(b"partial")
    spool.discard()
    spool.close()
    assert cache.usage() == 0 and cache.entries() == []


def _killed_writer(root, data: bytes) -> None:
    """A process that starts a spool in the cache at ``root``, writes ``data``, and is killed
    with SIGKILL mid-stream (a crashed ``glint serve``)."""
    script = (
        "import sys, time\n"
        "from glint.replication import ContentCache\n"
        f"spool = ContentCache({str(root)!r}, min_free_bytes=0).spool(None)\n"
        "spool.write(sys.stdin.buffer.read())\n"
        "print('written', flush=True)\n"
        "time.sleep(60)\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    process.stdin.write(data)
    process.stdin.close()
    assert process.stdout.readline() == b"written\n"
    process.send_signal(signal.SIGKILL)
    process.wait()


def test_a_crashed_writers_spool_is_removed_and_never_counts_against_the_quota(tmp_path):
    _killed_writer(tmp_path, b"x" * 8000)
    (leftover,) = (tmp_path / "spool").iterdir()
    cache = ContentCache(tmp_path, quota_bytes=10_000, min_free_bytes=0)
    live = cache.spool(None)  # a spool this process is writing: not a leftover
    live.write(b"y" * 100)

    spool = cache.spool(5000)  # fits: the leftover is removed before the quota is checked

    assert not leftover.exists() and live.path.exists() and spool.path.exists()
    assert cache.remove_abandoned_spools() == []
    for open_spool in (live, spool):
        open_spool.discard()
        open_spool.close()


def test_an_upload_part_keeps_its_safe_bytes_and_is_never_a_leftover(tmp_path):
    cache = ContentCache(tmp_path, min_free_bytes=0)
    part = cache.upload_part("7", 0)
    part.write(b"a" * 1000)
    part.sync()
    part.close()
    assert cache.remove_abandoned_spools() == [] and cache.upload_part_size("7") == 1000

    part = cache.upload_part("7", 600)  # only 600 were recorded as safe: the rest goes
    assert part.written == 600 and part.read_at(0, 10_000) == b"a" * 600
    part.write(b"b" * 400)
    entry = part.commit({"sha256": hashlib.sha256(b"a" * 600 + b"b" * 400).hexdigest()})
    part.close()
    assert entry.path.read_bytes() == b"a" * 600 + b"b" * 400 and cache.upload_part_keys() == []
    with pytest.raises(ValueError, match="fewer than 10"):
        cache.upload_part("8", 10)
