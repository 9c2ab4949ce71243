"""Deterministic byte streams for driver tests: generated chunk by chunk, never held whole.

A seeded stream can be produced twice, so a read-back is compared byte for byte against a fresh
copy of what was written instead of against a buffer of the whole image.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterable, Iterator

MiB = 1024 * 1024


def seeded_chunks(seed: int, size: int, chunk_size: int = MiB) -> Iterator[bytes]:
    """Yield ``size`` pseudo-random bytes (incompressible, not a known disk format)."""
    rng = random.Random(seed)
    remaining = size
    while remaining:
        n = min(chunk_size, remaining)
        remaining -= n
        yield rng.randbytes(n)


class Hashes:
    """md5, sha256 and sha512 of a stream, computed while it passes through."""

    def __init__(self) -> None:
        self.size = 0
        self.md5 = hashlib.md5()
        self.sha256 = hashlib.sha256()
        self.sha512 = hashlib.sha512()

    def tee(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        for chunk in chunks:
            self.size += len(chunk)
            for digest in (self.md5, self.sha256, self.sha512):
                digest.update(chunk)
            yield chunk

    def hexdigest(self, algo: str) -> str:
        return getattr(self, algo).hexdigest()


def same_bytes(left: Iterable[bytes], right: Iterable[bytes]) -> tuple[bool, int]:
    """Compare two chunked streams whose chunk boundaries may differ.

    Returns:
        (equal, number of bytes compared before the first difference or the end).
    """
    lit, rit = iter(left), iter(right)
    lbuf = rbuf = b""
    pos = 0
    while True:
        if not lbuf:
            lbuf = next(lit, b"")
        if not rbuf:
            rbuf = next(rit, b"")
        if not lbuf or not rbuf:
            return (not lbuf and not rbuf and next(lit, b"") == b"" and next(rit, b"") == b""), pos
        n = min(len(lbuf), len(rbuf))
        if lbuf[:n] != rbuf[:n]:
            return False, pos
        pos += n
        lbuf, rbuf = lbuf[n:], rbuf[n:]
