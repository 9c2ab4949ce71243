"""One read of the source, every target written at once: the streaming fan-out.

Threads and buffers::

    reader ──chunk──► sink (hash + spool to disk)        bounded queue: the reader waits
       │
       ├──chunk──► feed A ──► writer A: driver.write_data(id, feed A)
       └──chunk──► feed B ──► writer B: driver.write_data(id, feed B)

The reader hands the *same* bytes object to the sink and to every feed (no copy per target).
Each feed holds at most ``lag_limit_bytes`` in memory. The reader keeps pace with the fastest
target: it waits while every target is more than half that far behind it. A target that falls
behind the reader by the limit (so at least half of it behind the fastest one) is *detached*:
the reader stops giving it chunks and it continues reading the spool file, which the sink writes
as fast as the disk takes it, so neither the source nor the other targets wait for it (issue 4:
"a slow target never stalls the others"). Pacing to the fastest
rather than reading the source as fast as it comes keeps targets of about the same speed on the
chunks in memory: each spool read is one more copy of every byte, and CPU (the bench's copy
profile had 8% of ``glint serve`` in spool reads when every target detached within a second).
Without a spool, a full feed makes the reader wait instead, which is plain back-pressure.

Each feed withholds the end of its stream until the sink has checked the bytes against the
source's stored hash: on a mismatch every feed raises instead of ending, the uploads are cut
off before the cloud can accept them, and no target keeps a corrupt copy.
"""

from __future__ import annotations

import collections
import queue
import threading
from collections.abc import Callable, Iterable, Iterator

from glint.clouds import CHUNK_SIZE
from glint.replication.cache import Spool
from glint.replication.errors import CacheFull
from glint.replication.hashing import MultiHasher

__all__ = ["Feed", "FanOut"]

#: Chunks the sink may be behind the reader: hashing and a local disk keep up with any network,
#: so this only smooths bursts.
SINK_QUEUE_CHUNKS = 4

_END = object()


class Feed:
    """One target's stream of chunks; iterate it (once) as the body of ``write_data``.

    Args:
        limit_bytes: Most bytes buffered in memory for this target.
        spool: Where a detached feed reads from; None to make the reader wait instead.
    """

    def __init__(self, limit_bytes: int, spool: Spool | None):
        self._limit = limit_bytes
        self._spool = spool
        self._chunks: collections.deque[bytes] = collections.deque()
        self._buffered = 0
        self._cond = threading.Condition()
        self._offered = 0
        self._detached_at: int | None = None
        self._verdict: BaseException | bool | None = None  # True: end; exception: abort
        self._closed = False
        self._room: threading.Condition | None = None  # the fan-out's, told when chunks leave
        self.sent = 0

    def pace(self, room: threading.Condition) -> None:
        """Tell ``room`` whenever this feed gives up buffered chunks (the reader may wait on it)."""
        self._room = room

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
    def detached(self) -> bool:
        """Whether this target fell behind and reads from the spool."""
        return self._detached_at is not None

    # Reader side

    def offer(self, chunk: bytes) -> None:
        """Give the feed the next chunk (reader thread); never blocks when a spool exists."""
        with self._cond:
            if self._closed or self._detached_at is not None:
                self._offered += len(chunk)
                return
            if self._buffered and self._buffered + len(chunk) > self._limit:
                if self._spool is not None:
                    self._detached_at = self._offered
                    self._offered += len(chunk)
                    self._cond.notify_all()
                    return
                while (
                    self._buffered
                    and self._buffered + len(chunk) > self._limit
                    and not self._closed
                    and self._verdict is None
                ):
                    self._cond.wait()
                if self._closed or self._verdict is not None:
                    return
            self._chunks.append(chunk)
            self._buffered += len(chunk)
            self._offered += len(chunk)
            self._cond.notify_all()

    def finish(self, verdict: BaseException | bool) -> None:
        """End the stream: True once the source is verified, or an exception to abort the
        upload with (raised by the iterator even if chunks are still buffered)."""
        with self._cond:
            if self._verdict is None or isinstance(verdict, BaseException):
                self._verdict = verdict
            if isinstance(verdict, BaseException):
                self._chunks.clear()
                self._buffered = 0
            self._cond.notify_all()
        self._tell_room()

    # Writer side

    def close(self) -> None:
        """The writer gave up (its upload failed): stop buffering for it."""
        with self._cond:
            self._closed = True
            self._chunks.clear()
            self._buffered = 0
            self._cond.notify_all()
        self._tell_room()

    def _tell_room(self) -> None:
        # Never called holding self._cond: the reader takes the room's lock, then a feed's.
        if self._room is not None:
            with self._room:
                self._room.notify_all()

    def __iter__(self) -> Iterator[bytes]:
        while True:
            with self._cond:
                while not self._chunks and self._detached_at is None and self._verdict is None:
                    self._cond.wait()
                if isinstance(self._verdict, BaseException):
                    raise self._verdict
                if self._chunks:
                    chunk = self._chunks.popleft()
                    self._buffered -= len(chunk)
                    self._cond.notify_all()
                elif self._detached_at is not None:
                    break
                else:
                    return
            self._tell_room()
            self.sent += len(chunk)
            yield chunk
        yield from self._from_spool()

    def _from_spool(self) -> Iterator[bytes]:
        assert self._spool is not None
        while True:
            if isinstance(self._verdict, BaseException):
                raise self._verdict
            chunk = self._spool.read_at(self.sent, CHUNK_SIZE)
            if not chunk:
                break
            self.sent += len(chunk)
            self._tell_room()
            yield chunk
        with self._cond:
            while self._verdict is None:
                self._cond.wait()
            if isinstance(self._verdict, BaseException):
                raise self._verdict


