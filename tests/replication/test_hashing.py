"""MultiHasher: every algorithm's digest of the whole stream, and no helper thread left behind."""

from __future__ import annotations

import hashlib
import os
import threading

from glint.replication.hashing import MultiHasher


def hash_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("glint-hash")]


def test_each_algorithm_digests_the_whole_stream_in_order():
    chunks = [
        os.urandom(size) for size in (1, 4096, 2**20, 3, 2**20 + 7)
    ]  # small ones stay under the GIL
    with MultiHasher(["sha256", "sha512", "md5"]) as hasher:
        for chunk in chunks:
            hasher.update(chunk)
    whole = b"".join(chunks)
    assert hasher.size == len(whole)
    assert hasher.hexdigests() == {
        name: hashlib.new(name, whole).hexdigest() for name in ("sha256", "sha512", "md5")
    }
    assert hash_threads() == []


def test_one_algorithm_needs_no_helper_thread():
    with MultiHasher(["sha256"]) as hasher:
        hasher.update(b"x" * 5000)
        assert hash_threads() == []
    assert hasher.hexdigests() == {"sha256": hashlib.sha256(b"x" * 5000).hexdigest()}
