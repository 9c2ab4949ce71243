"""Typed errors that every cloud driver raises.

Callers (the replication engine, the repos app, the CLI) decide what to do from the class or its
stable ``code`` alone: retry a transient failure, tell a person to fix a password, mark an image
unusable. They never parse a cloud's error text. Messages are written for the person who has to
act on them and never contain secrets: drivers build them from URLs, ids and names only.

The translation from a particular cloud's exceptions and HTTP statuses lives in that cloud's
driver module, in one function (``openstack.translate_error`` for OpenStack).

:class:`CloudError` sits under :class:`glint.errors.GlintError`, the root of every Glint error:
that module is the only one above the drivers that they import (it imports nothing itself).
"""

from __future__ import annotations

from glint.errors import GlintError

__all__ = [
    "CloudError",
    "AuthenticationFailed",
    "ProjectNotFound",
    "EndpointUnreachable",
    "EndpointRefused",
    "CatalogEndpointRefused",
    "TLSVerificationFailed",
    "CatalogError",
    "QuotaExceeded",
    "NotFound",
    "Conflict",
    "Forbidden",
    "FormatRefused",
    "ImageNotReady",
    "InvalidRequest",
    "TransientError",
    "ServiceUnavailable",
    "TransferInterrupted",
    "SizeMismatch",
]


class CloudError(GlintError):
    """Base of every error a cloud driver raises on purpose.

    Attributes:
        code, retryable, message: As every :class:`~glint.errors.GlintError`.
        status: The HTTP status the cloud answered with, if there was one.
    """

    code = "cloud_error"

    def __init__(self, message: str, *, status: int | None = None):
        super().__init__(message)
        self.status = status


class AuthenticationFailed(CloudError):
    """The identity service rejected the credentials (wrong password, revoked app credential)."""

    code = "authentication_failed"


class ProjectNotFound(CloudError):
    """The credentials are valid but the project does not exist or the user has no role on it."""

    code = "project_not_found"


class EndpointUnreachable(CloudError):
    """No connection could be made or kept (refused, DNS failure, timeout); names the URL."""

    code = "endpoint_unreachable"
    retryable = True


class EndpointRefused(CloudError):
    """The endpoint's address is one Glint never connects to for a cloud (loopback, metadata,
    link-local), or a private one an admin has not allowed. Nothing was sent to it.

    Attributes:
        url: Where the connection would have gone (scheme, host and port).
        reason: Which address, and why it is refused.
    """

    code = "endpoint_refused"

    def __init__(self, message: str, *, url: str = "", reason: str = "", status: int | None = None):
        super().__init__(message, status=status)
        self.url, self.reason = url, reason


class CatalogEndpointRefused(EndpointRefused):
    """An endpoint the service catalog names (e.g. the image service) is refused."""

    code = "catalog_endpoint_refused"


class TLSVerificationFailed(CloudError):
    """The server's certificate does not verify against the configured CA bundle."""

    code = "tls_verification_failed"


class CatalogError(CloudError):
    """The service catalog has no image endpoint for the configured region and interface."""

    code = "catalog_error"


class QuotaExceeded(CloudError):
    """The cloud refused to store more (image count or storage quota)."""

    code = "quota_exceeded"


class NotFound(CloudError):
    """The image does not exist or is not visible to this project."""

    code = "not_found"


class Conflict(CloudError):
    """The request conflicts with the image's state (e.g. data already uploaded, id taken)."""

    code = "conflict"


class Forbidden(CloudError):
    """The project may see the image but not do this to it (e.g. delete a protected image)."""

    code = "forbidden"


class FormatRefused(CloudError):
    """The cloud inspected the image data and refused it: it does not match the declared format."""

    code = "format_refused"


class ImageNotReady(CloudError):
    """The image has no data to read yet (or any more): its status is not active."""

    code = "image_not_ready"


class InvalidRequest(CloudError):
    """The cloud rejected the request as malformed (bad property value, unknown format, ...)."""

    code = "invalid_request"


class TransientError(CloudError):
    """A failure that is expected to go away: the engine retries these with back-off."""

    code = "transient_error"
    retryable = True


class ServiceUnavailable(TransientError):
    """The service answered with a 5xx status (overloaded, restarting, a backend down)."""

    code = "service_unavailable"


class TransferInterrupted(TransientError):
    """A data stream broke off mid-way; a read can resume from the last byte received."""

    code = "transfer_interrupted"


class SizeMismatch(CloudError):
    """The number of bytes written differs from the size the caller announced."""

    code = "size_mismatch"
