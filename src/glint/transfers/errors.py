"""Errors of uploads, web-link fetches and downloads.

They subclass the drivers' :class:`~glint.clouds.CloudError` because an upload's bytes reach the
replication engine as the "source" of a copy: whatever breaks the incoming stream fails the
targets with this message and ``code``, shown to the person as it is (never a secret: URLs in
messages are always redacted).
"""

from __future__ import annotations

from glint.replication import CloudError

__all__ = [
    "ChecksumMismatch",
    "FetchFailed",
    "NotInCache",
    "SizeMismatch",
    "TooLarge",
    "TransferError",
    "UploadInterrupted",
    "UrlRefused",
]


class TransferError(CloudError):
    code = "transfer_error"


class UrlRefused(TransferError):
    """The URL may not be fetched: scheme, address or credentials. Nothing was connected to."""

    code = "url_refused"


class FetchFailed(TransferError):
    """The server could not be reached, answered with an error, or stalled."""

    code = "fetch_failed"
    retryable = True


class TooLarge(TransferError):
    """More bytes than the configured limit."""

    code = "too_large"


class SizeMismatch(TransferError):
    """The server announces another size than the one the link came with (a list's hv:size)."""

    code = "size_mismatch"


class ChecksumMismatch(TransferError):
    """The bytes do not hash to the expected checksum."""

    code = "checksum_mismatch"

    @classmethod
    def of(cls, algo: str, declared: str, computed: str) -> ChecksumMismatch:
        """The mismatch, naming both values (the person compares them with their own)."""
        return cls(
            f"the checksum does not match: declared {algo}:{declared}, but the bytes "
            f"received hash to {algo}:{computed}; nothing was kept"
        )


class UploadInterrupted(TransferError):
    """The client stopped sending before the announced end of the upload."""

    code = "upload_interrupted"


class NotInCache(TransferError):
    """A retry needs the upload's bytes, and the cache no longer holds them."""

    code = "not_in_cache"
