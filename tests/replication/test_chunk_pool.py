"""The pool of chunk buffers a source is read into: a buffer is never given out again while
any chunk of it is still held (a target's upload, the hasher, a driver that keeps chunks), so
reusing buffers can never change bytes on their way; and it is reused once nobody holds it, so
the pool stays at the chunks in flight whatever the image's size."""

from __future__ import annotations

from glint.clouds import CHUNK_SIZE
from glint.replication.cache import Spool
from glint.replication.chunk_memory import ChunkPool
from glint.replication.fanout import Feed


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


def test_a_target_behind_reads_the_spool_into_reused_buffers_and_gets_every_byte(tmp_path):
    """A detached target reads what it skipped from the spool into pooled buffers, not a fresh
    chunk per read (each would cost a page fault per 4 KiB), and still gets every byte in order;
    a buffer it still holds is never overwritten."""
    spool = Spool(None, tmp_path / "spool")
    feed = Feed(limit_bytes=2 * CHUNK_SIZE, spool=spool)
    feed.detach()
    chunks = [bytes([n]) * CHUNK_SIZE for n in range(24)]
    for n, chunk in enumerate(chunks):
        assert feed.offer(chunk)  # skipped: the target reads it from the spool
        spool.write(chunk, n * CHUNK_SIZE)
    spool.end()
    feed.finish(True)
    received, held, buffers = [], [], set()
    for chunk in feed:
        buffers.add(id(chunk.obj))
        received.append(bytes(chunk))
        if len(held) < 2:
            held.append(chunk)  # a sender that keeps a chunk a while
    spool.close()
    assert received == chunks
    assert [bytes(chunk) for chunk in held] == chunks[:2]
    assert len(buffers) <= 4


def test_a_copy_read_from_the_cache_reads_it_into_reused_buffers(tmp_path):
    spool = Spool(None, tmp_path / "entry")
    for n in range(16):
        spool.write(bytes([n]) * CHUNK_SIZE)
    spool.end()
    buffers, received = set(), []
    for chunk in spool.chunks():
        buffers.add(id(chunk.obj))
        received.append(chunk[0])
    spool.close()
    assert received == list(range(16)) and len(buffers) <= 2
