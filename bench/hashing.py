"""Hashing one stream with several algorithms: a thread per algorithm against one thread for all.

A copy hashes every byte with sha256 (Glint's content name), the source's own algorithm and the
targets' (often sha512; md5 for old clouds). In one thread their costs add up; ``MultiHasher``
gives each algorithm a thread, since hashlib releases the GIL on large buffers. The ratio is the
one-stream hashing ceiling it lifts; on 2 cores two of three algorithms overlap at best.
"""

from __future__ import annotations

import hashlib
import os
import time

from bench.report import Report, median
from glint.clouds import CHUNK_SIZE
from glint.replication.hashing import MultiHasher

ALGORITHMS = ("sha256", "sha512", "md5")


def _one_thread(chunk: bytes, count: int) -> float:
    hashes = [hashlib.new(name) for name in ALGORITHMS]
    started = time.perf_counter()
    for _ in range(count):
        for h in hashes:
            h.update(chunk)
    return time.perf_counter() - started


def _threads(chunk: bytes, count: int) -> float:
    started = time.perf_counter()
    with MultiHasher(ALGORITHMS) as hasher:
        for _ in range(count):
            hasher.update(chunk)
    return time.perf_counter() - started


def hashing_figures(report: Report, size: int, runs: int) -> None:
    chunk, count = os.urandom(CHUNK_SIZE), max(1, size // CHUNK_SIZE)
    alone, threaded = [], []
    for _ in range(max(runs, 3)):  # cheap: always at least 3 interleaved rounds
        alone.append(_one_thread(chunk, count))
        threaded.append(_threads(chunk, count))
    mib = count * CHUNK_SIZE / 2**20
    names = "+".join(ALGORITHMS)
    report.info(f"hashing {names}: one thread", mib / median(alone), unit="MiB/s")
    report.info(
        f"hashing {names}: a thread each (MultiHasher)", mib / median(threaded), unit="MiB/s"
    )
    report.target(
        f"hashing {names}: a thread each vs one thread",
        median(alone) / median(threaded),
        ">=",
        1.25,
        unit="×",
        note=f"{os.cpu_count()} cores; bounded by the slowest algorithm with 3+ cores",
    )
