"""One copy from start to end: check the source, prepare each target, fan out, verify, finish.

Order matters for crash safety (``docs/architecture.md``, jobs):

1. Each target is prepared on its own thread: an earlier attempt's image is reused if it is a
   verified copy, or deleted; a copy that already exists ends the target with no work; a name
   clash is settled by the conflict policy *without touching the old image yet*.
2. The target image is created private and its id reported (``image_created``) before a byte is
   written, so a crash leaves an id the job can clean up.
3. The fan-out reads the source once; every upload's end is held back until the source's bytes
   matched its stored hash. (When the source offers a pull link, a target cloud with the
   ``web-download`` import fetches the bytes itself instead, and is checked against the
   source's stored hash once active; a cloud that refuses is streamed to.)
4. Each target is verified once active; a bad copy is deleted.
5. Only then: the chosen visibility and the content markers, and the old image of a clash is
   replaced or renamed. Whatever failed after step 2 deletes the new image.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import threading
from collections.abc import Callable, Iterator, Sequence

from glint.clouds import CloudDriver, CloudError, ImageReader, ImageRecord
from glint.replication import properties as props
from glint.replication.cache import CacheEntry, ContentCache, Spool
from glint.replication.chunk_memory import ChunkPool
from glint.replication.conversion import ConversionFailed
from glint.replication.copy_types import (
    CopyObserver,
    CopyOptions,
    CopyResult,
    CopySource,
    CopyTarget,
)
from glint.replication.errors import (
    CacheFull,
    CopyCancelled,
    ReplicationError,
    SourceNotUsable,
    SourceUnsafe,
    SourceVerificationFailed,
)
from glint.replication.events import EventPump, Throttle, stopped_on
from glint.replication.fanout import FanOut, Feed
from glint.replication.hashing import (
    MultiHasher,
    algorithms_for,
    check_source,
    clouds_prove,
)
from glint.replication.image_safety import HEAD_BYTES, read_head
from glint.replication.target_run import TargetRun
from glint.replication.threads import engine_thread

__all__ = ["cache_image", "copy_image"]

log = logging.getLogger(__name__)


def copy_image(
    source: CopySource,
    targets: Sequence[CopyTarget],
    *,
    cache: ContentCache | None = None,
    options: CopyOptions | None = None,
    observer: CopyObserver | None = None,
    cancel: threading.Event | None = None,
) -> CopyResult:
    """Copy one image to several repos at once, verified end to end.

    Expected failures (cloud errors, verification, conflicts, a cancel) do not raise: each
    target's result says how it ended, and a failure of the source fails every target.

    Args:
        source: The image to copy.
        targets: The repos to copy to, each with its own driver (keys must be unique).
        cache: The content cache: the spool for slow targets, and where the source's bytes are
            kept for retries (and read from, when they are already there). None streams
            without a spool (a slow target then slows the others).
        options: Tuning (None: defaults).
        observer: Hooks for progress and the created image ids, called in this thread.
        cancel: Set it (from any thread) to stop the copy; created images are deleted.

    Returns:
        The result per target, and the digests of the bytes read.
    """
    run = Copy(
        source,
        targets,
        cache,
        options or CopyOptions(),
        observer or CopyObserver(),
        cancel or threading.Event(),
    )
    return run.run()


class Copy:
    """The state of one :func:`copy_image` call."""

    def __init__(
        self,
        source: CopySource,
        targets: Sequence[CopyTarget],
        cache: ContentCache | None,
        options: CopyOptions,
        observer: CopyObserver,
        cancel: threading.Event,
    ):
        if len({t.key for t in targets}) != len(targets):
            raise ValueError("target keys must be unique")
        self.source = source
        self.cache = cache
        self.options = options
        self.observer = observer
        self.cancel = cancel
        self.pump = EventPump()
        self.record: ImageRecord | None = None
        self.references: list[ImageRecord] = []
        self.runs = [TargetRun(self, t) for t in targets]
        self.fanout: FanOut | None = None
        self.spool: Spool | None = None
        #: The source's bytes in the cache: found there, or the spool once read and verified.
        self.entry: CacheEntry | None = None
        #: ``sha256:<hex>`` of the content the source stands for, if known before it is read.
        self.content_key: str | None = None
        self.fanout_ready = threading.Event()
        self.start_error: BaseException | None = None
        #: Whether the targets' own hashes prove the copies (see hashing.clouds_prove).
        self.clouds_prove = False
        #: Digests proven to be the source's, by Glint's hashing or by the clouds (the result's).
        self.digests: dict[str, str] = {}
        self._spool_digest: dict[str, str] | None = None
        self._spool_size = 0
        self._spool_lock = threading.Lock()

    def run(self) -> CopyResult:
        try:
            self.record = self._check_source()
        except (CloudError, ReplicationError) as exc:
            for target_run in self.runs:
                target_run.fail(exc)
            return self._result()
        ended = [threading.Event() for _ in self.runs]
        threads = [
            engine_thread(self._run_target, r, done, name=f"glint-copy-{r.target.key}")
            for r, done in zip(self.runs, ended, strict=True)
        ]
        for thread in threads:
            thread.start()
        self.pump.run_until(lambda: all(r.prepared.is_set() for r in self.runs), self._check_cancel)
        try:
            self._start_fanout()
        except BaseException as exc:  # noqa: BLE001 - every writer fails with it
            self.start_error = exc
        finally:
            self.fanout_ready.set()
        self.pump.run_until(lambda: all(e.is_set() for e in ended), self._check_cancel)
        self._finish_cache()
        return self._result()

    def _run_target(self, target_run: TargetRun, ended: threading.Event) -> None:
        """A target's thread: its whole run, then a word to the pump, which waits for it."""
        try:
            target_run.main()
        finally:
            ended.set()
            self.pump.wake()

    def _check_cancel(self) -> None:
        if self.cancel.is_set() and self.fanout is not None:
            self.fanout.abort(CopyCancelled("the copy was cancelled"))

    def _check_source(self) -> ImageRecord:
        driver = self.source.driver
        record = driver.get_image(self.source.image_id)
        if record.status != "active":
            raise SourceNotUsable(
                f"source image {record.id} ({record.name!r}) is {record.status}, not active: "
                f"it has no data to copy yet"
            )
        record = verifiable(driver, record, trusted=self.source.trusted_stream)
        self.content_key = self._content_key(record)
        self._inspect_head(record)
        for key in props.IMAGE_REFERENCES:
            ref = record.properties.get(key)
            if ref:
                with contextlib.suppress(CloudError):
                    self.references.append(driver.get_image(ref))
        return record

    def _content_key(self, record: ImageRecord) -> str | None:
        """What a conversion of the source names in ``glint_made_from``: the source's own
        ``glint_made_from`` (it is a conversion itself), else the sha256 of its bytes as far as
        it is known before they are read (Glint's marker, or the cache's entry)."""
        made_from = record.properties.get(props.GLINT_MADE_FROM)
        if made_from:
            return str(made_from)
        sha256 = record.properties.get(props.GLINT_SHA256) or (
            record.hash_value if record.hash_algo == "sha256" else None
        )
        if not sha256 and self.cache is not None:
            entry = _cached_entry(self.cache, record)
            sha256 = entry.sha256 if entry is not None else None
        return f"sha256:{str(sha256).lower()}" if sha256 else None

    def _inspect_head(self, record: ImageRecord) -> None:
        """Let :attr:`CopySource.inspect_head` judge the source's first bytes, before any target
        is prepared (so a refused image is never created anywhere)."""
        if self.source.inspect_head is None:
            return
        spool = self._cached_spool(self._cached(record))
        if spool is not None:
            try:
                head = spool.read_at(0, HEAD_BYTES)
            finally:
                spool.close()
        else:
            head = read_head(self.source.driver, record.id)
        reason = self.source.inspect_head(head[:HEAD_BYTES])
        if reason:
            raise SourceUnsafe(
                f"source image {record.id} ({record.name!r}) is {reason}; Glint does not copy it"
            )

    # Fan-out

    def _start_fanout(self) -> None:
        writers = [r for r in self.runs if r.feed_wanted]
        converting = any(r.convert_to for r in self.runs)
        if not (writers or converting) or self.cancel.is_set():
            return
        record = self.record
        assert record is not None
        self.entry = self._cached(record)
        self.spool = self._cached_spool(self.entry)
        from_cache = self.spool is not None
        if from_cache:
            chunks: Iterator[bytes] = self.spool.chunks()
        else:
            chunks = SourceRead(self.source.driver, record.id, self.options.read_attempts)
            self.spool = self._new_spool(record)
        for r in writers:
            r.feed = Feed(self.options.lag_limit_bytes, self.spool)
        target_algos = [r.target_algo for r in writers]
        # The cache keeps the whole stream only of a source that cannot be read again (unless
        # its caller keeps it), or that a target converts from the cache: a retry of any other
        # copy reads its source again (issue 13).
        source = self.source
        spool_whole = (source.read_once and not source.kept_by_caller) or converting
        # When a target's hash differs, hashing the source's bytes again (the whole spool, or
        # a second read of the source) tells whether the source is corrupt: a stream that can
        # be read only once needs the whole spool. An upload's declared checksum is a claim
        # Glint checks itself.
        # Not when a target converts: it works from the cache entry, so the source's bytes
        # must be proven by the time the read ends, not by another target's hash later. Nor
        # when a target's cloud checks writes instead of hashing the whole image (EC2): its
        # copy is proven by the bytes sent, so those must be proven against the source.
        self.clouds_prove = (
            ((spool_whole and self.spool is not None) or not source.read_once)
            and not source.trusted_stream
            and not converting
            and not any(r.checked_writes() for r in writers)
            and clouds_prove(record, target_algos)
        )
        algorithms = ("sha256",) if self.clouds_prove else algorithms_for(record, target_algos)
        throttle = Throttle()

        def on_read(done: int) -> None:
            if throttle.ready() or done == record.size:
                self.pump.post(self.observer.progress, None, "copy.reading", done, record.size)

        self.fanout = FanOut(
            chunks,
            algorithms,
            [r.feed for r in writers],
            self.spool,
            write_spool=not from_cache,
            spool_whole=spool_whole,
            on_read=on_read,
            verdict=lambda digests, size: check_source(record, digests, size),
            interrupt=chunks.interrupt if isinstance(chunks, SourceRead) else None,
        )
        self.fanout.start()

    def _cached(self, record: ImageRecord) -> CacheEntry | None:
        """The source's bytes in the cache, if a verified copy is there: a retry then reads
        no byte from the source cloud (the bytes are still checked against its hash)."""
        return _cached_entry(self.cache, record) if self.cache is not None else None

    @staticmethod
    def _cached_spool(entry: CacheEntry | None) -> Spool | None:
        if entry is None:
            return None
        try:
            return Spool.of_file(entry.path, entry.size)
        except FileNotFoundError:  # evicted just now
            return None

    def source_entry(self) -> CacheEntry:
        """The source's bytes as a cache entry, once the fan-out has read and verified them
        all: what a target that converts works from (called from its thread).

        Raises:
            The fan-out's error (the read failed, the source is corrupt, a cancel).
            ConversionFailed: There is no cache, or no room in it, to convert in.
        """
        self.fanout_ready.wait()
        fanout = self.fanout
        if fanout is None:
            raise self.start_error or CopyCancelled("the copy was cancelled")
        fanout.join()
        if fanout.error is not None:
            raise fanout.error
        assert fanout.digests is not None
        with self._spool_lock:
            if self.entry is None:
                if self.spool is None:
                    raise ConversionFailed(
                        "the image must be converted for this cloud, which Glint does in its "
                        "content cache, and the cache had no room for it; free space or raise "
                        "cache_quota_bytes, then retry"
                    )
                self.entry = self.spool.commit(dict(fanout.digests))
        return self.entry

    def _new_spool(self, record: ImageRecord) -> Spool | None:
        if self.cache is None:
            return None
        try:
            return self.cache.spool(record.size)
        except CacheFull as exc:
            self.pump.post(
                self.observer.warning,
                None,
                f"{exc}; copying without a spool, so a slow target slows the others",
            )
            return None

    def _finish_cache(self) -> None:
        if self.fanout is not None:
            self.fanout.join()
        self.digests = self._proven_digests()
        spool = self.spool
        if spool is None:
            return
        if spool.writable and self.entry is None:  # not kept already for a conversion
            if self.digests and self._spool_whole():
                spool.commit(self.digests)
            else:
                spool.discard()
        spool.close()

    def _proven_digests(self) -> dict[str, str]:
        """The digests of the bytes read, once they are proven to be the source's: checked by
        the fan-out against the source's stored hash or, when the clouds prove the copies, by a
        target's own hash; with no target proven, by hashing the spool. Empty: not proven,
        nothing is kept."""
        fanout = self.fanout
        if fanout is None or fanout.error is not None or fanout.digests is None:
            return {}
        if not self.clouds_prove:
            return dict(fanout.digests)
        proven = dict(r.proven for r in self.runs if r.proven is not None)
        if not proven and not self._spool_whole():
            return {}  # nothing to keep: proving the bytes would take a second read
        if not proven:
            try:
                proven = self.check_spool()
            except SourceVerificationFailed:
                return {}
        return {**fanout.digests, **proven}

    def _spool_whole(self) -> bool:
        return (
            self.spool is not None
            and self.fanout is not None
            and self.spool.whole
            and self.spool.written == self.fanout.size
        )

    def check_spool(self) -> dict[str, str]:
        """The digest of the source's bytes in the source's algorithm, checked against the
        source's stored one (hashed once per copy, and only when the clouds' own hashes did
        not prove a copy): from the spool when it holds the whole stream, else from a second
        read of the source (the spool holds at most the tail a lagging target read).

        Raises:
            SourceVerificationFailed: The bytes read are not the source's: the source is corrupt.
        """
        record, spool = self.record, self.spool
        assert record is not None and record.hash_algo
        with self._spool_lock:
            if self._spool_digest is None:
                if self._spool_whole():
                    assert spool is not None
                    chunks = spool.chunks()
                else:
                    # Called once a target's upload ended, so the reader thread has read the
                    # source to its end and is done with the source's driver.
                    chunks = SourceRead(self.source.driver, record.id, self.options.read_attempts)
                with MultiHasher([record.hash_algo]) as hasher:
                    for chunk in chunks:
                        hasher.update(chunk)
                self._spool_digest = hasher.hexdigests()
                self._spool_size = hasher.size
        check_source(record, self._spool_digest, self._spool_size)
        return dict(self._spool_digest)

    def _result(self) -> CopyResult:
        digests = self.digests
        return CopyResult(
            source=self.record,
            sha256=digests.get("sha256"),
            hashes=digests,
            targets={r.target.key: r.result for r in self.runs},
            spooled_bytes=self.fanout.spooled_bytes if self.fanout is not None else 0,
        )


