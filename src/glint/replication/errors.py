"""Errors the replication engine reports, each with a stable ``code`` and a ``retryable`` flag.

They sit, like :class:`glint.clouds.CloudError`, under :class:`glint.errors.GlintError` (same
attributes, a message safe to show a person), so the jobs app stores and retries a target's
failure from either family without telling them apart. A target that fails because of a cloud
error keeps that error as is.
"""

from __future__ import annotations

from glint.errors import GlintError

__all__ = [
    "ReplicationError",
    "SourceNotUsable",
    "SourceUnsafe",
    "SourceVerificationFailed",
    "TargetVerificationFailed",
    "VerificationTimeout",
    "PullFailed",
    "NameConflict",
    "CopyCancelled",
    "CacheFull",
    "ImageProtected",
    "NotOwned",
    "UnexpectedError",
]


class ReplicationError(GlintError):
    """Base of the engine's own failures (``code``, ``retryable``, ``message``: as every
    :class:`~glint.errors.GlintError`; ``retryable`` says whether the same copy may succeed if
    tried again later)."""

    code = "replication_error"


class SourceNotUsable(ReplicationError):
    """The source image cannot be copied: not active, or without any hash to verify it by."""

    code = "source_not_usable"


class SourceUnsafe(SourceNotUsable):
    """The source's own bytes say it must not be copied (:attr:`CopySource.inspect_head`):
    nothing was created at any target; or a cloud's own fetch of a link brought such bytes (its
    image is deleted)."""

    code = "unsafe_image"


class SourceVerificationFailed(ReplicationError):
    """The bytes read from the source do not match the source's own stored hash or size.

    Every target of the copy fails with this error and no target keeps a copy: the source is
    corrupt (or changed while it was read), and copying it would spread the damage.

    Attributes:
        algo, computed, stored: When a hash differs: its algorithm, the digest of the bytes
            read, and the one the source declared (empty for a size that differs). An upload
            tells the person from them that *their* checksum does not match.
    """

    code = "source_verification_failed"

    def __init__(self, message: str, *, algo: str = "", computed: str = "", stored: str = ""):
        super().__init__(message)
        self.algo, self.computed, self.stored = algo, computed, stored


class TargetVerificationFailed(ReplicationError):
    """A target's stored copy does not match what was sent (its own hash, md5 or size)."""

    code = "target_verification_failed"
    retryable = True


class VerificationTimeout(ReplicationError):
    """A target image did not become ``active`` within the bounded wait after its upload."""

    code = "verification_timeout"
    retryable = True


class PullFailed(ReplicationError):
    """A target cloud accepted to fetch the pull link itself, then failed to (its import task
    failed: the link broke, timed out or was refused by the cloud's network). The retry
    streams the bytes through Glint instead."""

    code = "pull_failed"
    retryable = True


class NameConflict(ReplicationError):
    """The target already holds an image of the same name with other content, and the
    conflict policy is "report": nothing was written."""

    code = "name_conflict"


class CopyCancelled(ReplicationError):
    """The copy was cancelled; whatever it had created at the targets was deleted."""

    code = "cancelled"


class CacheFull(ReplicationError):
    """The content cache cannot make room for an image (quota or free disk space)."""

    code = "cache_full"
    retryable = True


class ImageProtected(ReplicationError):
    """The image to delete turned out to be protected when the cloud was asked again."""

    code = "protected"


class NotOwned(ReplicationError):
    """The image to delete turned out to belong to another project."""

    code = "not_owned"


class UnexpectedError(ReplicationError):
    """A bug or an unforeseen failure; the details go to the log, not to people (they may
    hold anything, and a message shown in the API must be safe): its message is
    :func:`glint.errors.internal_error_message`."""

    code = "internal_error"
