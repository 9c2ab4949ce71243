"""One target of a copy, on its own thread: prepare, write, verify, finish.

The steps and their order are explained in :mod:`glint.replication.copier`; this module holds
what happens at one target, including the conflict policy and the cleanup of an unfinished
image (a failure after the image was created always deletes it).
"""

from __future__ import annotations

import datetime
import hashlib
import logging
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from glint.clouds import (
    CHUNK_SIZE,
    Capabilities,
    CloudError,
    Conflict,
    Forbidden,
    ImageRecord,
    InvalidRequest,
    NotFound,
)
from glint.errors import internal_error_message
from glint.replication import properties as props
from glint.replication.cache import CacheEntry
from glint.replication.conversion import convert, qemu_input_format
from glint.replication.copy_types import (
    CopyTarget,
    Failure,
    TargetOutcome,
    TargetResult,
    TargetState,
)
from glint.replication.errors import (
    CopyCancelled,
    NameConflict,
    ReplicationError,
    SourceUnsafe,
    TargetVerificationFailed,
    UnexpectedError,
)
from glint.replication.events import Throttle
from glint.replication.fanout import Feed
from glint.replication.hashing import stored_digests
from glint.replication.image_safety import read_head, unsafe_reason
from glint.replication.policies import ConflictPolicy
from glint.replication.verify import check_copy, check_size, same_content, wait_active

if TYPE_CHECKING:
    from glint.replication.copier import Copy

__all__ = ["TargetRun", "failure"]

log = logging.getLogger(__name__)

#: Pauses between attempts to delete an unfinished target image (None: give up).
_CLEANUP_PAUSES = (0.2, 0.5, 1.0, 2.0, 4.0, None)
#: Pauses between attempts to give a verified copy its markers and visibility (None: give up).
#: Failing there would delete a copy that is already verified, so a passing 5xx is waited out.
_FINISH_PAUSES = (0.5, 1.0, 2.0, 4.0, None)


def failure(exc: BaseException) -> Failure:
    if isinstance(exc, (ReplicationError, CloudError)):
        return exc
    log.error("unexpected error in a copy", exc_info=exc)
    return UnexpectedError(internal_error_message(exc))


