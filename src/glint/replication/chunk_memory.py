"""Keep a copy's chunk memory flat: a pool of reused chunk buffers, and a mapping of its own
for every other streamed chunk (glibc).

A source read into :class:`ChunkPool` buffers (``readinto``, where the driver can) allocates
nothing per chunk: a fresh 1 MiB mapping costs a page fault per 4 KiB, the kernel zeroing it and
an ``munmap`` afterwards, about 0.6 CPU-s per GiB read here, more than the copy from the socket
itself. Chunks read otherwise (``bytes`` from a driver, the spool) are handled as below.

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
import sys
import threading

from glint.clouds import CHUNK_SIZE

#: ``sys.getrefcount`` of a pooled buffer that nobody else holds: the pool's list, the loop's
#: name, and the call's own argument.
_FREE_REFS = 3

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


class ChunkPool:
    """Chunk buffers reused for as long as one copy reads: :meth:`take` gives a buffer that no
    one holds any more (no chunk, no view of it is alive anywhere: CPython's reference count
    says so), else a new one. So a chunk handed to targets, the hasher and the spool is never
    overwritten while any of them (or a driver that keeps chunks) still holds it, and the pool
    grows only to the chunks in flight at once, whatever the image's size.
    """

    def __init__(self, size: int = CHUNK_SIZE):
        self._size = size
        self._buffers: list[bytearray] = []
        self._lock = threading.Lock()

    def take(self) -> bytearray:
        with self._lock:
            for buffer in self._buffers:
                if sys.getrefcount(buffer) == _FREE_REFS:
                    return buffer
            buffer = bytearray(self._size)
            self._buffers.append(buffer)
            return buffer

    def __len__(self) -> int:
        return len(self._buffers)
