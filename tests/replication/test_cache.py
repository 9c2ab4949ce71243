"""The content cache on a real directory: lookup by any digest, quota, expiry, free space."""

from __future__ import annotations

import hashlib
import os
import time

import pytest

from glint.replication import CacheFull, ContentCache


def _store(cache: ContentCache, data: bytes):
    spool = cache.spool(len(data))
    spool.write(data)
    spool.end()
    entry = spool.commit({"sha256": hashlib.sha256(data).hexdigest(),
                          "sha512": hashlib.sha512(data).hexdigest()})
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
    with pytest.raises(CacheFull, match="quota 10000"):
        cache.spool(20_000)


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