class FanOut:
    """Reads a source stream once into a sink (hashing, spool) and any number of feeds.

    Args:
        chunks: The source's bytes (a resuming reader or a cache file).
        algorithms: Digests to compute.
        feeds: One per target, created by the caller.
        spool: The cache spool, or None.
        write_spool: Whether the sink writes the stream into the spool (False when the spool
            is the cache file being read).
        on_read: Called in the reader thread with the bytes read so far.
        verdict: Called in the sink thread with (digests, size) after the last chunk; raises to
            reject the stream. Its outcome ends every feed.
    """

    def __init__(
        self,
        chunks: Iterable[bytes],
        algorithms: Iterable[str],
        feeds: list[Feed],
        spool: Spool | None,
        *,
        write_spool: bool,
        on_read: Callable[[int], None],
        verdict: Callable[[dict[str, str], int], None],
    ):
        self._chunks = chunks
        self._hasher = MultiHasher(algorithms)
        self._feeds = feeds
        self._spool = spool
        self._write_spool = write_spool and spool is not None
        self._on_read = on_read
        self._verdict = verdict
        self._sink_queue: queue.Queue = queue.Queue(SINK_QUEUE_CHUNKS)
        self._room = threading.Condition()
        for feed in feeds:
            feed.pace(self._room)
        self._stop = threading.Event()
        self.digests: dict[str, str] | None = None
        self.size = 0
        self.error: BaseException | None = None
        self._threads = [
            threading.Thread(target=self._read, name="glint-copy-read", daemon=True),
            threading.Thread(target=self._sink, name="glint-copy-hash", daemon=True),
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
        for feed in self._feeds:
            feed.finish(error)
        if self._write_spool:
            self._spool.fail(error)

    def _read(self) -> None:
        try:
            for chunk in self._chunks:
                if self._stop.is_set():
                    return
                self._put_sink(chunk)
                self._keep_pace(len(chunk))
                for feed in self._feeds:
                    feed.offer(chunk)
                self.size += len(chunk)
                self._on_read(self.size)
        except BaseException as exc:  # noqa: BLE001 - handed to every feed and the caller
            self.abort(exc)
        finally:
            self._put_sink(_END)

    def _keep_pace(self, size: int) -> None:
        """Wait while every target being written is over half its lag limit behind, so the
        fastest one sets the pace, whether it takes chunks from memory or from the spool (a target
        that detached early, at a slow start, must not be held to the pace of the slower ones
        still attached). Full feeds detach when the chunk is offered. Without a spool
        ``offer`` itself waits."""
        if self._spool is None:
            return
        with self._room:
            while not self._stop.is_set():
                open_feeds = [feed for feed in self._feeds if feed.open]
                if not open_feeds or any(feed.has_room(size) for feed in open_feeds):
                    return
                self._room.wait(0.2)

    def _put_sink(self, item: object) -> None:
        while not self._stop.is_set():
            try:
                self._sink_queue.put(item, timeout=0.2)
                return
            except queue.Full:
                continue

    def _sink(self) -> None:
        try:
            while (chunk := self._get_sink()) is not _END:
                self._hasher.update(chunk)
                if self._write_spool:
                    self._spool_write(chunk)
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

    def _spool_write(self, chunk: bytes) -> None:
        try:
            self._spool.write(chunk)
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