def verifiable(driver: CloudDriver, record: ImageRecord, *, trusted: bool) -> ImageRecord:
    """``record`` with the hash its bytes are checked against while they are read.

    The cloud's own hash when it keeps one (Glance). A cloud that keeps none (EC2) still
    carries the ``glint_sha256`` Glint gave the copy once it was verified: the whole stream is
    checked against it, as against a cloud's hash. With neither, the image is copied only if
    the cloud checks every byte read against a checksum it stored (``verified_reads``: EBS
    direct's per-block SHA-256; an AMI Glint did not make) or the bytes are the person's own
    (``trusted``, an upload); the targets are then verified against what was read.

    Raises:
        SourceNotUsable: Nothing vouches for the bytes read.
    """
    if (record.hash_algo and record.hash_value) or record.checksum or trusted:
        return record
    tagged = str(record.properties.get(props.GLINT_SHA256) or "").lower()
    if tagged:
        return dataclasses.replace(record, hash_algo="sha256", hash_value=tagged)
    try:
        verified_reads = driver.capabilities().verified_reads
    except CloudError:
        verified_reads = False
    if verified_reads:
        return record
    raise SourceNotUsable(
        f"source image {record.id} ({record.name!r}) has no stored hash, so its bytes "
        f"cannot be verified; Glint does not copy unverifiable images"
    )


