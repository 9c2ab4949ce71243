"""Where moto 5.2.5 departs from EC2 in ways Glint's tests depend on, made to behave as EC2 does.

Applied by ``devcloud.moto_server`` inside the moto server process, before it serves a request;
never imported by Glint. Each patch names the EC2 behaviour it restores (the EC2 and EBS API
references) and replaces one moto function whose 5.2.5 code it was written against
(``constraints/ci.txt`` pins moto exactly, so an upgrade is a deliberate re-read of these).

1. ``RegisterImage`` keeps its ``BlockDeviceMappings``: the AMI's root device is the snapshot
   the caller gave (moto maps a 15 GiB snapshot of its own), with the given ``RootDeviceName``,
   ``Architecture``, ``BootMode``, ``EnaSupport`` and ``VirtualizationType``. As in EC2, the
   snapshot is then in use: ``DeleteSnapshot`` refuses it until the AMI is deregistered.
2. An AMI name is unique per account and region: a second ``RegisterImage`` of the same name is
   refused with ``InvalidAMIName.Duplicate``.
3. ``PutSnapshotBlock`` checks the block against its ``Checksum`` (base64 of its SHA-256,
   ``ChecksumAlgorithm=SHA256``) and its ``DataLength``, and refuses a mismatch with a
   ``ValidationException``, storing nothing.
4. ``CopyImage`` copies the backing snapshot ("Amazon EC2 copies the AMI's backing snapshots",
   EC2 User Guide, "Copy an AMI"): the new AMI's root device is a new snapshot in the
   destination region, as big as the source's and holding the source's blocks (so the EBS
   direct APIs read the copy's bytes), described as EC2 describes it; the root device name,
   boot mode and ENA support come along; and its ``TagSpecifications`` tag the new AMI
   (``ResourceType=image``) and the new snapshot (``snapshot``). moto 5.2.5 makes an empty
   15 GiB snapshot of its own and drops the tags.
5. With IAM checks on, an EBS direct request that the policy denies is answered as the EBS
   direct APIs answer it: ``AccessDeniedException`` (HTTP 403) in their JSON error form (EBS
   API reference, Errors). moto answers in EC2's XML form, which a client of the JSON protocol
   reads as no error code at all.
6. ``DeleteSnapshot`` deletes the snapshot's blocks, and the EBS direct APIs answer for a
   snapshot they do not know with ``ResourceNotFoundException`` (HTTP 404). moto 5.2.5 keeps
   the EBS side of a deleted snapshot, every block of it in memory (so a test session's peer,
   and the bench's at a GiB a copy, grew by each image ever written), and answers an unknown
   snapshot with an internal error.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from moto.core.exceptions import AccessDeniedError, JsonRESTError, ServiceException
from moto.core.responses import ActionResult
from moto.ebs.models import EBSBackend, EBSSnapshot, ebs_backends
from moto.ebs.responses import EBSResponse
from moto.ec2.exceptions import EC2ClientError
from moto.ec2.models.amis import Ami, AmiBackend
from moto.ec2.models.elastic_block_store import EBSBackend as Ec2VolumeBackend
from moto.ec2.responses.amis import AmisResponse

# EC2's defaults for RegisterImage when a field is not given (API reference, RegisterImage).
DEFAULT_ARCHITECTURE = "i386"
DEFAULT_VIRTUALIZATION_TYPE = "paravirtual"


class InvalidAMINameDuplicate(EC2ClientError):
    """EC2's answer to a second AMI of one name in one account and region."""

    def __init__(self, name: str, ami_id: str):
        super().__init__(
            "InvalidAMIName.Duplicate", f"AMI name {name} is already in use by AMI {ami_id}"
        )


class EbsValidationException(ServiceException):
    """The EBS direct APIs' ValidationException, with its ``Reason``."""

    code = "ValidationException"

    def __init__(self, message: str, reason: str):
        super().__init__(message)
        self.reason = reason


# 1 and 2: RegisterImage


def _register_image_response(self: AmisResponse) -> ActionResult:
    """moto's handler passes only Name and Description on; this passes what EC2 uses."""
    self.error_on_dryrun()
    image = self.ec2_backend.register_image(
        self._get_param("Name"),
        self._get_param("Description", ""),
        root_device_name=self._get_param("RootDeviceName"),
        block_device_mappings=self._get_param("BlockDeviceMappings", []),
        architecture=self._get_param("Architecture"),
        boot_mode=self._get_param("BootMode"),
        ena_support=self._get_param("EnaSupport"),
        virtualization_type=self._get_param("VirtualizationType"),
    )
    return ActionResult({"ImageId": image.id})


