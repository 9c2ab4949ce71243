"""The plain values a copy is described and reported with: source, targets and options going
in; each target's state, outcome and result, and the observer's hooks, coming out.

The jobs app builds :class:`CopySource` / :class:`CopyTarget` from its rows, passes a
:class:`CopyObserver` to hear about progress, and stores what :class:`CopyResult` says. None of
these touch a database: the engine stays testable without Django.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from glint.clouds import CloudDriver, CloudError, ImageRecord
from glint.replication.errors import ReplicationError
from glint.replication.policies import ConflictPolicy

if TYPE_CHECKING:
    from glint.replication.properties import PropertyRules

__all__ = [
    "CopySource",
    "CopyTarget",
    "CopyOptions",
    "TargetState",
    "TargetOutcome",
    "TargetResult",
    "CopyResult",
    "CopyObserver",
    "Failure",
]

#: What a failed target carries: the engine's own error or the cloud's, both with ``code``,
#: ``retryable`` and a message safe to show.
Failure = ReplicationError | CloudError


@dataclasses.dataclass(frozen=True)
class CopySource:
    """The image to copy.

    Fields:
        driver: A driver for the source repo, used only by the engine's reader thread.
        image_id: The source image's id in that repo.
        repo_ref: How provenance names the source repo (``glint_source_repo``), e.g. the
            repo's primary key as a string.
        pull_url: A web link the same bytes can be fetched from. A target cloud that offers
            the ``web-download`` import fetches them itself (nothing passes through Glint) and
            the copy is verified afterwards against the source record's hash, which must then
            be set; a cloud without it, or one that refuses the link when asked, is streamed
            to as usual. The caller offers only links that passed its own address checks
            and carry no credentials (the cloud keeps the link in its import task).
        trusted_stream: The source has no stored hash and its bytes are copied anyway: they
            come straight from the person who owns them (an upload without a declared
            checksum), so there is nothing to check them *against*. Each target is still
            verified against the digests of the bytes that were read. Without this flag the
            engine refuses a source without a hash.
        inspect_head: Judges the first bytes of the source (up to 64 KiB) before any target
            is touched: returns why the image must not be copied (e.g. a qcow2 that names a
            backing file), or None. The bytes come from the cache when it holds the image,
            else from one short read of the source. Leave it None for a source that can be
            read only once (an upload's stream: its caller inspected the head already).
        read_once: The source's bytes cannot be read again (an upload's stream): the whole
            stream is spooled into the cache, where a retry finds it. Any other source is
            spooled only from where a target falls behind, so a copy where every target keeps
            up writes nothing to disk and leaves no cache entry (a retry reads it again).
        kept_by_caller: With ``read_once``: the caller writes the whole stream into the cache
            itself (an upload's part), so the engine spools only from where a target falls
            behind, and the disk is not written twice. Such a stream is never read again
            during the copy: the clouds' hashes cannot stand in for Glint's own.
    """

    driver: CloudDriver
    image_id: str
    repo_ref: str
    pull_url: str | None = None
    trusted_stream: bool = False
    inspect_head: Callable[[bytes], str | None] | None = None
    read_once: bool = False
    kept_by_caller: bool = False


@dataclasses.dataclass(frozen=True)
class CopyTarget:
    """One repo to copy to.

    Fields:
        key: The caller's name for this target; results, progress and events use it.
        driver: A driver for the target repo, used only by this target's threads (drivers are
            not thread-safe, so never share one between targets or with the source).
        visibility: The visibility the copy gets once verified; None takes the source's.
            If the target project may not publish, the copy stays private with a warning.
        name: The copy's name; None takes the source's.
        policy: What to do when the target holds the name with other content.
        previous_image_id: The image an earlier attempt of this target created (the job
            records it before a byte is written). If it is an active, verified copy of the
            source, the target is done without writing; otherwise the engine deletes it first,
            so a retry never leaves a duplicate or a half-written image behind.
        disk_format: The disk format the copy is stored in; None: the source's. Another one is
            converted to on the way, if the target cloud stores it (a cloud that stores only
            some formats gets its preferred one instead, as with None).
        replace_only: The only old images of the name that ``policy`` may replace or rename;
            None: any of the target's project. A subscription gives the copies it made, so a
            same-name image someone else made is never deleted.
    """

    key: str
    driver: CloudDriver
    visibility: str | None = None
    name: str | None = None
    policy: ConflictPolicy = ConflictPolicy.REPORT
    previous_image_id: str | None = None
    disk_format: str | None = None
    replace_only: frozenset[str] | None = None


@dataclasses.dataclass(frozen=True)
class CopyOptions:
    """Tuning knobs; the defaults are what production uses.

    Fields:
        lag_limit_bytes: How far (in bytes) a target may fall behind the source in memory.
            Past it, that target continues from the cache spool on disk and the source and
            the other targets carry on; without a cache the reader waits for it instead.
        verify_timeout: Seconds to wait for a target image to turn ``active`` after upload.
        pull_timeout: Seconds a target cloud may take to fetch a pull link itself (it reads
            the whole image in that time, so this is far longer than ``verify_timeout``).
        poll_interval: First pause between those polls (doubles up to 5 s).
        read_attempts: How often the source read is resumed (at the byte it broke off) before
            the copy fails.
        property_rules: Which properties travel with the copy (None: the defaults).
    """

    lag_limit_bytes: int = 8 * 1024 * 1024
    verify_timeout: float = 600.0
    pull_timeout: float = 6 * 3600.0
    poll_interval: float = 0.2
    read_attempts: int = 3
    property_rules: PropertyRules | None = None


class TargetState(str, enum.Enum):
    """A target's progress through a copy (``docs/architecture.md``, per-target states)."""

    PENDING = "pending"
    WRITING = "writing"
    VERIFYING = "verifying"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