def _cached_entry(cache: ContentCache, record: ImageRecord) -> CacheEntry | None:
    """The cache's entry holding ``record``'s bytes, found by the cloud's own hash and size."""
    for algo, value in ((record.hash_algo, record.hash_value), ("md5", record.checksum)):
        entry = cache.find(algo, value) if algo and value else None
        if entry is not None and entry.size == record.size:
            return entry
    return None


def cache_image(
    driver: CloudDriver,
    image_id: str,
    cache: ContentCache,
    *,
    progress: Callable[[int, int], None] | None = None,
    read_attempts: int = CopyOptions.read_attempts,
    cancel: threading.Event | None = None,
) -> tuple[ImageRecord, CacheEntry]:
    """The cloud image ``image_id`` and its bytes in ``cache``, verified against the cloud's hash.

    For work on the bytes themselves (a conversion to another disk format): an entry already in
    the cache is used as it is; otherwise the image is read once, hashed (sha256 and the cloud's
    own algorithm) and kept only if it matches what the cloud says it stores.

    Args:
        progress: ``progress(bytes_read, size)`` while reading, from the reading thread.
        cancel: Set it (from any thread) to stop the read; nothing is kept.

    Raises:
        CloudError: The cloud failed (after ``read_attempts`` resumed reads).
        SourceNotUsable: The image is not active.
        SourceVerificationFailed: The bytes read differ from the cloud's record; nothing is kept.
        CacheFull: No room for the image.
    """
    record = driver.get_image(image_id)
    if record.status != "active":
        raise SourceNotUsable(f"image {image_id} is {record.status}, not active")
    record = verifiable(driver, record, trusted=False)
    entry = _cached_entry(cache, record)
    if entry is not None:
        return record, entry
    spool = cache.spool(record.size)
    report = progress or (lambda done, total: None)
    read = SourceRead(driver, image_id, read_attempts)
    fanout = FanOut(
        read,
        algorithms_for(record, []),
        [],
        spool,
        write_spool=True,
        spool_whole=True,
        on_read=lambda done: report(done, record.size or 0),
        verdict=lambda digests, size: check_source(record, digests, size),
        interrupt=read.interrupt,
    )
    entry = None
    try:
        fanout.start()
        with stopped_on(cancel, lambda: fanout.abort(CopyCancelled("cancelled while reading"))):
            fanout.join()
        if fanout.error is not None:
            raise fanout.error
        assert fanout.digests is not None
        entry = spool.commit(fanout.digests)
    finally:
        if entry is None:
            spool.discard()
        spool.close()
    return record, entry


