"""One read of the source, every target written at once: the streaming fan-out.

Threads and buffers::

    reader ──chunk──► feed A ──► writer A: driver.write_data(id, feed A)
       ├──chunk──► feed B ──► writer B: driver.write_data(id, feed B)
       └──chunk──► sink (hash; spool to disk)       bounded queue: the reader waits

The reader hands the *same* chunk to the sink and to every feed (no copy per target); it reads
the source into a pool of reused buffers where the driver can (``chunk_memory.ChunkPool``).
Each feed holds at most ``lag_limit_bytes`` in memory. The reader keeps the pace of the
*slowest* target taking chunks from memory: it waits while one is more than half that limit
behind. A target the others have waited for, with nothing left to send, for ``PATIENCE``
seconds (of late: older waits count less) is *detached*: the reader stops giving it chunks
and it reads what it skipped from the spool file, which the sink writes as fast as the disk
takes it, so neither the source nor the other targets wait for it any longer (issue 4: "a slow
target never stalls the others"); a feed that fills its whole limit detaches at once. While
every target is behind, detached or not, the reader waits for the fastest. A detached target
that has read the spool to within a quarter of its limit of the reader takes chunks from memory
again.

The sink writes into the spool only the chunks some detached target skipped (the reader offers
each chunk to the feeds before it hands it to the sink, saying whether one skipped it): a copy
where every target keeps up writes nothing to disk, and one where a target lags for a while
writes only that while (issue 13: the spool's writes and reads, ~4 CPU-s per GiB spooled here,
were the largest part of the engine's CPU). Pacing to the slowest costs a copy no time, which
ends with its slowest target anyway, and keeps targets of about the same speed on the chunks in
memory. Only a caller that must keep the whole stream (the cache entry of a source that cannot
be read again, an image read into the cache) spools all of it. Pages of a file that is kept are
dropped from the page cache once every reader is past them (:meth:`Spool.release`); a spool that
is thrown away at the end is left alone, so the kernel never writes its pages back for nothing.
Without a spool, a full feed makes the reader wait instead, which is plain back-pressure.

Each feed withholds the end of its stream until the sink has checked the bytes against the
source's stored hash: on a mismatch every feed raises instead of ending, the uploads are cut
off before the cloud can accept them, and no target keeps a corrupt copy.
"""

from __future__ import annotations

import collections
import math
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator

from glint.clouds import CHUNK_SIZE
from glint.replication.cache import Spool
from glint.replication.chunk_memory import ChunkPool
from glint.replication.errors import CacheFull
from glint.replication.hashing import MultiHasher
from glint.replication.threads import engine_thread

__all__ = ["Feed", "FanOut"]

#: Chunks the sink may be behind the reader: hashing and a local disk keep up with any network,
#: so this only smooths bursts.
SINK_QUEUE_CHUNKS = 4

#: Seconds the other targets may wait for one target, with nothing left to send, before it is
#: detached to the spool, counted with a memory of :data:`PATIENCE_MEMORY` seconds (an older
#: wait counts less, by e^(-age / memory)). The reader keeps the pace of the slowest target until
#: then: a target that hiccups, or keeps the others waiting less than about a quarter of the
#: time, costs them short waits and no spooled byte (a copy's time is its slowest target's
#: anyway, and on a machine whose cores are busy every spooled byte slows all of them), while
#: one that stalls, or is really slower, lets the others go on after a second or two.
PATIENCE = 1.0
PATIENCE_MEMORY = 4.0

_END = object()


class _SpoolRun:
    """In a feed's queue: the bytes from ``start`` to ``end`` (None: still open, the feed is
    detached) are read from the spool, where the sink writes every chunk a feed skipped."""

    __slots__ = ("start", "end")

    def __init__(self, start: int):
        self.start = start
        self.end: int | None = None


