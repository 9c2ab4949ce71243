"""One copy from start to end: check the source, prepare each target, fan out, verify, finish.

Order matters for crash safety (ARCHITECTURE.md "Jobs"):

1. Each target is prepared on its own thread: an earlier attempt's image is reused if it is a
   verified copy, or deleted; a copy that already exists ends the target with no work; a name
   clash is settled by the conflict policy *without touching the old image yet*.
2. The target image is created private and its id reported (``image_created``) before a byte is
   written, so a crash leaves an id the job can clean up.
3. The fan-out reads the source once; every upload's end is held back until the source's bytes
   matched its stored hash.
4. Each target is verified once active; a bad copy is deleted.
5. Only then: the chosen visibility and the content markers, and the old image of a clash is
   replaced or renamed. Whatever failed after step 2 deletes the new image.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import threading
import time
from collections.abc import Iterator, Sequence

from glint.clouds import CloudDriver, CloudError, Conflict, Forbidden, ImageRecord, NotFound
from glint.replication import properties as props
from glint.replication.cache import ContentCache, Spool
from glint.replication.errors import (
    CacheFull,
    CopyCancelled,
    NameConflict,
    ReplicationError,
    SourceNotUsable,
)
from glint.replication.events import EventPump, Throttle
from glint.replication.fanout import FanOut, Feed
from glint.replication.hashing import algorithms_for, check_source
from glint.replication.policies import ConflictPolicy
from glint.replication.records import (
    CopyObserver,
    CopyOptions,
    CopyResult,
    CopySource,
    CopyTarget,
    Failure,
    TargetOutcome,
    TargetResult,
    TargetState,
)
from glint.replication.verify import check_copy, same_content, wait_active

__all__ = ["copy_image"]

log = logging.getLogger(__name__)

#: Pauses between attempts to delete an unfinished target image (None: give up).
_CLEANUP_PAUSES = (0.2, 0.5, 1.0, 2.0, 4.0, None)


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
    run = _Copy(source, targets, cache, options or CopyOptions(), observer or CopyObserver(),
                cancel or threading.Event())
    return run.run()


def _failure(exc: BaseException) -> Failure:
    if isinstance(exc, (ReplicationError, CloudError)):
        return exc
    log.exception("unexpected error in a copy", exc_info=exc)
    error = ReplicationError(f"internal error: {type(exc).__name__}: {exc}")
    error.code = "internal_error"
    return error


class _Copy:
    """The state of one :func:`copy_image` call."""

    def __init__(self, source: CopySource, targets: Sequence[CopyTarget],
                 cache: ContentCache | None, options: CopyOptions, observer: CopyObserver,
                 cancel: threading.Event):
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
        self.runs = [_TargetRun(self, t) for t in targets]
        self.fanout: FanOut | None = None
        self.spool: Spool | None = None
        self.fanout_ready = threading.Event()
        self.start_error: BaseException | None = None

    def run(self) -> CopyResult:
        try:
            self.record = self._check_source()
        except (CloudError, ReplicationError) as exc:
            for target_run in self.runs:
                target_run.fail(exc)
            return self._result()
        threads = [threading.Thread(target=r.main, name=f"glint-copy-{r.target.key}",
                                    daemon=True) for r in self.runs]
        for thread in threads:
            thread.start()
        self.pump.run_until(lambda: all(r.prepared.is_set() for r in self.runs),
                            self._check_cancel)
        try:
            self._start_fanout()
        except BaseException as exc:  # noqa: BLE001 - every writer fails with it
            self.start_error = exc
        finally:
            self.fanout_ready.set()
        self.pump.run_until(lambda: not any(t.is_alive() for t in threads), self._check_cancel)
        self._finish_cache()
        return self._result()

    def _check_cancel(self) -> None:
        if self.cancel.is_set() and self.fanout is not None:
            self.fanout.abort(CopyCancelled("the copy was cancelled"))

    def _check_source(self) -> ImageRecord:
        driver = self.source.driver
        record = driver.get_image(self.source.image_id)
        if record.status != "active":
            raise SourceNotUsable(
                f"source image {record.id} ({record.name!r}) is {record.status}, not active: "
                f"it has no data to copy yet")
        if not ((record.hash_algo and record.hash_value) or record.checksum):
            raise SourceNotUsable(
                f"source image {record.id} ({record.name!r}) has no stored hash, so its bytes "
                f"cannot be verified; Glint does not copy unverifiable images")
        for key in props.IMAGE_REFERENCES:
            ref = record.properties.get(key)
            if ref:
                with contextlib.suppress(CloudError):
                    self.references.append(driver.get_image(ref))
        return record

    # Fan-out

    def _start_fanout(self) -> None:
        writers = [r for r in self.runs if r.feed_wanted]
        if not writers or self.cancel.is_set():
            return
        record = self.record
        assert record is not None
        entry = self._cached_entry(record)
        if entry is not None:
            chunks: Iterator[bytes] = _file_chunks(entry.path)
            self.spool = Spool.of_file(entry.path, entry.size)
        else:
            chunks = _resuming_read(self.source.driver, record.id, self.options.read_attempts)
            self.spool = self._new_spool(record)
        for r in writers:
            r.feed = Feed(self.options.lag_limit_bytes, self.spool)
        algorithms = algorithms_for(record, [r.target_algo for r in writers])
        throttle = Throttle()

        def on_read(done: int) -> None:
            if throttle.ready() or done == record.size:
                self.pump.post(self.observer.progress, None, "copy.reading", done, record.size)

        self.fanout = FanOut(chunks, algorithms, [r.feed for r in writers], self.spool,
                             write_spool=entry is None, on_read=on_read,
                             verdict=lambda digests, size: check_source(record, digests, size))
        self.fanout.start()

    def _cached_entry(self, record: ImageRecord):
        if self.cache is None:
            return None
        for algo, value in ((record.hash_algo, record.hash_value), ("md5", record.checksum)):
            if algo and value:
                entry = self.cache.find(algo, value)
                if entry is not None and entry.size == record.size:
                    return entry
        return None

    def _new_spool(self, record: ImageRecord) -> Spool | None:
        if self.cache is None:
            return None
        try:
            return self.cache.spool(record.size)
        except CacheFull as exc:
            self.pump.post(self.observer.warning, None,
                           f"{exc}; copying without a spool, so a slow target slows the others")
            return None

    def _finish_cache(self) -> None:
        if self.fanout is not None:
            self.fanout.join()
        spool = self.spool
        if spool is None:
            return
        fanout = self.fanout
        if spool.writable:
            if fanout is not None and fanout.error is None and fanout.digests is not None:
                spool.commit(fanout.digests)
            else:
                spool.discard()
        spool.close()

    def _result(self) -> CopyResult:
        fanout = self.fanout
        digests = dict(fanout.digests) if fanout and fanout.digests and not fanout.error else {}
        return CopyResult(source=self.record, sha256=digests.get("sha256"), hashes=digests,
                          targets={r.target.key: r.result for r in self.runs})


def _resuming_read(driver: CloudDriver, image_id: str, attempts: int) -> Iterator[bytes]:
    """The source's bytes, resumed at the byte where a broken stream stopped."""
    offset = 0
    failures = 0
    while True:
        try:
            with driver.open_read(image_id, offset) as reader:
                for chunk in reader:
                    offset += len(chunk)
                    yield chunk
            return
        except CloudError as exc:
            failures += 1
            if not exc.retryable or failures >= attempts:
                raise
            log.warning("source read of %s broke at byte %d, resuming: %s", image_id, offset, exc)


