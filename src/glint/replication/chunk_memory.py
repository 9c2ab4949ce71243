"""Give every streamed chunk a memory mapping of its own (glibc), so a copy's memory stays flat.

glibc serves a 1 MiB ``malloc`` from its own ``mmap`` only until the first such block is freed;
it then raises its mmap threshold and serves later chunks from the per-thread heaps, which keep
freed space and fragment as the reader's, hasher's and senders' chunks die in a different order.
A copy's peak RSS then drifts by several MiB from run to run and with the copy's length (15-23
MiB for the same copy to two clouds in tests/replication/test_streaming.py). A fixed threshold
below :data:`~glint.clouds.CHUNK_SIZE` keeps every chunk its own mapping, returned to the system
the moment it is freed, so the process holds only the chunks in flight. Smaller allocations are
untouched. Call :func:`map_chunks_separately` once, early, before the copying threads start.
"""

from __future__ import annotations

import ctypes
import ctypes.util

from glint.clouds import CHUNK_SIZE

_M_MMAP_THRESHOLD = -3  # from glibc's malloc.h; setting it also turns off the dynamic threshold


def map_chunks_separately() -> bool:
    """Ask glibc to ``mmap`` every allocation of half a chunk or more; False where that is not
    glibc (musl, macOS), which keeps its own allocator's behaviour."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, CHUNK_SIZE // 2))