class Feed:
    """One target's stream of chunks; iterate it (once) as the body of ``write_data``.

    The queue holds chunks in memory and, where the target fell behind, :class:`_SpoolRun` s:
    a detached feed skips chunks (the sink spools them for it) until it has read the spool to
    within a quarter of its limit of the reader, then it takes chunks from memory again, so the
    spool is written only while some target lags.

    Args:
        limit_bytes: Most bytes buffered in memory for this target.
        spool: Where a detached feed reads from; None to make the reader wait instead.
    """

    def __init__(self, limit_bytes: int, spool: Spool | None):
        self._limit = limit_bytes
        self._spool = spool
        self._queue: collections.deque[bytes | memoryview | _SpoolRun] = collections.deque()
        self._buffered = 0
        self._cond = threading.Condition()
        self._offered = 0
        self._run: _SpoolRun | None = None  # the open run while detached
        self._runs = 0  # spool runs queued or being read
        self._verdict: BaseException | bool | None = None  # True: end; exception: abort
        self._closed = False
        self._room: threading.Condition | None = None  # the fan-out's, told when chunks leave
        self._on_spool_read: Callable[[], None] = lambda: None
        self._detach_next = False
        #: Whether this target fell behind at some point and read part of its stream from the
        #: spool.
        self.detached = False
        self.sent = 0

    def pace(self, room: threading.Condition, on_spool_read: Callable[[], None]) -> None:
        """Tell ``room`` whenever this feed gives up buffered chunks (the reader may wait on it),
        and call ``on_spool_read`` after each read of the spool."""
        self._room = room
        self._on_spool_read = on_spool_read

    def has_room(self, size: int) -> bool:
        """Whether this target is still being written and, with ``size`` more bytes, would be
        at most half its limit behind the reader (from memory or, detached, from the spool).
        The reader keeps the fastest target that close, so a target detaches only once it is
        at least half the limit behind the fastest one, not at every hiccup of equal ones."""
        with self._cond:
            behind = self._offered - self.sent
            return self.open and (behind <= 0 or behind + size <= self._limit // 2)

    @property
    def open(self) -> bool:
        """Whether this target is still being written (not given up, not ended)."""
        return not self._closed and self._verdict is None

    @property
    def reads_spool(self) -> bool:
        """Whether this target still has bytes to read from the spool."""
        return self._runs > 0

    @property
    def lagging(self) -> bool:
        """Whether this target skips the chunks offered now (it is detached)."""
        return self._run is not None

    @property
    def detaching(self) -> bool:
        """Whether this target skips chunks from the next one offered (see :meth:`detach`)."""
        return self._detach_next

    @property
    def starved(self) -> bool:
        """Whether this target is being written and has nothing left to send."""
        return self.open and self._offered <= self.sent

    def detach(self) -> None:
        """Skip chunks from the next one offered, reading them from the spool (the reader gave
        up waiting for this target)."""
        with self._cond:
            self._detach_next = self._spool is not None

    # Reader side

    def offer(self, chunk: bytes) -> bool:
        """Give the feed the next chunk (reader thread); never blocks when a spool exists.

        Returns:
            Whether this feed skipped the chunk and will read it from the spool.
        """
        with self._cond:
            offset = self._offered
            self._offered += len(chunk)
            if self._closed:
                return False
            if self._run is not None:
                # Back to memory only well inside the distance it detached at, so a target at
                # about the reader's pace does not flip between the two at every chunk.
                if offset - self.sent > self._limit // 4:
                    self._cond.notify_all()
                    return True
                self._run.end = offset  # caught up: back to chunks from memory
                self._run = None
            elif self._detach_next or (
                self._buffered and self._buffered + len(chunk) > self._limit
            ):
                if self._spool is not None:
                    self._detach_next = False
                    self._run = _SpoolRun(offset)
                    self._queue.append(self._run)
                    self._runs += 1
                    self.detached = True
                    self._cond.notify_all()
                    return True
                while (
                    self._buffered
                    and self._buffered + len(chunk) > self._limit
                    and not self._closed
                    and self._verdict is None
                ):
                    self._cond.wait()
                if self._closed or self._verdict is not None:
                    return False
            self._queue.append(chunk)
            self._buffered += len(chunk)
            self._cond.notify_all()
            return False

    def finish(self, verdict: BaseException | bool) -> None:
        """End the stream: True once the source is verified, or an exception to abort the
        upload with (raised by the iterator even if chunks are still buffered)."""
        with self._cond:
            if self._verdict is None or isinstance(verdict, BaseException):
                self._verdict = verdict
            if isinstance(verdict, BaseException):
                self._drop()
            self._cond.notify_all()
        self._tell_room()

    # Writer side

    def close(self) -> None:
        """The writer gave up (its upload failed): stop buffering for it."""
        with self._cond:
            self._closed = True
            self._drop()
            self._cond.notify_all()
        self._tell_room()

    def _drop(self) -> None:
        self._queue.clear()
        self._buffered = 0
        self._runs = 0

    def _tell_room(self) -> None:
        # Never called holding self._cond: the reader takes the room's lock, then a feed's.
        if self._room is not None:
            with self._room:
                self._room.notify_all()

    def __iter__(self) -> Iterator[bytes]:
        while True:
            with self._cond:
                while not self._queue and self._verdict is None:
                    self._cond.wait()
                if isinstance(self._verdict, BaseException):
                    raise self._verdict
                if not self._queue:
                    return
                item = self._queue.popleft()
                if not isinstance(item, _SpoolRun):
                    self._buffered -= len(item)
                    self._cond.notify_all()
            if isinstance(item, _SpoolRun):
                yield from self._from_spool(item)
                continue
            self._tell_room()
            self.sent += len(item)
            yield item

    def _from_spool(self, run: _SpoolRun) -> Iterator[memoryview]:
        assert self._spool is not None and self.sent == run.start
        pool = ChunkPool()
        while True:
            with self._cond:
                while run.end is None and self._offered <= self.sent and self._verdict is None:
                    self._cond.wait()
                if isinstance(self._verdict, BaseException):
                    raise self._verdict
                # Only what this feed skipped is surely in the spool: up to the run's end, or
                # while it is open, every chunk offered so far.
                skipped_to = run.end if run.end is not None else self._offered
            if self.sent >= skipped_to:
                break  # the run is read (or the stream ended with it open, verified)
            chunk = self._spool.read_pooled(
                self.sent, min(CHUNK_SIZE, skipped_to - self.sent), pool
            )
            if not chunk:
                raise RuntimeError(f"the spool ended at byte {self.sent}, before {skipped_to}")
            self.sent += len(chunk)
            self._tell_room()
            self._on_spool_read()
            yield chunk
            del chunk  # no view of the buffer left here: the pool may give it out again
        with self._cond:
            self._runs = max(0, self._runs - 1)


class FanOut:
    """Reads a source stream once into a sink (hashing, spool) and any number of feeds.

    Args:
        chunks: The source's bytes (a resuming reader or a cache file).
        algorithms: Digests to compute.
        feeds: One per target, created by the caller.
        spool: The cache spool, or None.
        write_spool: Whether the sink writes the stream into the spool (False when the spool
            is the cache file being read).
        spool_whole: Write the whole stream into the spool, to keep it; otherwise only the chunks
            a detached target skipped (nothing when every target keeps up).
        on_read: Called in the reader thread with the bytes read so far.
        verdict: Called in the sink thread with (digests, size) after the last chunk; raises to
            reject the stream. Its outcome ends every feed.
        interrupt: Called by :meth:`abort` to end a read of ``chunks`` that is blocked now.
    """

    def __init__(
        self,
        chunks: Iterable[bytes],
        algorithms: Iterable[str],
        feeds: list[Feed],
        spool: Spool | None,
        *,
        write_spool: bool,
        spool_whole: bool,
        on_read: Callable[[int], None],
        verdict: Callable[[dict[str, str], int], None],
        interrupt: Callable[[], None] | None = None,
    ):
        self._chunks = chunks
        self._interrupt = interrupt
        self._hasher = MultiHasher(algorithms)
        self._feeds = feeds
        self._spool = spool
        self._write_spool = write_spool and spool is not None
        self._spool_whole = spool_whole
        # A file that is kept (or already is a cache entry) gives its pages back as readers pass.
        self._release = spool is not None and (spool_whole or not write_spool)
        self._reads_spool = spool is not None and not write_spool
        self._on_read = on_read
        self._verdict = verdict
        self._sink_queue: queue.Queue = queue.Queue(SINK_QUEUE_CHUNKS)
        self._room = threading.Condition()
        #: For each target: how long the others waited for it, with nothing to send, as of
        #: when (see _keep_pace and PATIENCE).
        self._cost: dict[Feed, tuple[float, float]] = {}
        for feed in feeds:
            feed.pace(self._room, self._release_spool)
        self._stop = threading.Event()
        self.digests: dict[str, str] | None = None
        self.size = 0
        #: Bytes the sink wrote into the spool.
        self.spooled_bytes = 0
        self.error: BaseException | None = None
        self._threads = [
            engine_thread(self._read, name="glint-copy-read"),
            engine_thread(self._sink, name="glint-copy-hash"),
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def join(self) -> None:
        for thread in self._threads:
            thread.join()

    def is_alive(self) -> bool:
        return any(t.is_alive() for t in self._threads)

    def abort(self, error: BaseException) -> None:
        """Stop reading and end every feed with ``error`` (a cancel, or a failed read)."""
        if self.error is None:
            self.error = error
        self._stop.set()
        if self._interrupt is not None:
            self._interrupt()  # the reader may be blocked on a cloud that hangs
        for feed in self._feeds:
            feed.finish(error)
        if self._write_spool:
            self._spool.fail(error)

    def _read(self) -> None:
        try:
            for chunk in self._chunks:
                if self._stop.is_set():
                    return
                self._keep_pace(len(chunk))
                skipped = [feed.offer(chunk) for feed in self._feeds]
                self._put_sink((chunk, self._spool_whole or any(skipped)))
                self.size += len(chunk)
                self._on_read(self.size)
                self._release_spool()
        except BaseException as exc:  # noqa: BLE001 - handed to every feed and the caller
            self.abort(exc)
        finally:
            self._put_sink(_END)

    def _keep_pace(self, size: int) -> None:
        """Wait while a target taking chunks from memory is over half its lag limit behind:
        the slowest target sets the pace, and nothing is spooled while the targets keep about
        the same pace. A target the others have waited for, with nothing left to send, for
        :data:`PATIENCE` seconds (of late: see there) is detached (it reads the spool) and the
        reader goes on without it. However long it takes, wait while *every* target being
        written is that far behind, whether it takes chunks from memory or from the spool: the
        fastest one sets the pace then (a target that detached early, at a slow start, must not
        be held to the pace of the slower ones still attached). Full feeds detach when the
        chunk is offered. Without a spool ``offer`` itself waits."""
        if self._spool is None:
            return
        with self._room:
            while not self._stop.is_set():
                open_feeds = [feed for feed in self._feeds if feed.open]
                behind = [feed for feed in open_feeds if not feed.has_room(size)]
                holding = [feed for feed in behind if not (feed.lagging or feed.detaching)]
                if not open_feeds or (len(behind) < len(open_feeds) and not holding):
                    return  # no target to wait for (a read into the cache alone), or one is ahead
                # Others starve while the reader waits for ``holding``: that wait is its cost.
                starved = any(feed.starved for feed in open_feeds if feed not in behind)
                waited_at = time.monotonic()
                self._room.wait(0.05)
                if not starved:
                    continue
                now = time.monotonic()
                for feed in holding:
                    cost, then = self._cost.get(feed, (0.0, now))
                    cost = cost * math.exp((then - now) / PATIENCE_MEMORY) + now - waited_at
                    self._cost[feed] = (cost, now)
                    if cost >= PATIENCE:
                        del self._cost[feed]  # a fresh allowance if it catches up
                        feed.detach()

    def _release_spool(self) -> None:
        """Drop the pages of a kept spool file that every reader has passed: the reader (when it
        reads that file) and each detached target still writing."""
        if not self._release:
            return
        readers = [f.sent for f in self._feeds if f.reads_spool and f.open]
        if self._reads_spool and not self._stop.is_set():
            readers.append(self.size)
        if readers:
            self._spool.release(min(readers))

    def _put_sink(self, item: object) -> None:
        while not self._stop.is_set():
            try:
                self._sink_queue.put(item, timeout=0.2)
                return
            except queue.Full:
                continue

    def _sink(self) -> None:
        try:
            offset = 0
            while (item := self._get_sink()) is not _END:
                chunk, spool_it = item
                self._hasher.update(chunk)
                if self._write_spool and spool_it:
                    self._spool_write(chunk, offset)
                    self.spooled_bytes += len(chunk)
                offset += len(chunk)
            if self._stop.is_set():
                return
            self.digests = self._hasher.hexdigests()
            self._verdict(self.digests, self._hasher.size)
        except BaseException as exc:  # noqa: BLE001 - a rejected stream aborts every feed
            self.abort(exc)
            return
        finally:
            self._hasher.close()
        if self._write_spool:
            self._spool.end()
        for feed in self._feeds:
            feed.finish(True)

    def _spool_write(self, chunk: bytes, offset: int) -> None:
        try:
            self._spool.write(chunk, offset)
        except OSError as exc:
            raise CacheFull(
                f"writing the cache spool {self._spool.path} failed: {exc.strerror or exc}"
            ) from exc

    def _get_sink(self) -> object:
        while True:
            try:
                return self._sink_queue.get(timeout=0.2)
            except queue.Empty:
                if self._stop.is_set():
                    return _END