class TargetRun:
    """One target's thread: prepare, write, verify, finish; deletes its image on failure."""

    def __init__(self, copy: Copy, target: CopyTarget):
        self.copy = copy
        self.target = target
        self.driver = target.driver
        self.result = TargetResult(key=target.key)
        self.prepared = threading.Event()
        self.feed_wanted = False
        self.pulling = False
        self.server_copy = False
        self.feed: Feed | None = None
        self.target_algo: str | None = None
        self.image_id: str | None = None
        self.one_step_fields: dict | None = None
        self.clashes: list[ImageRecord] = []
        self.name: str | None = None
        self.written_record: ImageRecord | None = None
        #: The disk format this target stores the source as, when it stores only others (EC2).
        self.convert_to: str | None = None
        #: The fields of a converting target's image, created once the conversion is made.
        self.convert_fields: dict | None = None
        #: The conversion this target was written from (its bytes, size and sha256).
        self.converted: CacheEntry | None = None
        #: What this target's conversion was made from, once it stores one: the source's
        #: ``glint_made_from``, else ``sha256:<hex>`` of the source's bytes.
        self.made_from: str | None = None
        self._capabilities_of: Capabilities | CloudError | None = None
        #: The algorithm and digest this target's copy was proven by (its bytes are the source's).
        self.proven: tuple[str, str] | None = None

    # Reporting

    def _state(self, state: TargetState) -> None:
        self.result.state = state
        self.copy.pump.post(self.copy.observer.state_changed, self.target.key, state)

    def _warn(self, message: str) -> None:
        self.result.warnings.append(message)
        self.copy.pump.post(self.copy.observer.warning, self.target.key, message)

    def fail(self, exc: BaseException) -> None:
        error = failure(exc)
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
            self.copy.pump.wake()
        if not (self.feed_wanted or self.pulling or self.server_copy or self.convert_to):
            return
        try:
            if self.pulling:
                self._await_pull()
                return
            if self.server_copy:
                self._await_server_copy()
                return
            if self.convert_to:
                self._convert()
                assert self.converted is not None
                proven = self.converted.sha256 if self.checked_writes() else None
                self._write(_file_chunks(self.converted.path, proven), self.converted.size)
            else:
                self.copy.fanout_ready.wait()
                if self.feed is None:  # the fan-out never started
                    raise self.copy.start_error or CopyCancelled("the copy was cancelled")
                self._write(self.feed, self.copy.record.size)
                self.result.spooled = self.feed.detached
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
                    self._warn(
                        f"could not delete the unfinished image {self.image_id}: {exc}; "
                        f"the reconciler removes it later"
                    )
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
        self.target_algo = next(
            (i.hash_algo for i in listing if i.status == "active" and i.hash_algo), None
        )
        self.name = self.target.name if self.target.name is not None else source.name
        same_name = [i for i in listing if i.name == self.name and i.status == "active"]
        existing = next((i for i in same_name if self._holds_source(i)), None)
        if existing is not None:
            self._done(TargetOutcome.EXISTS, existing.id)
            return
        owner = self.driver.project_id()
        self.clashes = [i for i in same_name if i.owner == owner]
        for other in same_name:
            if other.owner != owner:
                self._warn(
                    f"image {other.id} of another project is also named {self.name!r} "
                    f"with other content"
                )
        if self.clashes and self.target.policy is ConflictPolicy.REPORT:
            ids = ", ".join(i.id for i in self.clashes)
            raise NameConflict(
                f"the target already has an image named {self.name!r} with other content "
                f"({ids}); the group's conflict policy is 'report', so nothing was copied. "
                f"Rename or delete it, or choose the replace, rename-old or skip policy"
            )
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
        if previous.status == "active" and self._holds_source(previous):
            if ours:
                self._finish(previous, {})
            self._done(TargetOutcome.EXISTS, previous.id)
            return True
        if ours:
            self.image_id = previous.id
            self._cleanup()
        return False

    def _holds_source(self, image: ImageRecord) -> bool:
        """Whether ``image`` holds the source's content: the same bytes, or a conversion of
        them (its ``glint_made_from`` is the source's content, see :meth:`Copy.content_key`)."""
        source = self.copy.record
        assert source is not None
        if same_content(source, image):
            return True
        made_from = image.properties.get(props.GLINT_MADE_FROM)
        return bool(made_from) and made_from == self.copy.content_key

    def _create(self, source: ImageRecord, listing: list[ImageRecord]) -> None:
        image_map = {
            ref.id: i.id
            for ref in self.copy.references
            for i in listing
            if i.status == "active" and same_content(ref, i)
        }
        fields, warnings = props.copy_fields(
            source, rules=self.copy.options.property_rules, name=self.name, image_map=image_map
        )
        for warning in warnings:
            self._warn(warning)
        fields.update(props.provenance(self.copy.source.repo_ref, source.id))
        # Private until verified: Glance 33 makes new images "shared" by default.
        fields["visibility"] = "private"
        if self._start_server_copy(source, fields):
            return
        convert_to = self._conversion_for(source)
        if convert_to:
            qemu_input_format(source.disk_format or "")  # refused before a byte is read
            fields["disk_format"] = convert_to
        self.convert_to = convert_to
        if self._writes_in_one_step():
            self.one_step_fields = fields  # the image exists only once its data is written
            self.feed_wanted = not self.convert_to
            return
        if self.convert_to:
            self.convert_fields = fields  # created once the conversion is made
            return
        created = self.driver.create_image(fields)
        self.image_id = created.id
        self.copy.pump.call(self.copy.observer.image_created, self.target.key, created.id)
        self.pulling = self._start_pull(source)
        self.feed_wanted = not self.pulling

    def _start_pull(self, source: ImageRecord) -> bool:
        """Ask the target cloud to fetch the source's pull link itself, if one is offered and
        the cloud offers ``web-download``; False: stream to it instead.

        A cloud that refuses the link on the spot (its own address filter, a disabled method)
        leaves the image ``queued``, so the same image is streamed to. Only a source with a
        hash is pulled: the copy can only be verified against it.
        """
        url = self.copy.source.pull_url
        digests = stored_digests(source)
        if not url or not digests or "web-download" not in self._import_methods():
            return False
        try:
            self.driver.import_web_download(self.image_id, url)
        except (InvalidRequest, Forbidden, Conflict) as exc:
            self._warn(
                f"the target cloud would not fetch the link itself ({exc.message}); "
                f"Glint streams the image to it"
            )
            return False
        return True

    def _start_server_copy(self, source: ImageRecord, fields: dict) -> bool:
        """Have the target cloud copy the source image itself (EC2 ``CopyImage`` between EC2
        repos), when it can reach the source repo and the source carries Glint's sha256, which
        the copy is checked against; False: stream to it instead.

        A cloud that refuses on the spot (the AMI is not shared with the target's account, the
        action is not allowed) is streamed to, like a refused pull link. The source is named by
        its connection record: its driver belongs to the reader thread.
        """
        connection = self.copy.source.driver.connection
        if not source.properties.get(props.GLINT_SHA256) or not self.driver.can_copy_from(
            connection
        ):
            return False
        try:
            created = self.driver.copy_from(connection, source.id, fields, source.size)
        except (InvalidRequest, Forbidden, NotFound) as exc:
            self._warn(
                f"the target cloud would not copy the image itself ({exc.message}); "
                f"Glint streams the image to it"
            )
            return False
        self.image_id = created.id
        self.copy.pump.call(self.copy.observer.image_created, self.target.key, created.id)
        self.server_copy = True
        return True

    def _await_server_copy(self) -> None:
        """Wait while the target cloud copies, then read the copy back and compare its sha256
        with the source's ``glint_sha256`` (the cloud keeps no hash of its own to compare)."""
        source = self.copy.record
        assert source is not None and self.image_id is not None
        self._state(TargetState.WRITING)
        self.copy.pump.post(
            self.copy.observer.progress, self.target.key, "copy.pulling", 0, source.size
        )
        record = wait_active(
            self.driver,
            self.image_id,
            timeout=self.copy.options.pull_timeout,
            interval=self.copy.options.poll_interval,
            cancel=self.copy.cancel,
        )
        self._state(TargetState.VERIFYING)
        digests = {"sha256": source.properties[props.GLINT_SHA256]}
        check_copy(self.driver, record, source.size, digests, of_source=True)
        self._keep(record, digests, TargetOutcome.PULLED)

    def _convert(self) -> None:
        """Make the bytes this target stores from the source's, which the fan-out read once and
        verified into the cache: converted there (once per format, so a retry reuses it), the
        conversion's progress reported like a write's. The target image is created only after,
        so a conversion that fails leaves nothing in the cloud (nor in the cache)."""
        source = self.copy.record
        assert source is not None and self.convert_to is not None
        self._state(TargetState.WRITING)
        entry = self.copy.source_entry()
        assert self.copy.cache is not None  # an entry exists only in a cache
        pump, observer, key = self.copy.pump, self.copy.observer, self.target.key
        size = source.size or entry.size
        throttle = Throttle()

        def progress(done: int, total: int) -> None:
            if throttle.ready() or done == total:
                pump.post(observer.progress, key, "copy.converting", size * done // total, size)

        self.converted = convert(
            self.copy.cache,
            entry,
            source.disk_format or "",
            self.convert_to,
            progress=progress,
            cancel=self.copy.cancel,
        )
        # A source that is itself a conversion names the content it was made from: the copy
        # names that too, so every copy of the row carries the row's content key.
        self.made_from = source.properties.get(props.GLINT_MADE_FROM) or f"sha256:{entry.sha256}"
        if self.copy.cancel.is_set():
            raise CopyCancelled("the copy was cancelled")
        if self.convert_fields is not None:  # a cloud that creates the image first
            created = self.driver.create_image(self.convert_fields)
            self.image_id = created.id
            pump.call(observer.image_created, key, created.id)

    def _write(self, chunks: Iterable[bytes], size: int | None) -> None:
        """Send ``chunks`` (``size`` bytes, if known) to the target image."""
        assert self.image_id is not None or self.one_step_fields is not None
        if self.result.state is not TargetState.WRITING:
            self._state(TargetState.WRITING)
        throttle = Throttle()
        pump, observer, key = self.copy.pump, self.copy.observer, self.target.key
        sent = 0

        def body() -> Iterator[bytes]:
            nonlocal sent
            for chunk in chunks:
                sent += len(chunk)
                yield chunk
                if throttle.ready():
                    pump.post(observer.progress, key, "copy.writing", sent, size)

        if self.one_step_fields is not None:
            self.written_record = self.driver.create_and_write(
                self.one_step_fields, body(), size=size, on_started=self._write_started
            )
            self.image_id = self.written_record.id
            pump.post(observer.image_created, key, self.image_id)
        else:
            self.written_record = self.driver.write_data(self.image_id, body(), size=size)
        self.result.bytes_written = sent
        pump.post(observer.progress, key, "copy.writing", sent, size)

    def _capabilities(self) -> Capabilities | CloudError:
        """The target cloud's capabilities, asked once per copy (Glance: a discovery call), or
        why they could not be had."""
        if self._capabilities_of is None:
            try:
                self._capabilities_of = self.driver.capabilities()
            except CloudError as exc:
                self._capabilities_of = exc
        return self._capabilities_of

    def _write_started(self, write_id: str) -> None:
        """A one-step write exists in the cloud (EC2: its snapshot): record its id before a byte
        is written, as for a created image, so a crash leaves an id the job cleans up."""
        self.image_id = write_id
        self.copy.pump.call(self.copy.observer.image_created, self.target.key, write_id)

    def checked_writes(self) -> bool:
        """Whether the target cloud checks what it stores against what it was given."""
        capabilities = self._capabilities()
        return not isinstance(capabilities, CloudError) and capabilities.checked_writes

    def _writes_in_one_step(self) -> bool:
        capabilities = self._capabilities()
        # no discovery call: the usual create, then write
        return not isinstance(capabilities, CloudError) and capabilities.writes_in_one_step

    def _conversion_for(self, source: ImageRecord) -> str | None:
        """The disk format the target stores the source as, when not the source's: the one
        the target asks for (:attr:`CopyTarget.disk_format`) if the cloud stores it, else the
        cloud's preferred one when it stores only formats other than the source's (EC2: raw
        only); None: the source's bytes as they are."""
        capabilities = self._capabilities()
        # A cloud without the discovery call is taken to store any format, as Glance does.
        stored = () if isinstance(capabilities, CloudError) else capabilities.disk_formats
        wanted = self.target.disk_format
        if wanted and wanted != source.disk_format and (not stored or wanted in stored):
            return wanted
        if not stored or source.disk_format in stored:
            return None
        return stored[0]

    def _import_methods(self) -> tuple[str, ...]:
        capabilities = self._capabilities()
        if isinstance(capabilities, CloudError):
            # a cloud without the discovery call, or it failed: stream to it
            self._warn(
                f"could not ask the target cloud whether it fetches links itself "
                f"({capabilities.message}); Glint streams the image to it"
            )
            return ()
        return capabilities.import_methods

    def _await_pull(self) -> None:
        """Wait while the target cloud fetches the link, then verify its copy against the
        source's stored hash (its size too, when the link announced one)."""
        source = self.copy.record
        assert source is not None and self.image_id is not None
        self._state(TargetState.WRITING)
        self.copy.pump.post(
            self.copy.observer.progress, self.target.key, "copy.pulling", 0, source.size
        )
        options = self.copy.options
        record = wait_active(
            self.driver,
            self.image_id,
            timeout=options.pull_timeout,
            interval=options.poll_interval,
            cancel=self.copy.cancel,
        )
        self._state(TargetState.VERIFYING)
        digests = stored_digests(source)
        check_copy(self.driver, record, source.size, digests, of_source=True)
        # Glint inspected the bytes it fetched, not the ones the cloud fetched: a link may serve
        # each a different file, so the cloud's copy is inspected before it is kept.
        reason = unsafe_reason(read_head(self.driver, self.image_id))
        if reason:
            raise SourceUnsafe(f"the image the cloud fetched is {reason}; Glint does not keep it")
        self._keep(record, digests, TargetOutcome.PULLED)

    def _verify_and_finish(self) -> None:
        fanout = self.copy.fanout
        assert fanout is not None and fanout.digests is not None and self.image_id is not None
        self._state(TargetState.VERIFYING)
        options = self.copy.options
        record = wait_active(
            self.driver,
            self.image_id,
            record=self.written_record,
            timeout=options.verify_timeout,
            interval=options.poll_interval,
            cancel=self.copy.cancel,
        )
        source = self.copy.record
        assert source is not None
        if self.checked_writes() and not self.result.spooled:
            # The cloud checked every part it stored against checksums of the bytes it was given
            # (see Capabilities.checked_writes), and those bytes were proven as they were sent:
            # the fan-out's stream against the source, or the conversion re-hashed on its way
            # (_file_chunks). Bytes re-read from the spool were not, so they are read back.
            if self.converted is not None:
                size, digests = self.converted.size, self.converted.hashes
            else:
                size, digests = fanout.size, fanout.digests
            check_size(record, size)
            self._keep(record, digests, TargetOutcome.COPIED)
            return
        if self.converted is not None:
            # It holds the conversion's bytes, not the source's: checked against their digest.
            check_copy(self.driver, record, self.converted.size, self.converted.hashes)
            self._keep(record, self.converted.hashes, TargetOutcome.COPIED)
            return
        if self.copy.clouds_prove:
            # The target's own hash against the one the source cloud recorded (see
            # hashing.clouds_prove); Glint did not hash the stream with that algorithm.
            proof = stored_digests(source)
            try:
                algo = check_copy(self.driver, record, fanout.size, proof, of_source=True)
            except TargetVerificationFailed:
                self.copy.check_spool()  # raises if the source itself is corrupt
                raise
            self.proven = (algo, proof[algo])
        else:
            check_copy(self.driver, record, fanout.size, fanout.digests)
        self._keep(record, fanout.digests, TargetOutcome.COPIED)

    def _keep(self, record: ImageRecord, digests: dict[str, str], outcome: TargetOutcome) -> None:
        """A verified copy: finish it, settle the old images of its name, and report it."""
        self._finish(record, digests)
        image_id, self.image_id = self.image_id, None  # from here on, the copy is kept
        self._settle_clashes()
        self._done(outcome, image_id)

    def _finish(self, record: ImageRecord, digests: dict[str, str]) -> None:
        """Give a verified copy its markers and final visibility."""
        source = self.copy.record
        assert source is not None
        sha256 = (
            digests.get("sha256")
            or record.properties.get(props.GLINT_SHA256)
            or (source.properties.get(props.GLINT_SHA256))
        )
        # A conversion names the bytes it was made from; a copy of the same bytes keeps the
        # source's (docs/architecture.md "Conversions").
        made_from = self.made_from or source.properties.get(props.GLINT_MADE_FROM)
        markers = (
            props.content_markers(record.name, sha256, record.checksum, made_from) if sha256 else {}
        )
        visibility = self.target.visibility or source.visibility or "private"
        if visibility == "shared" and source.visibility == "shared" and not self.target.visibility:
            visibility = "private"  # the source's members are projects of another cloud
        changes = {**markers}
        if visibility != record.visibility:
            changes["visibility"] = visibility
        if not changes:
            return
        try:
            self._set_patiently(record.id, changes)
        except Forbidden:
            changes.pop("visibility", None)
            self._set_patiently(record.id, changes)
            self._warn(
                f"the target project may not make images {visibility}; the copy stays "
                f"{record.visibility}"
            )

    def _set_patiently(self, image_id: str, changes: dict) -> None:
        """``set_properties``, tried again after a transient error (see :data:`_FINISH_PAUSES`)."""
        for pause in _FINISH_PAUSES:
            try:
                self.driver.set_properties(image_id, set=changes)
                return
            except CloudError as exc:
                if pause is None or not exc.retryable:
                    raise
                time.sleep(pause)

    def _settle_clashes(self) -> None:
        """Replace or rename the old images of the same name, now that the copy is verified."""
        stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%d-%H%M%S")
        for old in self.clashes:
            if self.target.replace_only is not None and old.id not in self.target.replace_only:
                self._warn(
                    f"the old image {old.id} named {self.name!r} was kept: it is not one this "
                    f"copy may replace"
                )
                continue
            try:
                if self.target.policy is ConflictPolicy.REPLACE:
                    self.driver.delete(old.id)
                    self.result.replaced_image_ids.append(old.id)
                elif self.target.policy is ConflictPolicy.RENAME_OLD:
                    self.driver.set_properties(
                        old.id, set={"name": f"{self.name}.old-{stamp}", "visibility": "private"}
                    )
                    self.result.renamed_image_ids.append(old.id)
            except CloudError as exc:
                self._warn(f"the old image {old.id} named {self.name!r} was kept: {exc}")


def _file_chunks(path: Path, sha256: str | None = None) -> Iterator[bytes]:
    """A cache file's bytes, in chunks. With ``sha256``, they are hashed as they are read and the
    last chunk is held back until they hash to it, so a cloud that checks what it is given
    (``Capabilities.checked_writes``) never completes a write of other bytes."""
    hasher = hashlib.sha256() if sha256 else None
    with path.open("rb") as handle:
        held = handle.read(CHUNK_SIZE)
        while held:
            following = handle.read(CHUNK_SIZE)
            if hasher is not None:
                hasher.update(held)
                if not following and hasher.hexdigest() != sha256:
                    raise TargetVerificationFailed(
                        f"the converted image in the cache ({path.name}) no longer hashes to "
                        f"{sha256}; nothing was kept"
                    )
            yield held
            held = following