def _file_chunks(path) -> Iterator[bytes]:
    from glint.clouds import CHUNK_SIZE

    with open(path, "rb", buffering=0) as handle:
        while chunk := handle.read(CHUNK_SIZE):
            yield chunk


# One target


class _TargetRun:
    """One target's thread: prepare, write, verify, finish; deletes its image on failure."""

    def __init__(self, copy: _Copy, target: CopyTarget):
        self.copy = copy
        self.target = target
        self.driver = target.driver
        self.result = TargetResult(key=target.key)
        self.prepared = threading.Event()
        self.feed_wanted = False
        self.feed: Feed | None = None
        self.target_algo: str | None = None
        self.image_id: str | None = None
        self.clashes: list[ImageRecord] = []
        self.name: str | None = None

    # Reporting

    def _state(self, state: TargetState) -> None:
        self.result.state = state
        self.copy.pump.post(self.copy.observer.state_changed, self.target.key, state)

    def _warn(self, message: str) -> None:
        self.result.warnings.append(message)
        self.copy.pump.post(self.copy.observer.warning, self.target.key, message)

    def fail(self, exc: BaseException) -> None:
        error = _failure(exc)
        cancelled = isinstance(error, CopyCancelled)
        self.result.error = error
        self.result.outcome = TargetOutcome.CANCELLED if cancelled else TargetOutcome.FAILED
        self._state(TargetState.CANCELLED if cancelled else TargetState.FAILED)

    def _done(self, outcome: TargetOutcome, image_id: str | None) -> None:
        self.result.outcome = outcome
        self.result.image_id = image_id
        self._state(TargetState.DONE)

    # Thread

    def main(self) -> None:
        try:
            self._prepare()
        except BaseException as exc:  # noqa: BLE001 - recorded in the result
            self._cleanup()
            self.fail(exc)
            return
        finally:
            self.prepared.set()
        if not self.feed_wanted:
            return
        self.copy.fanout_ready.wait()
        try:
            if self.feed is None:  # the fan-out never started
                raise self.copy.start_error or CopyCancelled("the copy was cancelled")
            self._write()
            self._verify_and_finish()
        except BaseException as exc:  # noqa: BLE001 - recorded in the result
            if self.feed is not None:
                self.feed.close()
            self._cleanup()
            self.fail(exc)

    def _cleanup(self) -> None:
        """Delete this target's unfinished image.

        Right after an upload was cut off, Glance may still be handling it and answer the
        delete with a 5xx or 409 for a moment; a few short retries get past that.
        """
        if self.image_id is None:
            return
        for pause in _CLEANUP_PAUSES:
            try:
                self.driver.delete(self.image_id)
                break
            except NotFound:
                break
            except CloudError as exc:
                if pause is None or not (exc.retryable or isinstance(exc, Conflict)):
                    self._warn(f"could not delete the unfinished image {self.image_id}: {exc}; "
                               f"the reconciler removes it later")
                    break
                time.sleep(pause)
        self.image_id = None

    # Steps

    def _prepare(self) -> None:
        source = self.copy.record
        assert source is not None
        if self.copy.cancel.is_set():
            raise CopyCancelled("the copy was cancelled")
        if self.target.previous_image_id and self._reuse_previous(source):
            return
        listing = self.driver.list_images()
        self.target_algo = next((i.hash_algo for i in listing
                                 if i.status == "active" and i.hash_algo), None)
        self.name = self.target.name if self.target.name is not None else source.name
        same_name = [i for i in listing if i.name == self.name and i.status == "active"]
        existing = next((i for i in same_name if same_content(source, i)), None)
        if existing is not None:
            self._done(TargetOutcome.EXISTS, existing.id)
            return
        owner = self.driver.check().project_id
        self.clashes = [i for i in same_name if i.owner == owner]
        for other in same_name:
            if other.owner != owner:
                self._warn(f"image {other.id} of another project is also named {self.name!r} "
                           f"with other content")
        if self.clashes and self.target.policy is ConflictPolicy.REPORT:
            ids = ", ".join(i.id for i in self.clashes)
            raise NameConflict(
                f"the target already has an image named {self.name!r} with other content "
                f"({ids}); the group's conflict policy is 'report', so nothing was copied. "
                f"Rename or delete it, or choose the replace, rename-old or skip policy")
        if self.clashes and self.target.policy is ConflictPolicy.SKIP:
            self._done(TargetOutcome.SKIPPED, None)
            return
        self._create(source, listing)

    def _reuse_previous(self, source: ImageRecord) -> bool:
        """Settle the image an earlier attempt of this target created; True if it is a
        verified copy (the target is then done).

        Only an image Glint made from this source is finished or deleted here; anything else
        under that id is left alone.
        """
        try:
            previous = self.driver.get_image(self.target.previous_image_id)
        except NotFound:
            return False
        ours = previous.properties.get(props.GLINT_SOURCE_ID) == source.id
        if previous.status == "active" and same_content(source, previous):
            if ours:
                self._finish(previous, {})
            self._done(TargetOutcome.EXISTS, previous.id)
            return True
        if ours:
            self.image_id = previous.id
            self._cleanup()
        return False

    def _create(self, source: ImageRecord, listing: list[ImageRecord]) -> None:
        image_map = {ref.id: i.id for ref in self.copy.references for i in listing
                     if i.status == "active" and same_content(ref, i)}
        fields, warnings = props.copy_fields(source, rules=self.copy.options.property_rules,
                                             name=self.name, image_map=image_map)
        for warning in warnings:
            self._warn(warning)
        fields.update(props.provenance(self.copy.source.repo_ref, source.id))
        # Private until verified: Glance 33 makes new images "shared" by default.
        fields["visibility"] = "private"
        created = self.driver.create_image(fields)
        self.image_id = created.id
        self.copy.pump.call(self.copy.observer.image_created, self.target.key, created.id)
        self.feed_wanted = True

    def _write(self) -> None:
        source = self.copy.record
        assert source is not None and self.feed is not None and self.image_id is not None
        self._state(TargetState.WRITING)
        throttle = Throttle()
        pump, observer, key = self.copy.pump, self.copy.observer, self.target.key

        def body() -> Iterator[bytes]:
            for chunk in self.feed:
                yield chunk
                if throttle.ready():
                    pump.post(observer.progress, key, "copy.writing", self.feed.sent,
                              source.size)

        self.written_record = self.driver.write_data(self.image_id, body(), size=source.size)
        self.result.bytes_written = self.feed.sent
        self.result.spooled = self.feed.detached
        pump.post(observer.progress, key, "copy.writing", self.feed.sent, source.size)

    def _verify_and_finish(self) -> None:
        fanout = self.copy.fanout
        assert fanout is not None and fanout.digests is not None and self.image_id is not None
        self._state(TargetState.VERIFYING)
        options = self.copy.options
        record = wait_active(self.driver, self.image_id, record=self.written_record,
                             timeout=options.verify_timeout, interval=options.poll_interval,
                             cancel=self.copy.cancel)
        check_copy(self.driver, record, fanout.size, fanout.digests)
        self._finish(record, fanout.digests)
        image_id, self.image_id = self.image_id, None  # from here on, the copy is kept
        self._settle_clashes()
        self._done(TargetOutcome.COPIED, image_id)

    def _finish(self, record: ImageRecord, digests: dict[str, str]) -> None:
        """Give a verified copy its markers and final visibility."""
        source = self.copy.record
        assert source is not None
        sha256 = digests.get("sha256") or record.properties.get(props.GLINT_SHA256) or (
            source.properties.get(props.GLINT_SHA256))
        markers = props.content_markers(record.name, sha256, record.checksum) if sha256 else {}
        visibility = self.target.visibility or source.visibility or "private"
        if visibility == "shared" and source.visibility == "shared" and not self.target.visibility:
            visibility = "private"  # the source's members are projects of another cloud
        changes = {**markers}
        if visibility != record.visibility:
            changes["visibility"] = visibility
        if not changes:
            return
        try:
            self.driver.set_properties(record.id, set=changes)
        except Forbidden:
            changes.pop("visibility", None)
            self.driver.set_properties(record.id, set=changes)
            self._warn(f"the target project may not make images {visibility}; the copy stays "
                       f"{record.visibility}")

    def _settle_clashes(self) -> None:
        """Replace or rename the old images of the same name, now that the copy is verified."""
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%d-%H%M%S")
        for old in self.clashes:
            try:
                if self.target.policy is ConflictPolicy.REPLACE:
                    self.driver.delete(old.id)
                    self.result.replaced_image_ids.append(old.id)
                elif self.target.policy is ConflictPolicy.RENAME_OLD:
                    self.driver.set_properties(old.id, set={
                        "name": f"{self.name}.old-{stamp}", "visibility": "private"})
                    self.result.renamed_image_ids.append(old.id)
            except CloudError as exc:
                self._warn(f"the old image {old.id} named {self.name!r} was kept: {exc}")
