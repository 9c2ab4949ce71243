"""The protocol every cloud kind implements, and the plain records it speaks in.

The replication engine, the inventory poller and the repos app talk to clouds only through
:class:`CloudDriver` and the dataclasses here, so a second cloud kind fits by adding one module
that subclasses :class:`CloudDriver` and registers itself with :func:`register_driver`; callers
obtain drivers with :func:`get_driver` and never name a concrete class.

Nothing in this package imports Django or reads settings: every value a driver needs arrives in
a :class:`RepoConnection` (docs/architecture.md "The layers").
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

from glint.clouds.addresses import EndpointPolicy
from glint.clouds.errors import InvalidRequest

__all__ = [
    "RepoConnection",
    "ImageRecord",
    "Capabilities",
    "ProjectInfo",
    "ImageReader",
    "CloudDriver",
    "register_driver",
    "get_driver",
    "driver_kinds",
]

#: Chunk size drivers aim for when streaming: large enough to keep per-chunk overhead (hashing
#: calls, queue hand-offs) negligible, small enough for bounded fan-out buffers.
CHUNK_SIZE = 1024 * 1024


# Records


@dataclasses.dataclass(frozen=True)
class RepoConnection:
    """Everything needed to reach one OpenStack project; secrets never appear in ``repr``.

    The connection record is per kind: this is OpenStack's; another kind defines its own beside
    its driver (``glint.clouds.ec2.Ec2Connection``), with a ``kind`` field that picks the driver.

    Exactly one way to authenticate must be given: ``username`` + ``password`` (scoped to
    ``project_name`` or ``project_id``) or ``application_credential_id`` +
    ``application_credential_secret`` (which carries its own project scope).

    Fields:
        kind: The cloud kind that selects the driver (``"openstack"``).
        auth_url: Identity endpoint, with or without the ``/v3`` suffix.
        region: Region whose image endpoint is used; None takes the catalog's only one.
        interface: Catalog interface (``public``, ``internal``, ``admin``).
        project_name, project_id: The project to scope to (password auth).
        project_domain_name, project_domain_id: The project's domain (password auth with a name).
        user_domain_name, user_domain_id: The user's domain, kept apart from the project's.
        username, password: Password auth.
        application_credential_id, application_credential_secret: Application-credential auth.
        ca_bundle: PEM text of the CA certificates that verify the cloud's TLS endpoints; None
            uses the system trust store.
        verify_tls: False disables certificate verification (a development escape hatch).
        connect_timeout, read_timeout: Seconds to wait for a connection, and between bytes.
        endpoint_policy: The addresses the driver may connect to (every endpoint, checked when
            it connects); None checks nothing, for callers that chose the cloud themselves
            (tests, the bench). Every connection Glint makes for a repo carries the deployment's
            policy (``Repo.connection``).
    """

    kind: str = "openstack"
    auth_url: str = ""
    region: str | None = None
    interface: str = "public"
    project_name: str | None = None
    project_id: str | None = None
    project_domain_name: str | None = None
    project_domain_id: str | None = None
    user_domain_name: str | None = None
    user_domain_id: str | None = None
    username: str | None = None
    password: str | None = dataclasses.field(default=None, repr=False)
    application_credential_id: str | None = None
    application_credential_secret: str | None = dataclasses.field(default=None, repr=False)
    ca_bundle: str | None = dataclasses.field(default=None, repr=False)
    verify_tls: bool = True
    connect_timeout: float = 10.0
    read_timeout: float = 120.0
    endpoint_policy: EndpointPolicy | None = None

    def __post_init__(self) -> None:
        if not self.auth_url:
            raise ValueError("auth_url is required")
        has_password = bool(self.username and self.password)
        has_appcred = bool(self.application_credential_id and self.application_credential_secret)
        if has_password == has_appcred:
            raise ValueError(
                "give either username and password or application_credential_id and "
                "application_credential_secret"
            )
        if has_password and not (self.project_name or self.project_id):
            raise ValueError("password authentication needs project_name or project_id")

    @property
    def uses_application_credential(self) -> bool:
        """True when this connection authenticates with an application credential."""
        return bool(self.application_credential_id)

    @classmethod
    def from_clouds_yaml(cls, entry: Mapping[str, Any], **overrides: Any) -> RepoConnection:
        """Build a connection from one ``clouds:`` entry of a standard ``clouds.yaml``.

        Reads the file named by ``cacert`` (its PEM text is kept, not the path, so the value can
        be stored and moved). ``domain_name``/``domain_id`` fill both the user's and the
        project's domain when the specific keys are absent, as openstacksdk does.

        Args:
            entry: The mapping under ``clouds.<name>``.
            **overrides: Field values that replace what the entry says (e.g. ``password``).

        Returns:
            The connection.

        Raises:
            ValueError: The entry is incomplete or uses an unsupported ``auth_type``.
        """
        auth = dict(entry.get("auth") or {})
        auth_type = (entry.get("auth_type") or "password").replace("-", "").replace("_", "")
        if auth_type not in (
            "password",
            "v3password",
            "applicationcredential",
            "v3applicationcredential",
        ):
            raise ValueError(f"unsupported auth_type {entry.get('auth_type')!r}")
        ca_bundle = None
        if entry.get("cacert"):
            ca_bundle = Path(entry["cacert"]).read_text()
        values: dict[str, Any] = {
            "kind": "openstack",
            "auth_url": auth.get("auth_url", ""),
            "region": entry.get("region_name"),
            "interface": entry.get("interface") or "public",
            "project_name": auth.get("project_name"),
            "project_id": auth.get("project_id"),
            "project_domain_name": auth.get("project_domain_name") or auth.get("domain_name"),
            "project_domain_id": auth.get("project_domain_id") or auth.get("domain_id"),
            "user_domain_name": auth.get("user_domain_name") or auth.get("domain_name"),
            "user_domain_id": auth.get("user_domain_id") or auth.get("domain_id"),
            "username": auth.get("username"),
            "password": auth.get("password"),
            "application_credential_id": auth.get("application_credential_id"),
            "application_credential_secret": auth.get("application_credential_secret"),
            "ca_bundle": ca_bundle,
            "verify_tls": entry.get("verify", True) is not False,
        }
        if "applicationcredential" in auth_type:
            for key in ("username", "password", "project_name", "project_id"):
                values[key] = None
        values.update(overrides)
        return cls(**values)


@dataclasses.dataclass(frozen=True)
class ImageRecord:
    """One image as the cloud describes it, in cloud-neutral terms.

    Fields:
        id: The cloud's id for the image (differs per cloud; never an identity across clouds).
        name: Image name (may be None or empty on some clouds).
        status: Lifecycle state (``queued``, ``saving``, ``importing``, ``active``, ...).
        size: Bytes of data, or None before data is uploaded.
        virtual_size: Size of the disk the image expands to, if the cloud reports it.
        disk_format, container_format: Declared formats.
        checksum: The md5 hex digest the cloud computed (the fallback identity hash).
        hash_algo, hash_value: The cloud's own content hash (Glance ``os_hash_algo``/``_value``).
        owner: Owning project id.
        visibility: ``public``, ``private``, ``shared`` or ``community``.
        protected: Whether the cloud refuses to delete the image.
        os_hidden: Glance's flag that keeps an image out of default listings.
        min_disk, min_ram: Boot requirements (GB, MB).
        tags: Image tags.
        properties: All non-core properties (custom metadata, provenance, ``os_glance_*``).
        created_at, updated_at: ISO 8601 timestamps as the cloud gave them.
        member_status: For an image shared with this project by another: ``pending`` or
            ``accepted``; None otherwise.
    """

    id: str
    name: str | None = None
    status: str = "queued"
    size: int | None = None
    virtual_size: int | None = None
    disk_format: str | None = None
    container_format: str | None = None
    checksum: str | None = None
    hash_algo: str | None = None
    hash_value: str | None = None
    owner: str | None = None
    visibility: str | None = None
    protected: bool = False
    os_hidden: bool = False
    min_disk: int = 0
    min_ram: int = 0
    tags: tuple[str, ...] = ()
    properties: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    created_at: str | None = None
    updated_at: str | None = None
    member_status: str | None = None


@dataclasses.dataclass(frozen=True)
class Capabilities:
    """What a cloud can do, so the engine picks a transfer strategy without trying and failing.

    Fields:
        import_methods: Server-side import methods offered (e.g. ``web-download``).
        hash_algo: The algorithm the cloud hashes uploads with, when it is knowable up front.
        can_stream_write: Whether data can be written from a stream of unknown length.
        can_range_read: Whether reads can resume at an offset.
        stores: Names of the storage backends, if the cloud has several.
        writes_in_one_step: Whether an image is created and written in one call
            (``create_and_write``), as an EC2 AMI needs its snapshot before it exists.
        verified_reads: Whether every read is checked against checksums the cloud keeps per
            block (EC2's snapshots), so an image with no whole-image hash (an AMI) can still
            be copied: a damaged block fails the read.
        disk_formats: The only disk formats the cloud stores, the first one preferred (EC2:
            ``raw``); empty: whatever format the image declares. The engine converts an image
            of another format to the first one on the way.
        checked_writes: Whether the cloud checks every part it stores against a checksum the
            driver computed from the bytes it was given, and refuses a mismatch (EBS direct's
            per-block SHA-256): a write that succeeded holds exactly those bytes, so a copy of
            proven bytes needs no read-back.
    """

    import_methods: tuple[str, ...] = ()
    hash_algo: str | None = None
    can_stream_write: bool = True
    can_range_read: bool = True
    stores: tuple[str, ...] = ()
    writes_in_one_step: bool = False
    verified_reads: bool = False
    disk_formats: tuple[str, ...] = ()
    checked_writes: bool = False


@dataclasses.dataclass(frozen=True)
class ProjectInfo:
    """Who a connection turned out to be, as the identity service confirmed it."""

    project_id: str
    project_name: str | None
    user_id: str | None = None


# Protocol


class ImageReader(abc.ABC):
    """A context-managed stream of one image's bytes, from ``offset`` to the end.

    Iterate it for ``bytes`` chunks of about :data:`CHUNK_SIZE`. Leaving the ``with`` block (or
    calling :meth:`close`) releases the connection even when the stream was not read to the end.

    Attributes:
        size: Size of the whole image in bytes (not of the remaining part), if known.
        offset: Byte position this stream starts at.
    """

    size: int | None
    offset: int

    @abc.abstractmethod
    def __iter__(self) -> Iterator[bytes]:
        """Yield the image's bytes in chunks."""

    def chunks_into(self, buffer: Callable[[], bytearray]) -> Iterator[bytes | memoryview]:
        """Yield the image's bytes as iterating does, but read into the buffers ``buffer()``
        gives (a view of each, never written again by the reader), where the driver can read
        that way: the caller then allocates nothing per chunk. This default iterates."""
        return iter(self)

    @abc.abstractmethod
    def close(self) -> None:
        """Release the underlying connection."""

    def interrupt(self) -> None:  # noqa: B027 - a reader of short requests needs nothing
        """Make a read blocked in another thread end now, with an error (a cancel while the
        cloud hangs). A reader that reads in short requests ends its next one at the read
        timeout: this default does nothing."""

    def __enter__(self) -> ImageReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class CloudDriver(abc.ABC):
    """One cloud project, as the replication engine and inventory see it.

    Every method raises a subclass of :class:`glint.clouds.errors.CloudError` for failures a
    person or the engine can act on. Drivers are not thread-safe unless they say so: give each
    worker thread its own.

    Attributes:
        kind: The :attr:`RepoConnection.kind` this driver serves.
        label: A human name for the kind.
    """

    kind: ClassVar[str]
    label: ClassVar[str]

    def __init__(self, connection: RepoConnection):
        self.connection = connection

    def __enter__(self) -> CloudDriver:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @abc.abstractmethod
    def check(self) -> ProjectInfo:
        """Authenticate and reach the image service once, to validate a new repo.

        Returns:
            The project the credentials are scoped to.

        Raises:
            AuthenticationFailed, ProjectNotFound, EndpointUnreachable, TLSVerificationFailed,
            CatalogError: The repo cannot be used as configured.
        """

    def project_id(self) -> str:
        """The project (account) the credentials act in, as owner ids name it.

        Unlike :meth:`check` this needs no fresh authentication: a copy asks it for every target
        to tell its own images from others', and a new Keystone token per target and job would
        cost the cloud's identity service far more than the copy's other calls. Drivers that can
        tell from what they already hold override this default.
        """
        return self.check().project_id

    @abc.abstractmethod
    def list_images(self, *, page_size: int | None = None) -> list[ImageRecord]:
        """List every image the project can see, each once (docs/architecture.md "Listing").

        That is what a plain listing returns plus what it leaves out: hidden images, community
        images of other projects and images shared with this project but not yet accepted.

        Args:
            page_size: Images per request, a hint for paginated APIs.

        Returns:
            The images, deduplicated by id.
        """

    @abc.abstractmethod
    def get_image(self, image_id: str) -> ImageRecord:
        """Fetch one image's record.

        Raises:
            NotFound: No such image is visible to the project.
        """

    @abc.abstractmethod
    def open_read(self, image_id: str, offset: int = 0) -> ImageReader:
        """Open the image's data for streaming, from byte ``offset`` on.

        Args:
            image_id: The image.
            offset: First byte to return; a reader interrupted after n bytes resumes with
                ``offset + n``.

        Returns:
            A reader to use as a context manager.

        Raises:
            NotFound: No such image.
            ImageNotReady: The image has no data.
            TransferInterrupted: Raised while iterating if the stream breaks off.
        """

    @abc.abstractmethod
    def create_image(self, fields: Mapping[str, Any]) -> ImageRecord:
        """Create an image record without data.

        Args:
            fields: Attributes as the cloud takes them: core fields (``name``, ``disk_format``,
                ``container_format``, ``visibility``, ``min_disk``, ``tags``, ...) and custom
                properties side by side, property values as strings.

        Returns:
            The new record (status ``queued``).

        Raises:
            InvalidRequest: A field value is refused. QuotaExceeded: No more images allowed.
        """

    @abc.abstractmethod
    def write_data(
        self, image_id: str, chunks: Iterable[bytes], size: int | None = None
    ) -> ImageRecord:
        """Stream data into an image created by :meth:`create_image`.

        The chunks are sent as they come: nothing is staged to disk or gathered in memory.

        Args:
            image_id: The image to fill.
            chunks: The data.
            size: The announced number of bytes, checked after the upload if given.

        Returns:
            The image's record after the upload (with the cloud's checksums).

        Raises:
            FormatRefused: The cloud inspected the data and it does not match ``disk_format``.
            QuotaExceeded: Storage quota exhausted. Conflict: The image already has data.
            SizeMismatch: ``size`` was given and a different number of bytes was sent.
        """

    def create_and_write(
        self,
        fields: Mapping[str, Any],
        chunks: Iterable[bytes],
        size: int | None = None,
        on_started: Callable[[str], None] | None = None,
    ) -> ImageRecord:
        """Create an image and stream its data; delete the record again if the write fails.

        Args:
            fields: As for :meth:`create_image`.
            chunks: As for :meth:`write_data`.
            size: As for :meth:`write_data`.
            on_started: Called with the id of what the cloud created, before a byte is
                written, so the caller can record it (a crash then leaves an id to clean up);
                :meth:`get_image` and :meth:`delete` accept that id. It is the image's id,
                or, for a cloud that creates the image only once its data is written (EC2),
                the id of what holds the data meanwhile (the snapshot). Raising from it
                deletes what was created and ends the write.

        Returns:
            The image's record after the upload.

        Raises:
            Whatever :meth:`create_image` or :meth:`write_data` raise.
        """
        record = self.create_image(fields)
        try:
            if on_started is not None:
                on_started(record.id)
            return self.write_data(record.id, chunks, size=size)
        except BaseException:
            try:
                self.delete(record.id)
            except Exception:  # the original failure matters more; a reconciler cleans up
                pass
            raise

    @abc.abstractmethod
    def delete(self, image_id: str) -> None:
        """Delete an image.

        Raises:
            NotFound: No such image. Forbidden: The image is protected or not ours.
        """

    @abc.abstractmethod
    def set_properties(
        self,
        image_id: str,
        set: Mapping[str, Any] | None = None,  # noqa: A002 - mirrors the cloud's verb
        remove: Iterable[str] = (),
    ) -> ImageRecord:
        """Add, replace and remove image properties in one request.

        Args:
            image_id: The image.
            set: Properties (or core fields such as ``name``) to give these values.
            remove: Property names to remove; names the image does not have are ignored.

        Returns:
            The updated record.
        """

    @abc.abstractmethod
    def capabilities(self) -> Capabilities:
        """Ask the cloud what it supports (import methods, stores)."""

    @abc.abstractmethod
    def import_web_download(self, image_id: str, url: str) -> None:
        """Ask the cloud to fetch an image's data from a URL itself (asynchronous).

        Poll :meth:`get_image` until the status is ``active`` (or the import is reported failed
        in the record's properties).

        Raises:
            InvalidRequest: The method is not enabled or the URL is refused.
        """

    def can_copy_from(self, source: Any) -> bool:
        """Whether this cloud can copy an image of the repo ``source`` (its connection record)
        itself, server-side (:meth:`copy_from`). Asks nothing of the cloud; the default: no."""
        return False

    def copy_from(
        self, source: Any, image_id: str, fields: Mapping[str, Any], size: int | None
    ) -> ImageRecord:
        """Have the cloud copy image ``image_id`` of the repo ``source`` (its connection
        record) into a new image with ``fields``, server-side (asynchronous, like
        :meth:`import_web_download`: poll :meth:`get_image` until ``active``).

        The source is named by its connection only, never its driver: a driver belongs to one
        thread. The target's own credentials must be allowed to read the source image.

        Args:
            source: The source repo's connection record.
            image_id: The image there.
            fields: As for :meth:`create_image`.
            size: The source image's size in bytes, if known.

        Returns:
            The new image, usually not ``active`` yet.

        Raises:
            InvalidRequest: This cloud cannot copy from that source (see :meth:`can_copy_from`).
            Forbidden, NotFound: The cloud refused: the source image is not shared with this
                account, or the credentials may not copy.
        """
        raise InvalidRequest(f"{self.label} does not copy images server-side")

    # An optional hook, not abstract: drivers with nothing to release keep this no-op.
    def close(self) -> None:  # noqa: B027
        """Release connections and temporary files. Safe to call more than once."""


# Registry

_DRIVERS: dict[str, type[CloudDriver]] = {}


def register_driver(cls: type[CloudDriver]) -> type[CloudDriver]:
    """Class decorator that makes a driver available to :func:`get_driver` under its kind.

    Raises:
        ValueError: Another class already serves that kind.
    """
    existing = _DRIVERS.get(cls.kind)
    if existing is not None and existing is not cls:
        raise ValueError(f"cloud kind {cls.kind!r} is already served by {existing.__qualname__}")
    _DRIVERS[cls.kind] = cls
    return cls


def get_driver(connection: Any) -> CloudDriver:
    """Return a driver for the connection's kind (any kind's connection record).

    Raises:
        ValueError: No driver serves ``connection.kind``.
    """
    try:
        cls = _DRIVERS[connection.kind]
    except KeyError:
        known = ", ".join(sorted(_DRIVERS)) or "none"
        raise ValueError(f"unknown cloud kind {connection.kind!r} (known: {known})") from None
    return cls(connection)


def driver_kinds() -> list[str]:
    """The cloud kinds that have a registered driver."""
    return sorted(_DRIVERS)
