"""The ``ec2`` cloud kind: one AWS account and region, images as AMIs on EBS snapshots.

EC2 stores raw disks. Glint writes one through the EBS direct APIs (StartSnapshot, one
PutSnapshotBlock per 512 KiB block with its SHA-256, several in flight, all-zero blocks never
sent since unwritten blocks read as zeros, CompleteSnapshot with the changed-block count) and
registers an HVM AMI whose root device is that snapshot. It reads one back through
ListSnapshotBlocks + GetSnapshotBlock, zeros for the blocks not listed, every block checked
against its checksum. Glint's properties live in the AMI's tags (docs/architecture.md "The EC2
kind").
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import re
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import botocore.config
import botocore.exceptions
import botocore.httpsession
import botocore.loaders
import botocore.session
import urllib3.exceptions

from glint.clouds import errors
from glint.clouds.addresses import CheckedPoolManager, EndpointPolicy
from glint.clouds.base import (
    Capabilities,
    CloudDriver,
    ImageReader,
    ImageRecord,
    ProjectInfo,
    register_driver,
)

__all__ = ["Ec2Connection", "Ec2Driver", "BLOCK_SIZE"]

#: The EBS direct APIs' block size (StartSnapshot's BlockSize).
BLOCK_SIZE = 512 * 1024
GIB = 1024**3
#: Blocks sent at once: EBS direct throughput grows with parallel requests.
BLOCKS_IN_FLIGHT = 8
ROOT_DEVICE = "/dev/xvda"
_ZERO_BLOCK = bytes(BLOCK_SIZE)
# Tag of the snapshots Glint made for an AMI, so delete removes those and no others.
SNAPSHOT_TAG = "glint_snapshot_of"
# Tag of a snapshot Glint is still writing (value: the image's name), set by StartSnapshot itself
# and removed once its AMI is registered and tagged: a write a crash cut off keeps it, so the
# listing shows it as a stuck image and the job or the reconciler deletes it.
WRITING_TAG = "glint_writing"
# Tag CopyImage puts on the new AMI and on the snapshot EC2 makes for it (one random value per
# copy), so delete removes that snapshot too: its id is not known when the copy is asked for.
COPY_TAG = "glint_copy"
# EC2 AMI states as the engine's statuses: a copy under way is being written, a failed one is
# refused data (anything else, e.g. "available", is mapped below or kept).
_AMI_STATES = {"available": "active", "pending": "saving", "failed": "killed", "error": "killed"}
# Prefix of Glint's provenance fields, which a snapshot carries from StartSnapshot on.
_GLINT_PREFIX = "glint_"
# Tag of the image's size in bytes: a snapshot is whole GiB, the image it holds need not be.
SIZE_TAG = "glint_size"
# EC2's display name (the tag consoles show as an AMI's Name) is the image's name in Glint. An
# AMI's registered name can never change and is unique in its account and region, so it cannot
# carry a rename, nor a second image of one name (the replace and rename-old policies write the
# new copy before the old one goes): those get a registered name of their own (_ami_name).
NAME_TAG = "Name"
# What EC2 allows in a registered AMI name, and its length bounds.
_AMI_NAME_REFUSED = re.compile(r"[^A-Za-z0-9()\[\] ./\-'@_]")
_AMI_NAME_LENGTH = (3, 128)
# botocore's parsed service models (EC2's is megabytes of JSON), shared by every driver's
# session: each poll and job opens a driver, and loading them again cost ~0.15 CPU-s a time.
# A loader only caches what it read, so sharing it shares no credentials.
_MODELS = botocore.loaders.create_loader()


@dataclasses.dataclass(frozen=True)
class Ec2Connection:
    """One AWS account and region; secrets never appear in ``repr``.

    Fields:
        kind: Always ``"ec2"``.
        region: The region every client names (required: Glint never guesses one).
        access_key_id, secret_access_key: The IAM key.
        session_token: For temporary credentials.
        role_arn: A role to assume with STS before anything else, if given.
        endpoint_url: For EC2-compatible clouds and the local peer; None is AWS's own.
        connect_timeout, read_timeout: Seconds.
        endpoint_policy: The addresses the driver may connect to (EC2, EBS and STS, checked
            when each connection opens); None checks nothing, as for ``RepoConnection``.
    """

    region: str
    access_key_id: str
    secret_access_key: str = dataclasses.field(repr=False)
    session_token: str | None = dataclasses.field(default=None, repr=False)
    role_arn: str | None = None
    endpoint_url: str | None = None
    connect_timeout: float = 10.0
    read_timeout: float = 120.0
    endpoint_policy: EndpointPolicy | None = None
    kind: str = "ec2"

    def __post_init__(self) -> None:
        if not self.region:
            raise ValueError("region is required")
        if not (self.access_key_id and self.secret_access_key):
            raise ValueError("access_key_id and secret_access_key are required")


def _ami_name(name: str, suffix: str = "") -> str:
    """``name`` as EC2 accepts an AMI's registered name: its characters outside EC2's set as
    ``-``, cut to leave room for ``suffix``, at least 3 characters."""
    shortest, longest = _AMI_NAME_LENGTH
    fitted = _AMI_NAME_REFUSED.sub("-", name)[: longest - len(suffix)] + suffix
    return fitted.ljust(shortest, "-")


def _error(err: Exception, action: str) -> errors.CloudError:
    """The typed error for an AWS failure, with what a person can do about it."""
    if isinstance(err, botocore.exceptions.EndpointConnectionError):
        unresolved = isinstance(err.kwargs.get("error"), urllib3.exceptions.NameResolutionError)
        return errors.EndpointUnreachable(
            f"{action}: cannot reach {err.kwargs.get('endpoint_url')}"
            + (": its host name does not resolve" if unresolved else "")
        )
    if not isinstance(err, botocore.exceptions.ClientError):
        return errors.TransferInterrupted(f"{action}: {err}")
    info = err.response.get("Error", {})
    code, message = info.get("Code", ""), info.get("Message", "")
    status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    if code in (
        "AuthFailure",
        "InvalidClientTokenId",
        "SignatureDoesNotMatch",
        "UnrecognizedClientException",
    ):
        return errors.AuthenticationFailed(
            f"{action}: AWS refused the access key ({code}); check the key id and secret",
            status=status,
        )
    if code in ("UnauthorizedOperation", "AccessDenied", "AccessDeniedException"):
        return errors.Forbidden(
            f"{action}: the IAM policy does not allow {action}; grant it to this key",
            status=status,
        )
    if code == "InvalidAMIName.Duplicate":
        return errors.Conflict(f"{action}: {message}", status=status)
    # Before the quota test: throttling codes end in "LimitExceeded" too.
    if status and status >= 500 or code in ("RequestThrottledException", "RequestLimitExceeded"):
        return errors.ServiceUnavailable(f"{action}: {message or code}", status=status)
    if code.endswith("LimitExceeded") or code == "ServiceQuotaExceededException":
        return errors.QuotaExceeded(
            f"{action}: {message or code}; raise the quota or remove old snapshots and AMIs",
            status=status,
        )
    if code.endswith(".NotFound") or code == "ResourceNotFoundException":
        return errors.NotFound(f"{action}: {message or code}", status=status)
    return errors.InvalidRequest(f"{action}: {code}: {message}", status=status)


def _check_connections(client, policy: EndpointPolicy | None):
    """``client`` with every connection it opens going through ``policy``, pinned to the
    checked address like the OpenStack driver's, and never through a proxy (a proxy would
    resolve the name itself, past the check).

    boto3 has no public way to give a client its HTTP session, so this swaps the pool manager
    of the one botocore made (``URLLib3Session``) before it has opened anything; botocore's
    own connection classes stay (:class:`CheckedPoolManager` wraps them).
    """
    if policy is None:
        return client
    client.meta.events.register_first("needs-retry", _refusal_is_final)
    http = client._endpoint.http_session
    http._proxy_config = botocore.httpsession.ProxyConfiguration()
    # The settings of the manager botocore made, its SSL context included (a new one would
    # load the CA bundle again: milliseconds for each of a job's clients).
    http._manager = CheckedPoolManager(policy, **http._manager.connection_pool_kw)
    http._manager.pool_classes_by_scheme = http._pool_classes_by_scheme
    return client


def _refusal_is_final(caught_exception=None, **kwargs) -> None:
    """End the call with the policy's refusal (botocore would retry it as a connection error,
    looking the name up again each time): an address the policy refuses stays refused."""
    refused = getattr(caught_exception, "kwargs", {}).get("error")
    if isinstance(refused, errors.EndpointRefused):
        raise refused


def _tag_map(resource: Mapping[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in resource.get("Tags", [])}


def _whole(tag: str | None) -> int:
    """A tag's whole number; 0 for none or one that is not a number (someone else's tag)."""
    try:
        return max(0, int(tag or 0))
    except ValueError:
        return 0


def _boto_session(**keys: str | None) -> boto3.session.Session:
    """A session of its own for these keys, on the shared service models."""
    core = botocore.session.get_session()
    core.register_component("data_loader", _MODELS)
    return boto3.session.Session(botocore_session=core, **keys)


def _checksum(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def _blocks(chunks: Iterable[bytes]) -> Iterator[tuple[int, memoryview | None]]:
    """(index, data) of each 512 KiB block, data None for an all-zero block; the last block is
    padded with zeros. ``data`` is a view that holds only until the next block is asked for:
    the caller copies what it keeps.

    A block that lies whole inside a chunk (the usual case: chunks are whole MiB) is tested for
    zeros in place and given as a view of the chunk; only a block that straddles chunks is
    assembled. (Comparing a memoryview with the zero block by ``==`` costs 10 to 100 times what
    the ``startswith`` test does.)
    """
    pending = bytearray()
    index = 0
    for chunk in chunks:
        view = memoryview(chunk)
        start = 0
        if pending:
            start = min(BLOCK_SIZE - len(pending), len(view))
            pending += view[:start]
            if len(pending) < BLOCK_SIZE:
                continue
            yield index, None if pending == _ZERO_BLOCK else memoryview(pending)
            pending = bytearray()  # not clear(): a bytearray with a live view cannot resize
            index += 1
        while len(view) - start >= BLOCK_SIZE:
            block = view[start : start + BLOCK_SIZE]
            # bytes.startswith compares buffers with memcmp; == on a memoryview goes item by item.
            yield index, None if _ZERO_BLOCK.startswith(block) else block
            start += BLOCK_SIZE
            index += 1
        pending += view[start:]
    if pending:
        pending += bytes(BLOCK_SIZE - len(pending))
        yield index, None if pending == _ZERO_BLOCK else memoryview(pending)


@register_driver
class Ec2Driver(CloudDriver):
    """An AWS account's AMIs in one region."""

    kind = "ec2"
    label = "Amazon EC2"

    def __init__(self, connection: Ec2Connection):
        super().__init__(connection)
        self._session = self._open_session()
        config = botocore.config.Config(
            connect_timeout=connection.connect_timeout,
            read_timeout=connection.read_timeout,
            retries={"max_attempts": 3, "mode": "standard"},
            max_pool_connections=BLOCKS_IN_FLIGHT * 2,
            # Names Glint in CloudTrail, and is cheap: botocore rebuilds its own default header,
            # dozens of components each sanitized, for every one of a copy's thousands of calls.
            user_agent="glint",
        )
        self.ec2 = self._client(self._session, "ec2", config)
        self.ebs = self._client(self._session, "ebs", config)

    def _client(self, session: boto3.session.Session, service: str, config=None):
        """A client of ``service`` at the connection's endpoint, through its endpoint policy."""
        client = session.client(service, endpoint_url=self.connection.endpoint_url, config=config)
        return _check_connections(client, self.connection.endpoint_policy)

    def _open_session(self) -> boto3.session.Session:
        c = self.connection
        session = _boto_session(
            aws_access_key_id=c.access_key_id,
            aws_secret_access_key=c.secret_access_key,
            aws_session_token=c.session_token,
            region_name=c.region,
        )
        if not c.role_arn:
            return session
        sts = self._client(session, "sts")
        assumed = self._call(
            sts, "assume_role", "sts:AssumeRole", RoleArn=c.role_arn, RoleSessionName="glint"
        )["Credentials"]
        return _boto_session(
            aws_access_key_id=assumed["AccessKeyId"],
            aws_secret_access_key=assumed["SecretAccessKey"],
            aws_session_token=assumed["SessionToken"],
            region_name=c.region,
        )

    def _call(self, client, operation: str, action: str, **params) -> dict:
        try:
            return getattr(client, operation)(**params)
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as err:
            raise _error(err, action) from err

    # Reading the account

    _sts_client = None

    def _sts(self):
        """The STS client, made on first use and kept (a client costs milliseconds to make)."""
        if self._sts_client is None:
            self._sts_client = self._client(self._session, "sts")
        return self._sts_client

    def check(self) -> ProjectInfo:
        who = self._call(self._sts(), "get_caller_identity", "sts:GetCallerIdentity")
        self._call(self.ec2, "describe_images", "ec2:DescribeImages", Owners=["self"], MaxResults=5)
        return ProjectInfo(project_id=who["Account"], project_name=None, user_id=who.get("Arn"))

    def project_id(self) -> str:
        return self._account()

    def list_images(self, *, page_size: int | None = None) -> list[ImageRecord]:
        """The account's own AMIs and those shared with it, never the public catalogue."""
        in_flight = self._writes_in_flight()
        seen: dict[str, ImageRecord] = {}
        roots = set()
        for query in ({"Owners": ["self"]}, {"ExecutableUsers": ["self"]}):
            images = self._call(self.ec2, "describe_images", "ec2:DescribeImages", **query)
            for image in images["Images"]:
                seen.setdefault(image["ImageId"], self._record(image, in_flight))
                roots.add((self._root_snapshot(image) or ("",))[0])
        # A write cut off before its AMI was registered is its snapshot alone.
        unregistered = [s for i, s in in_flight.items() if i not in roots]
        return list(seen.values()) + [self._snapshot_record(s) for s in unregistered]

    def _writes_in_flight(self) -> dict[str, Mapping[str, Any]]:
        """Glint's snapshots whose write has not finished (:data:`WRITING_TAG`), by id."""
        snapshots = self._call(
            self.ec2,
            "describe_snapshots",
            "ec2:DescribeSnapshots",
            OwnerIds=["self"],
            Filters=[{"Name": "tag-key", "Values": [WRITING_TAG]}],
        )["Snapshots"]
        return {s["SnapshotId"]: s for s in snapshots}

    def _snapshot(self, snapshot_id: str) -> Mapping[str, Any]:
        snapshots = self._call(
            self.ec2, "describe_snapshots", "ec2:DescribeSnapshots", SnapshotIds=[snapshot_id]
        )["Snapshots"]
        if not snapshots:
            raise errors.NotFound(f"no snapshot {snapshot_id}")
        return snapshots[0]

    def _ami(self, image_id: str) -> Mapping[str, Any]:
        images = self._call(self.ec2, "describe_images", "ec2:DescribeImages", ImageIds=[image_id])[
            "Images"
        ]
        if not images:
            raise errors.NotFound(f"no AMI {image_id}")
        return images[0]

    def _ami_on(self, snapshot_id: str) -> Mapping[str, Any] | None:
        """The account's AMI whose root device is ``snapshot_id``, if one was registered."""
        images = self._call(self.ec2, "describe_images", "ec2:DescribeImages", Owners=["self"])
        return next(
            (i for i in images["Images"] if (self._root_snapshot(i) or ("",))[0] == snapshot_id),
            None,
        )

    def _snapshot_record(self, snapshot: Mapping[str, Any]) -> ImageRecord:
        """An unfinished write that has no AMI yet: ``saving``, with the provenance it was
        tagged with at StartSnapshot, under its snapshot's id."""
        tags = _tag_map(snapshot)
        started = snapshot.get("StartTime")
        return ImageRecord(
            id=snapshot["SnapshotId"],
            name=tags.get(WRITING_TAG) or None,
            status="saving",
            disk_format="raw",
            container_format="bare",
            owner=snapshot.get("OwnerId"),
            visibility="private",
            properties=tags,
            created_at=started.isoformat() if hasattr(started, "isoformat") else started,
        )

    def get_image(self, image_id: str) -> ImageRecord:
        """The AMI ``image_id``; or, for the snapshot id a one-step write reported when it
        started (``on_started``), the AMI registered on it, else the unfinished write itself.
        A snapshot Glint is not writing and no AMI uses is no image: ``NotFound``."""
        if image_id.startswith("snap-"):
            snapshot = self._snapshot(image_id)
            ami = self._ami_on(image_id)
            writing = {image_id: snapshot} if WRITING_TAG in _tag_map(snapshot) else {}
            if ami is not None:
                return self._record(ami, writing)
            if not writing:
                raise errors.NotFound(f"snapshot {image_id} holds no image of Glint's")
            return self._snapshot_record(snapshot)
        return self._record(self._ami(image_id), self._writes_in_flight())

    def _record(
        self, image: Mapping[str, Any], in_flight: Mapping[str, Any] | None = None
    ) -> ImageRecord:
        """``image`` as a record; ``saving`` while its root snapshot is still being written
        (in ``in_flight``): Glint has not finished it, whatever state EC2 gives, and until it
        is tagged its provenance is its snapshot's."""
        in_flight = in_flight or {}
        tags = _tag_map(image)
        owner = image.get("OwnerId")
        mine = owner == self._account()
        if image.get("Public"):
            visibility = "public"
        else:
            visibility = "private" if mine else "shared"
        root = self._root_snapshot(image)
        size = int(tags[SIZE_TAG]) if SIZE_TAG in tags else (root[1] * GIB if root else None)
        properties = dict(tags)
        if root and root[0] in in_flight:
            properties = {**_tag_map(in_flight[root[0]]), **tags}
        # Glance's boot requirements travel as tags (EC2 has no such fields): back to fields.
        minimums = {key: _whole(properties.pop(key, None)) for key in ("min_disk", "min_ram")}
        os_hidden = str(properties.pop("os_hidden", "")).lower() == "true"
        for key, field in (
            ("architecture", "Architecture"),
            ("boot_mode", "BootMode"),
            ("ena_support", "EnaSupport"),
        ):
            if image.get(field) is not None:
                properties[key] = (
                    str(image[field]).lower() if field == "EnaSupport" else image[field]
                )
        status = _AMI_STATES.get(image.get("State", ""), image.get("State", ""))
        properties.pop(NAME_TAG, None)
        return ImageRecord(
            id=image["ImageId"],
            name=tags.get(NAME_TAG) or image.get("Name"),
            status="saving" if root and root[0] in in_flight else status,
            size=size,
            virtual_size=size,
            disk_format="raw",
            container_format="bare",
            owner=owner,
            visibility=visibility,
            os_hidden=os_hidden,
            properties=properties,
            created_at=image.get("CreationDate"),
            **minimums,
        )

    _account_id: str | None = None

    def _account(self) -> str:
        if self._account_id is None:
            self._account_id = self._call(
                self._sts(), "get_caller_identity", "sts:GetCallerIdentity"
            )["Account"]
        return self._account_id

    @staticmethod
    def _root_snapshot(image: Mapping[str, Any]) -> tuple[str, int] | None:
        for mapping in image.get("BlockDeviceMappings", []):
            ebs = mapping.get("Ebs") or {}
            if mapping.get("DeviceName") == image.get("RootDeviceName") and ebs.get("SnapshotId"):
                return ebs["SnapshotId"], int(ebs.get("VolumeSize") or 0)
        return None

    def open_read(self, image_id: str, offset: int = 0) -> ImageReader:
        image = self._ami(image_id)
        root = self._root_snapshot(image)
        if root is None:
            raise errors.ImageNotReady(f"AMI {image_id} has no root snapshot to read")
        return SnapshotReader(self, root[0], self._record(image).size, offset)

    # Writing

    def create_image(self, fields: Mapping[str, Any]) -> ImageRecord:
        raise errors.InvalidRequest(
            "an EC2 image is written in one step (create_and_write): an AMI needs its snapshot"
        )

    def write_data(self, image_id: str, chunks: Iterable[bytes], size: int | None = None):
        raise errors.InvalidRequest("an EC2 image is written in one step (create_and_write)")

    def create_and_write(
        self,
        fields: Mapping[str, Any],
        chunks: Iterable[bytes],
        size: int | None = None,
        on_started: Callable[[str], None] | None = None,
    ) -> ImageRecord:
        """Write a raw disk to a new snapshot and register an AMI on it, tagged with ``fields``.

        ``size`` is required: StartSnapshot takes the volume size up front (rounded up to GiB).
        StartSnapshot tags the snapshot with :data:`WRITING_TAG` and Glint's provenance
        (``glint_*`` fields), and ``on_started`` hears its id before a block is sent, so a
        crash leaves a snapshot that is both recorded and recognisable; the tag goes once the
        AMI is registered and tagged. A failure deletes the snapshot (and the AMI) again.
        """
        if fields.get("disk_format", "raw") != "raw":
            raise errors.FormatRefused(
                f"EC2 stores raw disks; convert the {fields['disk_format']} image to raw first"
            )
        if size is None:
            raise errors.InvalidRequest("an EC2 write needs the image's size up front")
        name = fields.get("name") or ""
        gib = max(1, -(-size // GIB))
        started = {
            WRITING_TAG: name,
            **{k: str(v) for k, v in fields.items() if k.startswith(_GLINT_PREFIX)},
        }
        snapshot_id = self._call(
            self.ebs,
            "start_snapshot",
            "ebs:StartSnapshot",
            VolumeSize=gib,
            Description=f"glint: {name}"[:255],
            Tags=[{"Key": k, "Value": v[:255]} for k, v in started.items()],
        )["SnapshotId"]
        try:
            if on_started is not None:
                on_started(snapshot_id)
            sent, written = self._put_blocks(snapshot_id, chunks)
            if size is not None and written != size:
                raise errors.SizeMismatch(f"{written} bytes written, {size} announced")
            self._call(
                self.ebs,
                "complete_snapshot",
                "ebs:CompleteSnapshot",
                SnapshotId=snapshot_id,
                ChangedBlocksCount=sent,
            )
            ami = self._ami_fields(fields, snapshot_id)
            image_id = self._under_a_free_name(
                ami["Name"],
                snapshot_id,
                lambda name: self._call(
                    self.ec2, "register_image", "ec2:RegisterImage", **{**ami, "Name": name}
                )["ImageId"],
            )
            tags = {**self._tags(fields), SIZE_TAG: str(written)}
            self._tag([image_id, snapshot_id], tags, {SNAPSHOT_TAG: image_id})
            self._call(
                self.ec2,
                "delete_tags",
                "ec2:DeleteTags",
                Resources=[snapshot_id],
                Tags=[{"Key": WRITING_TAG}],
            )
        except BaseException:
            try:
                self.delete(snapshot_id)
            except Exception:  # the original failure matters more; a reconciler cleans up
                pass
            raise
        return self.get_image(image_id)

    def _put_blocks(self, snapshot_id: str, chunks: Iterable[bytes]) -> tuple[int, int]:
        """Send every block with data, several at once; return (blocks sent, bytes read).

        Each block is copied into a buffer of its own that is reused once its request is done
        (botocore needs bytes-like data that stays put until then, not a view of a chunk the
        source may reuse): a fresh 512 KiB ``bytes`` per block is a fresh mapping under
        ``map_chunks_separately``, whose page faults cost more than the copy.
        """
        written = 0
        free: list[bytearray] = []

        def put(index: int, data: bytearray) -> None:
            try:
                self._call(
                    self.ebs,
                    "put_snapshot_block",
                    "ebs:PutSnapshotBlock",
                    SnapshotId=snapshot_id,
                    BlockIndex=index,
                    BlockData=data,
                    DataLength=len(data),
                    Checksum=_checksum(data),
                    ChecksumAlgorithm="SHA256",
                )
            finally:
                free.append(data)  # list.append is atomic: no lock between the pool's threads

        def counted(source: Iterable[bytes]) -> Iterator[bytes]:
            nonlocal written
            for chunk in source:
                written += len(chunk)
                yield chunk

        sent = 0
        with ThreadPoolExecutor(BLOCKS_IN_FLIGHT) as pool:
            pending = []
            for index, data in _blocks(counted(chunks)):
                if data is None:
                    continue  # unwritten blocks read as zeros
                buffer = free.pop() if free else bytearray(BLOCK_SIZE)
                buffer[:] = data
                pending.append(pool.submit(put, index, buffer))
                sent += 1
                if len(pending) >= BLOCKS_IN_FLIGHT * 2:  # bounded memory
                    pending.pop(0).result()
            for future in pending:
                future.result()
        return sent, written

    @staticmethod
    def _ami_fields(fields: Mapping[str, Any], snapshot_id: str) -> dict[str, Any]:
        firmware = fields.get("hw_firmware_type")
        return {
            "Name": str(fields.get("name") or snapshot_id),
            "RootDeviceName": ROOT_DEVICE,
            "BlockDeviceMappings": [
                {"DeviceName": ROOT_DEVICE, "Ebs": {"SnapshotId": snapshot_id}}
            ],
            "VirtualizationType": "hvm",
            "Architecture": fields.get("architecture") or "x86_64",
            "BootMode": "uefi" if firmware == "uefi" else "legacy-bios",
            "EnaSupport": str(fields.get("hw_vif_model", "")) == "ena"
            or str(fields.get("ena_support", "")).lower() == "true",
        }

    @staticmethod
    def _tags(fields: Mapping[str, Any]) -> dict[str, str]:
        """Glint's provenance and the image's own properties, as tags (values are strings)."""
        skip = {"name", "disk_format", "container_format", "visibility", "tags"}
        tags = {k: str(v) for k, v in fields.items() if k not in skip and v is not None}
        if fields.get("name"):
            tags[NAME_TAG] = str(fields["name"])
        return tags

    @staticmethod
    def _under_a_free_name(name: str, snapshot_id: str, register: Callable[[str], str]) -> str:
        """``register(ami_name)`` under the image's name made fit for EC2, or, when another AMI
        of this account and region holds it, under that name with the snapshot's id (unique):
        the Name tag still names the image."""
        try:
            return register(_ami_name(name))
        except errors.Conflict:
            return register(_ami_name(name, suffix=f" ({snapshot_id})"))

    def _tag(self, ids: list[str], tags: Mapping[str, str], snapshot_tags: Mapping[str, str]):
        if tags:
            self._call(
                self.ec2,
                "create_tags",
                "ec2:CreateTags",
                Resources=ids[:1],
                Tags=[{"Key": k, "Value": v} for k, v in tags.items()],
            )
        self._call(
            self.ec2,
            "create_tags",
            "ec2:CreateTags",
            Resources=ids[1:],
            Tags=[{"Key": k, "Value": v} for k, v in snapshot_tags.items()],
        )

    def delete(self, image_id: str) -> None:
        """Deregister the AMI, then delete the snapshots Glint made for it (and only those).

        ``image_id`` may be the snapshot id of a one-step write (``on_started``): then the AMI
        registered on it goes first, and the snapshot only if Glint made it (tagged
        :data:`WRITING_TAG` or :data:`SNAPSHOT_TAG`); any other snapshot is refused.
        """
        if image_id.startswith("snap-"):
            self._delete_write(image_id)
            return
        ami = self._ami(image_id)
        root = self._root_snapshot(ami)
        self._call(self.ec2, "deregister_image", "ec2:DeregisterImage", ImageId=image_id)
        if root is None:
            return
        snapshots = self._call(
            self.ec2, "describe_snapshots", "ec2:DescribeSnapshots", SnapshotIds=[root[0]]
        )["Snapshots"]
        for snapshot in snapshots:
            tags = _tag_map(snapshot)
            # An AMI registered on a write that never finished has no SNAPSHOT_TAG yet; a copy's
            # snapshot shares its AMI's COPY_TAG.
            copy = _tag_map(ami).get(COPY_TAG)
            if (
                tags.get(SNAPSHOT_TAG) == image_id
                or WRITING_TAG in tags
                or (copy and tags.get(COPY_TAG) == copy)
            ):
                self._call(
                    self.ec2,
                    "delete_snapshot",
                    "ec2:DeleteSnapshot",
                    SnapshotId=snapshot["SnapshotId"],
                )

    def _delete_write(self, snapshot_id: str) -> None:
        tags = _tag_map(self._snapshot(snapshot_id))
        if WRITING_TAG not in tags and SNAPSHOT_TAG not in tags:
            raise errors.InvalidRequest(
                f"snapshot {snapshot_id} was not made by Glint: not deleted"
            )
        ami = self._ami_on(snapshot_id)
        if ami is not None:
            self.delete(ami["ImageId"])
            return
        self._call(self.ec2, "delete_snapshot", "ec2:DeleteSnapshot", SnapshotId=snapshot_id)

    def set_properties(self, image_id, set=None, remove=()):  # noqa: A002
        """Tags; a new ``name`` is the Name tag (a registered AMI name cannot change)."""
        tags = {NAME_TAG if k == "name" else k: str(v) for k, v in (set or {}).items()}
        untags = [k for k in remove if k != "name"]
        if tags:
            self._call(
                self.ec2,
                "create_tags",
                "ec2:CreateTags",
                Resources=[image_id],
                Tags=[{"Key": k, "Value": v} for k, v in tags.items()],
            )
        if untags:
            self._call(
                self.ec2,
                "delete_tags",
                "ec2:DeleteTags",
                Resources=[image_id],
                Tags=[{"Key": k} for k in untags],
            )
        return self.get_image(image_id)

    def can_copy_from(self, source: Any) -> bool:
        """An EC2 repo at the same endpoint and, on AWS, in the same partition (another region
        or account, or this one): CopyImage reaches it. Whether the AMI may be read is AWS's
        answer to :meth:`copy_from`."""
        if (
            not isinstance(source, Ec2Connection)
            or source.endpoint_url != self.connection.endpoint_url
        ):
            return False
        if self.connection.endpoint_url is not None:
            return True  # an EC2-compatible cloud's regions are those its one endpoint serves
        partition = self._session.get_partition_for_region
        try:
            return partition(source.region) == partition(self.connection.region)
        except botocore.exceptions.UnknownRegionError:  # no partition AWS knows of
            return False

    def copy_from(
        self, source: Any, image_id: str, fields: Mapping[str, Any], size: int | None
    ) -> ImageRecord:
        """CopyImage of AMI ``image_id`` from the source's region, called with this repo's
        credentials (so across accounts the AMI and its snapshot must be shared with this
        account). The new AMI and the snapshot EC2 makes for it are tagged at once: the AMI
        with ``fields`` (provenance included, so a copy a crash cut off is known as Glint's)
        and ``glint_size``, both with one :data:`COPY_TAG`."""
        if not self.can_copy_from(source):
            raise errors.InvalidRequest("CopyImage reaches only EC2 repos of this endpoint")
        name = fields.get("name") or image_id
        token = uuid.uuid4().hex
        tags = {**self._tags(fields), COPY_TAG: token}
        if size is not None:
            tags[SIZE_TAG] = str(size)
        snapshot_tags = {COPY_TAG: token}
        new_id = self._under_a_free_name(
            name,
            image_id,
            lambda ami_name: self._call(
                self.ec2,
                "copy_image",
                "ec2:CopyImage",
                SourceImageId=image_id,
                SourceRegion=source.region,
                Name=ami_name,
                Description=f"glint: {name}"[:255],
                TagSpecifications=[
                    {"ResourceType": kind, "Tags": [{"Key": k, "Value": v} for k, v in t.items()]}
                    for kind, t in (("image", tags), ("snapshot", snapshot_tags))
                ],
            )["ImageId"],
        )
        return self.get_image(new_id)

    def capabilities(self) -> Capabilities:
        return Capabilities(
            can_stream_write=False,
            can_range_read=True,
            writes_in_one_step=True,
            verified_reads=True,
            disk_formats=("raw",),
            checked_writes=True,
        )

    def import_web_download(self, image_id: str, url: str) -> None:
        raise errors.InvalidRequest("EC2 has no web-download import: Glint streams the image")

    def close(self) -> None:
        for client in (self.ec2, self.ebs, self._sts_client):
            if client is not None:
                client.close()


class SnapshotReader(ImageReader):
    """A snapshot's bytes from ``offset`` on, zeros for unwritten blocks, each block verified."""

    def __init__(self, driver: Ec2Driver, snapshot_id: str, size: int, offset: int):
        self.driver, self.snapshot_id, self.size, self.offset = driver, snapshot_id, size, offset

    def _tokens(self) -> dict[int, str]:
        tokens: dict[int, str] = {}
        params: dict[str, Any] = {"SnapshotId": self.snapshot_id}
        while True:
            page = self.driver._call(
                self.driver.ebs, "list_snapshot_blocks", "ebs:ListSnapshotBlocks", **params
            )
            tokens.update({b["BlockIndex"]: b["BlockToken"] for b in page.get("Blocks", [])})
            if not page.get("NextToken"):
                return tokens
            params["NextToken"] = page["NextToken"]

    def _block(self, index: int, token: str) -> bytes:
        got = self.driver._call(
            self.driver.ebs,
            "get_snapshot_block",
            "ebs:GetSnapshotBlock",
            SnapshotId=self.snapshot_id,
            BlockIndex=index,
            BlockToken=token,
        )
        data = got["BlockData"].read()
        if got.get("Checksum") != _checksum(data):
            raise errors.TransferInterrupted(
                f"block {index} of {self.snapshot_id} does not match its checksum"
            )
        return data

    def __iter__(self) -> Iterator[bytes]:
        if self.offset >= self.size:
            return  # nothing left: no chunk at all, not an empty one
        tokens = self._tokens()
        first = self.offset // BLOCK_SIZE
        for index in range(first, -(-self.size // BLOCK_SIZE)):
            data = self._block(index, tokens[index]) if index in tokens else _ZERO_BLOCK
            start = self.offset - index * BLOCK_SIZE if index == first else 0
            yield data[start : self.size - index * BLOCK_SIZE]

    def close(self) -> None:
        pass