class TargetOutcome(str, enum.Enum):
    """Why a target ended in its final state, for the person reading the job.

    Members:
        COPIED: Bytes written and verified (state done).
        PULLED: The target cloud fetched the bytes from :attr:`CopySource.pull_url` itself,
            or copied the source image server-side (EC2 ``CopyImage``); verified against the
            source's hash (state done).
        EXISTS: The target already held a verified copy; nothing written (state done).
        SKIPPED: A name clash and policy "skip"; nothing written (state done).
        FAILED: See :attr:`TargetResult.error` (state failed).
        CANCELLED: The copy was cancelled (state cancelled).
    """

    COPIED = "copied"
    PULLED = "pulled"
    EXISTS = "exists"
    SKIPPED = "skipped"
    FAILED = "failed"
    CANCELLED = "cancelled"


@dataclasses.dataclass
class TargetResult:
    """How one target ended.

    Fields:
        key: The target's :attr:`CopyTarget.key`.
        state: DONE, FAILED or CANCELLED.
        outcome: Why.
        image_id: The verified copy (done) or None.
        error: What went wrong (failed / cancelled).
        warnings: Things a person should know that did not fail the target (a dropped
            ``kernel_id``, a visibility the project may not set, an old image left behind).
        replaced_image_ids: Old images deleted (policy replace).
        renamed_image_ids: Old images renamed (policy rename-old).
        bytes_written: Bytes sent to the target.
        spooled: Whether the target fell behind and continued from the cache spool.
    """

    key: str
    state: TargetState = TargetState.PENDING
    outcome: TargetOutcome | None = None
    image_id: str | None = None
    error: Failure | None = None
    warnings: list[str] = dataclasses.field(default_factory=list)
    replaced_image_ids: list[str] = dataclasses.field(default_factory=list)
    renamed_image_ids: list[str] = dataclasses.field(default_factory=list)
    bytes_written: int = 0
    spooled: bool = False


@dataclasses.dataclass
class CopyResult:
    """How a whole copy ended.

    Fields:
        source: The source image's record as read before copying.
        sha256: The sha256 of the bytes read (None if the read did not complete).
        hashes: Every digest computed while streaming, by algorithm name.
        targets: One result per target key, in the order the targets were given.
        spooled_bytes: Bytes written into the cache spool (0 when every target kept up with
            a source that can be read again).
    """

    source: ImageRecord | None
    sha256: str | None
    hashes: Mapping[str, str]
    targets: dict[str, TargetResult]
    spooled_bytes: int = 0

    @property
    def ok(self) -> bool:
        """True when every target is done."""
        return all(t.state is TargetState.DONE for t in self.targets.values())


class CopyObserver:
    """Hooks the jobs app overrides to record a copy as it happens.

    Every hook is called in the thread that called :func:`~glint.replication.copy_image`
    (the engine's threads post events to it), so an implementation may use a database
    connection that belongs to that thread. Keep hooks quick: while one runs, others wait.
    """

    def image_created(self, target_key: str, image_id: str) -> None:
        """A target image exists and no byte has been written yet: record its id now.

        For a cloud that writes in one step this is first the id of what holds the data while
        it is written (EC2: the snapshot), then, once written, the image's own id.

        Raising here fails the target and deletes the image, so a copy whose id could not be
        recorded never writes.
        """

    def state_changed(self, target_key: str, state: TargetState) -> None:
        """A target moved to another :class:`TargetState`."""

    def progress(self, target_key: str | None, code: str, done: int, total: int | None) -> None:
        """Bytes moved so far.

        Args:
            target_key: The target, or None for the source read.
            code: ``copy.reading`` (the source), ``copy.writing`` (a target),
                ``copy.converting`` (a target that stores another disk format: the source's
                bytes converted so far, before its ``copy.writing`` of the conversion) or
                ``copy.pulling`` (a target cloud fetching the pull link; ``done`` stays 0,
                as the cloud does not say how far it got).
            done: Bytes done.
            total: Bytes in all, if known.
        """

    def warning(self, target_key: str | None, message: str) -> None:
        """Something a person should know that does not fail the target."""