class SourceRead:
    """The source's bytes, resumed at the byte where a broken stream stopped, read into a pool
    of reused buffers where the driver can (see chunk_memory.ChunkPool).

    :meth:`interrupt` (from another thread: a cancel) ends a read that is blocked on a cloud
    that hangs, rather than leave the copy waiting for the driver's read timeout.
    """

    def __init__(self, driver: CloudDriver, image_id: str, attempts: int):
        self.driver, self.image_id, self.attempts = driver, image_id, attempts
        self._reader: ImageReader | None = None
        self._interrupted = False

    def __iter__(self) -> Iterator[bytes]:
        offset = 0
        failures = 0
        pool = ChunkPool()
        while not self._interrupted:
            try:
                with self.driver.open_read(self.image_id, offset) as self._reader:
                    if self._interrupted:  # interrupted while the stream was being opened
                        break
                    for chunk in self._reader.chunks_into(pool.take):
                        offset += len(chunk)
                        yield chunk
                return
            except CloudError as exc:
                failures += 1
                if self._interrupted or not exc.retryable or failures >= self.attempts:
                    raise
                log.warning(
                    "source read of %s broke at byte %d, resuming: %s", self.image_id, offset, exc
                )
        raise CopyCancelled("the source read was interrupted")

    def interrupt(self) -> None:
        self._interrupted = True
        reader = self._reader
        if reader is not None:
            reader.interrupt()
