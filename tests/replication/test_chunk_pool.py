"""The pool of chunk buffers a source is read into: a buffer is never given out again while
any chunk of it is still held (a target's upload, the hasher, a driver that keeps chunks), so
reusing buffers can never change bytes on their way; and it is reused once nobody holds it, so
the pool stays at the chunks in flight whatever the image's size."""

from __future__ import annotations

from glint.replication.chunk_memory import ChunkPool


def test_a_buffer_held_through_a_view_is_never_given_out_again():
    pool = ChunkPool(16)
    first = pool.take()
    first[:5] = b"first"
    chunk = memoryview(first)[:5]  # what a reader hands on
    del first
    second = pool.take()
    assert second is not chunk.obj and len(pool) == 2
    second[:5] = b"other"
    assert bytes(chunk) == b"first"


def test_a_buffer_nobody_holds_is_reused_so_the_pool_stays_at_the_chunks_in_flight():
    pool = ChunkPool(16)
    for _ in range(100):
        chunk = memoryview(pool.take())[:8]
        held = bytes(chunk)  # a consumer that copied what it needed
        del chunk
    assert held == bytes(8) and len(pool) == 1
    kept = [memoryview(pool.take())[:1] for _ in range(3)]
    assert len(pool) == 3 and len({id(view.obj) for view in kept}) == 3
