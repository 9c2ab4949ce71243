"""Disk-format detection from an image's own bytes, so a declared format that lies is refused.

Glance inspects uploads too (a ``qcow2`` that is not one is refused), but only after the bytes
have crossed the network to every target; and a qcow2 uploaded as ``raw`` is *accepted* by Glance
and then boots as garbage, or worse, lets a guest read host files through a backing-file name.
Glint reads the header of the stream before anything is sent to a cloud and refuses a contradiction
with a message that says what the file really is.

Signatures (the formats' own specifications):

============  ========================================================================
qcow2         ``QFI\\xfb`` at offset 0
vmdk          ``KDMV`` (sparse / stream-optimized extent) or ``# Disk DescriptorFile`` at 0
vhdx          ``vhdxfile`` at 0
vhd           ``conectix`` at 0 (dynamic: a copy of the footer) or at end − 512 (fixed)
iso           ``CD001`` at 0x8001, 0x8801 or 0x9001 (ISO 9660 volume descriptors)
raw           anything else
============  ========================================================================

``ami``/``ari``/``aki`` (Amazon-style machine, ramdisk and kernel images) and ``vdi``/``ploop``
carry no signature this module knows: they are taken by declaration, as long as the bytes are not
recognisably one of the formats above.

Whatever is declared, a qcow2 that names another file is refused (:func:`check_safe`, with the
engine's :func:`glint.replication.image_safety.unsafe_reason`): a
backing file or an external data file is opened by whoever runs the image (qemu on a hypervisor,
a conversion on the Glance host), so such an image reads files of the host. Newer Glance refuses
them on upload (its format inspector), older ones and images not declared ``bare`` do not; Glint
refuses them itself, on upload and before it copies one out of a cloud.
"""

from __future__ import annotations

from glint.replication import unsafe_reason
from glint.transfers.errors import TransferError

__all__ = [
    "CONTAINER_FORMATS",
    "DISK_FORMATS",
    "HEAD_BYTES",
    "TAIL_BYTES",
    "FormatMismatch",
    "UnsafeImage",
    "check_safe",
    "check_tail",
    "detect",
    "resolve",
    "unsafe_reason",
]

#: Glance's disk formats.
DISK_FORMATS = ("raw", "qcow2", "vmdk", "vhd", "vhdx", "iso", "vdi", "ploop", "ami", "ari", "aki")
CONTAINER_FORMATS = ("bare", "ovf", "ova", "aki", "ari", "ami", "docker", "compressed")

#: Bytes of the start of a stream that :func:`detect` needs (the last ISO descriptor ends at
#: 0x9006); rounded up.
HEAD_BYTES = 64 * 1024
#: Bytes of the end of a stream where a fixed VHD keeps its footer.
TAIL_BYTES = 512

_ISO_OFFSETS = (0x8001, 0x8801, 0x9001)
#: Formats recognisable from their bytes; anything else is "raw" to :func:`detect`.
DETECTABLE = ("qcow2", "vmdk", "vhd", "vhdx", "iso")
_DESCRIPTIONS = {
    "qcow2": "a qcow2 image (it starts with QFI\\xfb)",
    "vmdk": "a VMware vmdk image",
    "vhd": "a Hyper-V/Virtual PC vhd image (it has a 'conectix' footer)",
    "vhdx": "a Hyper-V vhdx image (it starts with 'vhdxfile')",
    "iso": "an ISO 9660 CD/DVD image",
    "raw": "raw data (no known image header)",
}


class FormatMismatch(TransferError):
    """The declared disk format contradicts the bytes; the message says what they are."""

    code = "format_mismatch"


class UnsafeImage(TransferError):
    """The image names other files a cloud would open (a qcow2 backing or data file)."""

    code = "unsafe_image"


def detect(head: bytes, tail: bytes = b"") -> str:
    """The disk format the bytes show.

    Args:
        head: The first :data:`HEAD_BYTES` of the image (fewer if it is shorter).
        tail: The last :data:`TAIL_BYTES`, when known (finds a fixed VHD).

    Returns:
        One of :data:`DETECTABLE`, or ``"raw"``.
    """
    if head.startswith(b"QFI\xfb"):
        return "qcow2"
    if head.startswith((b"KDMV", b"# Disk DescriptorFile")):
        return "vmdk"
    if head.startswith(b"vhdxfile"):
        return "vhdx"
    if head.startswith(b"conectix") or tail[-TAIL_BYTES:].startswith(b"conectix"):
        return "vhd"
    if any(head[offset : offset + 5] == b"CD001" for offset in _ISO_OFFSETS):
        return "iso"
    return "raw"


def resolve(declared: str | None, head: bytes, tail: bytes = b"") -> str:
    """The disk format to create the image with: the declared one if the bytes agree, else the
    detected one when nothing was declared.

    Raises:
        UnsafeImage: The bytes are a qcow2 that names another file (whatever was declared).
        FormatMismatch: The declaration contradicts the bytes.
    """
    check_safe(head)
    detected = detect(head, tail)
    if not declared:
        return detected
    if declared == detected:
        return declared
    if declared in DETECTABLE or detected != "raw":
        # A detectable format was declared but not found, or the bytes are a known format other
        # than the one declared (ami/ari/aki/vdi/ploop are only believed for unrecognised bytes).
        raise FormatMismatch(
            f"the file was declared {declared} but it is {_DESCRIPTIONS[detected]}; declare "
            f"disk format {detected}"
            + (
                f" or convert it (qemu-img convert -O {declared})"
                if declared in ("raw", "qcow2", "vmdk", "vhdx")
                else ""
            )
        )
    return declared


def check_tail(disk_format: str, tail: bytes) -> None:
    """At the end of a stream: a fixed VHD's footer in something declared raw is a lie too.

    Raises:
        FormatMismatch: The stream ends with a VHD footer but the format is not ``vhd``.
    """
    if disk_format in ("raw", "ami") and tail[-TAIL_BYTES:].startswith(b"conectix"):
        raise FormatMismatch(
            f"the file was declared {disk_format} but it is {_DESCRIPTIONS['vhd']}; "
            f"declare disk format vhd"
        )


def check_safe(head: bytes) -> None:
    """Refuse bytes that :func:`unsafe_reason` finds unsafe.

    Raises:
        UnsafeImage: With the reason; Glint never sends such an image to a cloud.
    """
    reason = unsafe_reason(head)
    if reason:
        raise UnsafeImage(f"the file is {reason}")