_moto_register_image = AmiBackend.register_image


def _register_image(
    self: AmiBackend,
    name: str | None = None,
    description: str | None = None,
    *,
    root_device_name: str | None = None,
    block_device_mappings: list[dict[str, Any]] = (),
    architecture: str | None = None,
    boot_mode: str | None = None,
    ena_support: Any = None,
    virtualization_type: str | None = None,
) -> Ami:
    for existing in self.amis.values():
        if name and existing.name == name and existing.owner_id == self.account_id:
            raise InvalidAMINameDuplicate(name, existing.id)
    root = _root_mapping(block_device_mappings, root_device_name)
    # Look the snapshot up before the AMI exists, so a bad id leaves no AMI behind.
    snapshot = self.get_snapshot(root["Ebs"]["SnapshotId"]) if root else None
    ami = _moto_register_image(self, name, description)
    if snapshot is not None:
        own = ami.ebs_snapshot
        self.snapshots.pop(own.id, None)  # the placeholder moto made for the AMI
        snapshot.from_ami = ami.id  # EC2: a registered AMI's snapshot is in use
        ami.ebs_snapshot = snapshot
        ami.root_device_name = root_device_name or root["DeviceName"]
        ami.root_device_type = "ebs"
    ami.architecture = architecture or DEFAULT_ARCHITECTURE
    ami.virtualization_type = virtualization_type or DEFAULT_VIRTUALIZATION_TYPE
    ami.boot_mode = boot_mode
    ami.ena_support = _as_bool(ena_support)
    return ami


def _root_mapping(mappings, root_device_name: str | None) -> dict[str, Any] | None:
    """The mapping of the root device that names a snapshot (EC2: RootDeviceName's, else the
    first EBS mapping)."""
    with_snapshot = [m for m in mappings or () if (m.get("Ebs") or {}).get("SnapshotId")]
    for mapping in with_snapshot:
        if mapping.get("DeviceName") == root_device_name:
            return mapping
    return with_snapshot[0] if with_snapshot else None


def _as_bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.lower() == "true"
    return bool(value)


def _block_device_mappings(self: Ami) -> list[dict[str, Any]]:
    """The root mapping as EC2 describes it: the snapshot's own size, not a fixed 15 GiB."""
    volume = getattr(self.ebs_snapshot, "volume", None)
    return [
        {
            "DeviceName": self.root_device_name,
            "Ebs": {
                "SnapshotId": self.ebs_snapshot.id,
                "VolumeSize": volume.size if volume is not None else 15,
                "DeleteOnTermination": True,
                "VolumeType": "standard",
            },
        }
    ]


# 3: PutSnapshotBlock

_moto_put_snapshot_block = EBSBackend.put_snapshot_block


def _put_snapshot_block(
    self: EBSBackend,
    snapshot_id: str,
    block_index: int,
    block_data: bytes,
    checksum: str | None,
    checksum_algorithm: str | None,
    data_length: int | None,
):
    if checksum_algorithm != "SHA256":
        raise EbsValidationException(
            f"ChecksumAlgorithm {checksum_algorithm!r} is not supported: use SHA256",
            "INVALID_PARAMETER_VALUE",
        )
    if data_length is not None and int(data_length) != len(block_data):
        raise EbsValidationException(
            f"DataLength {data_length} does not match the {len(block_data)} bytes sent",
            "INVALID_PARAMETER_VALUE",
        )
    actual = base64.b64encode(hashlib.sha256(block_data).digest()).decode()
    if checksum != actual:
        raise EbsValidationException(
            "The checksum of the block does not match the data sent", "INVALID_BLOCK"
        )
    return _moto_put_snapshot_block(
        self, snapshot_id, block_index, block_data, checksum, checksum_algorithm, data_length
    )


# 4: CopyImage


