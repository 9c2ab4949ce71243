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
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import botocore.config
import botocore.exceptions
import botocore.httpsession
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
# Tag of the image's size in bytes: a snapshot is whole GiB, the image it holds need not be.
SIZE_TAG = "glint_size"


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
    http._manager = CheckedPoolManager(policy, **http._get_pool_manager_kwargs())
    http._manager.pool_classes_by_scheme = http._pool_classes_by_scheme
    return client


def _refusal_is_final(caught_exception=None, **kwargs) -> None:
    """End the call with the policy's refusal (botocore would retry it as a connection error,
    looking the name up again each time): an address the policy refuses stays refused."""
    refused = getattr(caught_exception, "kwargs", {}).get("error")
    if isinstance(refused, errors.EndpointRefused):
        raise refused


def _whole(tag: str | None) -> int:
    """A tag's whole number; 0 for none or one that is not a number (someone else's tag)."""
    try:
        return max(0, int(tag or 0))
    except ValueError:
        return 0


def _checksum(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def _blocks(chunks: Iterable[bytes]) -> Iterator[tuple[int, bytes]]:
    """(index, data) of each 512 KiB block; the last is padded with zeros."""
    pending = bytearray()
    index = 0
    for chunk in chunks:
        pending += chunk
        while len(pending) >= BLOCK_SIZE:
            yield index, bytes(pending[:BLOCK_SIZE])
            del pending[:BLOCK_SIZE]
            index += 1
    if pending:
        yield index, bytes(pending) + bytes(BLOCK_SIZE - len(pending))


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
        )
        self.ec2 = self._client(self._session, "ec2", config)
        self.ebs = self._client(self._session, "ebs", config)

    def _client(self, session: boto3.session.Session, service: str, config=None):
        """A client of ``service`` at the connection's endpoint, through its endpoint policy."""
        client = session.client(service, endpoint_url=self.connection.endpoint_url, config=config)
        return _check_connections(client, self.connection.endpoint_policy)

    def _open_session(self) -> boto3.session.Session:
        c = self.connection
        session = boto3.session.Session(
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
        return boto3.session.Session(
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

    def check(self) -> ProjectInfo:
        sts = self._client(self._session, "sts")
        who = self._call(sts, "get_caller_identity", "sts:GetCallerIdentity")
        self._call(self.ec2, "describe_images", "ec2:DescribeImages", Owners=["self"], MaxResults=5)
        return ProjectInfo(project_id=who["Account"], project_name=None, user_id=who.get("Arn"))

    def list_images(self, *, page_size: int | None = None) -> list[ImageRecord]:
        """The account's own AMIs and those shared with it, never the public catalogue."""
        seen: dict[str, ImageRecord] = {}
        for query in ({"Owners": ["self"]}, {"ExecutableUsers": ["self"]}):
            images = self._call(self.ec2, "describe_images", "ec2:DescribeImages", **query)
            for image in images["Images"]:
                seen.setdefault(image["ImageId"], self._record(image))
        return list(seen.values())

    def get_image(self, image_id: str) -> ImageRecord:
        images = self._call(self.ec2, "describe_images", "ec2:DescribeImages", ImageIds=[image_id])[
            "Images"
        ]
        if not images:
            raise errors.NotFound(f"no AMI {image_id}")
        return self._record(images[0])

    def _record(self, image: Mapping[str, Any]) -> ImageRecord:
        tags = {t["Key"]: t["Value"] for t in image.get("Tags", [])}
        owner = image.get("OwnerId")
        mine = owner == self._account()
        if image.get("Public"):
            visibility = "public"
        else:
            visibility = "private" if mine else "shared"
        root = self._root_snapshot(image)
        size = int(tags[SIZE_TAG]) if SIZE_TAG in tags else (root[1] * GIB if root else None)
        properties = dict(tags)
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
        return ImageRecord(
            id=image["ImageId"],
            name=image.get("Name"),
            status="active" if image.get("State") == "available" else image.get("State", ""),
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
            sts = self._client(self._session, "sts")
            self._account_id = self._call(sts, "get_caller_identity", "sts:GetCallerIdentity")[
                "Account"
            ]
        return self._account_id

    @staticmethod
    def _root_snapshot(image: Mapping[str, Any]) -> tuple[str, int] | None:
        for mapping in image.get("BlockDeviceMappings", []):
            ebs = mapping.get("Ebs") or {}
            if mapping.get("DeviceName") == image.get("RootDeviceName") and ebs.get("SnapshotId"):
                return ebs["SnapshotId"], int(ebs.get("VolumeSize") or 0)
        return None

    def open_read(self, image_id: str, offset: int = 0) -> ImageReader:
        image = self._call(self.ec2, "describe_images", "ec2:DescribeImages", ImageIds=[image_id])[
            "Images"
        ]
        root = self._root_snapshot(image[0]) if image else None
        if root is None:
            raise errors.ImageNotReady(f"AMI {image_id} has no root snapshot to read")
        return SnapshotReader(self, root[0], self._record(image[0]).size, offset)

    # Writing

    def create_image(self, fields: Mapping[str, Any]) -> ImageRecord:
        raise errors.InvalidRequest(
            "an EC2 image is written in one step (create_and_write): an AMI needs its snapshot"
        )

    def write_data(self, image_id: str, chunks: Iterable[bytes], size: int | None = None):
        raise errors.InvalidRequest("an EC2 image is written in one step (create_and_write)")

    def create_and_write(
        self, fields: Mapping[str, Any], chunks: Iterable[bytes], size: int | None = None
    ) -> ImageRecord:
        """Write a raw disk to a new snapshot and register an AMI on it, tagged with ``fields``.

        ``size`` is required: StartSnapshot takes the volume size up front (rounded up to GiB).
        A failure deletes the snapshot again.
        """
        if fields.get("disk_format", "raw") != "raw":
            raise errors.FormatRefused(
                f"EC2 stores raw disks; convert the {fields['disk_format']} image to raw first"
            )
        if size is None:
            raise errors.InvalidRequest("an EC2 write needs the image's size up front")
        name = fields.get("name") or ""
        gib = max(1, -(-size // GIB))
        snapshot_id = self._call(
            self.ebs,
            "start_snapshot",
            "ebs:StartSnapshot",
            VolumeSize=gib,
            Description=f"glint: {name}"[:255],
            Tags=[{"Key": SNAPSHOT_TAG, "Value": name}],
        )["SnapshotId"]
        try:
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
            image_id = self._call(
                self.ec2,
                "register_image",
                "ec2:RegisterImage",
                **self._ami_fields(fields, snapshot_id),
            )["ImageId"]
        except BaseException:
            try:
                self.ec2.delete_snapshot(SnapshotId=snapshot_id)
            except Exception:  # the original failure matters more; a reconciler cleans up
                pass
            raise
        tags = {**self._tags(fields), SIZE_TAG: str(written)}
        self._tag([image_id, snapshot_id], tags, {SNAPSHOT_TAG: image_id})
        return self.get_image(image_id)

    def _put_blocks(self, snapshot_id: str, chunks: Iterable[bytes]) -> tuple[int, int]:
        """Send every block with data, several at once; return (blocks sent, bytes read)."""
        written = 0

        def put(index: int, data: bytes) -> None:
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

        def counted(source: Iterable[bytes]) -> Iterator[bytes]:
            nonlocal written
            for chunk in source:
                written += len(chunk)
                yield chunk

        sent = 0
        with ThreadPoolExecutor(BLOCKS_IN_FLIGHT) as pool:
            pending = []
            for index, data in _blocks(counted(chunks)):
                if data == _ZERO_BLOCK:
                    continue  # unwritten blocks read as zeros
                pending.append(pool.submit(put, index, data))
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
            "Name": fields.get("name") or snapshot_id,
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
        return {k: str(v) for k, v in fields.items() if k not in skip and v is not None}

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
        """Deregister the AMI, then delete the snapshots Glint made for it (and only those)."""
        images = self._call(self.ec2, "describe_images", "ec2:DescribeImages", ImageIds=[image_id])[
            "Images"
        ]
        if not images:
            raise errors.NotFound(f"no AMI {image_id}")
        root = self._root_snapshot(images[0])
        self._call(self.ec2, "deregister_image", "ec2:DeregisterImage", ImageId=image_id)
        if root is None:
            return
        snapshots = self._call(
            self.ec2, "describe_snapshots", "ec2:DescribeSnapshots", SnapshotIds=[root[0]]
        )["Snapshots"]
        for snapshot in snapshots:
            tags = {t["Key"]: t["Value"] for t in snapshot.get("Tags", [])}
            if tags.get(SNAPSHOT_TAG) == image_id:
                self._call(
                    self.ec2,
                    "delete_snapshot",
                    "ec2:DeleteSnapshot",
                    SnapshotId=snapshot["SnapshotId"],
                )

    def set_properties(self, image_id, set=None, remove=()):  # noqa: A002
        if set:
            self._call(
                self.ec2,
                "create_tags",
                "ec2:CreateTags",
                Resources=[image_id],
                Tags=[{"Key": k, "Value": str(v)} for k, v in set.items()],
            )
        if remove:
            self._call(
                self.ec2,
                "delete_tags",
                "ec2:DeleteTags",
                Resources=[image_id],
                Tags=[{"Key": k} for k in remove],
            )
        return self.get_image(image_id)

    def capabilities(self) -> Capabilities:
        return Capabilities(
            can_stream_write=False,
            can_range_read=True,
            writes_in_one_step=True,
            disk_formats=("raw",),
            reads_verified=True,
        )

    def import_web_download(self, image_id: str, url: str) -> None:
        raise errors.InvalidRequest("EC2 has no web-download import: Glint streams the image")

    def close(self) -> None:
        for client in (self.ec2, self.ebs):
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
        tokens = self._tokens()
        first = self.offset // BLOCK_SIZE
        for index in range(first, -(-self.size // BLOCK_SIZE)):
            data = self._block(index, tokens[index]) if index in tokens else _ZERO_BLOCK
            start = self.offset - index * BLOCK_SIZE if index == first else 0
            yield data[start : self.size - index * BLOCK_SIZE]

    def close(self) -> None:
        pass