def _copy_image_response(self: AmisResponse) -> ActionResult:
    """moto's handler drops ``TagSpecifications``; EC2 applies them to the new AMI and its new
    snapshots (API reference, CopyImage)."""
    self.error_on_dryrun()
    image = self.ec2_backend.copy_image(
        self._get_param("SourceImageId"),
        self._get_param("SourceRegion"),
        self._get_param("Name"),
        self._get_param("Description"),
    )
    tags = self._parse_tag_specification()
    image.add_tags(tags.get("image", {}))
    image.ebs_snapshot.add_tags(tags.get("snapshot", {}))
    return ActionResult({"ImageId": image.id})


_moto_copy_image = AmiBackend.copy_image


def _copy_image(
    self: AmiBackend,
    source_image_id: str,
    source_region: str,
    name: str | None = None,
    description: str | None = None,
) -> Ami:
    from moto.ec2.models import ec2_backends

    source_backend = ec2_backends[self.account_id][source_region]
    source = source_backend.describe_images(ami_ids=[source_image_id])[0]
    ami = _moto_copy_image(self, source_image_id, source_region, name, description)
    self.snapshots.pop(ami.ebs_snapshot.id, None)  # the placeholder moto made for the AMI
    original = source.ebs_snapshot
    volume = self.create_volume(size=original.volume.size, zone_name=f"{self.region_name}a")
    snapshot = self.create_snapshot(
        volume.id,
        f"Copied for DestinationAmi {ami.id} from SourceAmi {source.id} for SourceSnapshot "
        f"{original.id}",
        from_ami=ami.id,
    )
    self.delete_volume(volume.id)
    written = ebs_backends[self.account_id][source_region].snapshots.get(original.id)
    copy = EBSSnapshot(self.account_id, snapshot)
    copy.status = "completed"
    copy.blocks = dict(written.blocks) if written is not None else {}
    ebs_backends[self.account_id][self.region_name].snapshots[snapshot.id] = copy
    ami.ebs_snapshot = snapshot
    ami.root_device_name = source.root_device_name
    ami.root_device_type = source.root_device_type
    ami.boot_mode = source.boot_mode
    ami.ena_support = source.ena_support
    return ami


# 5: EBS direct's AccessDeniedException


class EbsAccessDenied(JsonRESTError):
    """The EBS direct APIs' AccessDeniedException, in their JSON error form."""

    code = 403

    def __init__(self, message: str):
        super().__init__("AccessDeniedException", message)


_moto_authorize = EBSResponse._authenticate_and_authorize_normal_action


def _ebs_authorize(self: EBSResponse, resource: str = "*") -> None:
    try:
        _moto_authorize(self, resource)
    except AccessDeniedError as denied:
        raise EbsAccessDenied(denied.message) from None


# 6: DeleteSnapshot

_moto_delete_snapshot = Ec2VolumeBackend.delete_snapshot


class EbsNotFound(JsonRESTError):
    """The EBS direct APIs' ResourceNotFoundException, in their JSON error form."""

    code = 404

    def __init__(self, message: str):
        super().__init__("ResourceNotFoundException", message)


class _EbsSnapshots(dict):
    """The EBS backend's snapshots by id; looking up an unknown one is EBS's not-found error."""

    def __missing__(self, snapshot_id: str):
        raise EbsNotFound(f"The snapshot '{snapshot_id}' does not exist.")


_moto_ebs_init = EBSBackend.__init__


def _ebs_init(self: EBSBackend, region_name: str, account_id: str) -> None:
    _moto_ebs_init(self, region_name, account_id)
    self.snapshots = _EbsSnapshots()


def _delete_snapshot(self: Ec2VolumeBackend, snapshot_id: str):
    deleted = _moto_delete_snapshot(self, snapshot_id)
    ebs_backends[self.account_id][self.region_name].snapshots.pop(snapshot_id, None)
    return deleted


def apply() -> None:
    """Install every patch (idempotent)."""
    AmisResponse.register_image = _register_image_response
    AmiBackend.register_image = _register_image
    Ami.block_device_mappings = property(_block_device_mappings)
    Ami.ena_support = False  # moto's own AMIs (CopyImage, CreateImage) describe as EC2's do
    EBSBackend.put_snapshot_block = _put_snapshot_block
    AmisResponse.copy_image = _copy_image_response
    AmiBackend.copy_image = _copy_image
    EBSResponse._authenticate_and_authorize_normal_action = _ebs_authorize
    Ec2VolumeBackend.delete_snapshot = _delete_snapshot
    EBSBackend.__init__ = _ebs_init
