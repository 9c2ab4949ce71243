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

Whatever is declared, a qcow2 that names another file is refused (:func:`unsafe_reason`): a
backing file or an external data file is opened by whoever runs the image (qemu on a hypervisor,
a conversion on the Glance host), so such an image reads files of the host. Newer Glance refuses
them on upload (its format inspector), older ones and images not declared ``bare`` do not; Glint
refuses them itself, on upload and before it copies one out of a cloud.
"""

from __future__ import annotations

import struct

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
    if any(head[offset:offset + 5] == b"CD001" for offset in _ISO_OFFSETS):
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
            f"disk format {detected}" + (f" or convert it (qemu-img convert -O {declared})"
                                          if declared in ("raw", "qcow2", "vmdk", "vhdx") else "")
        )
    return declared


def check_tail(disk_format: str, tail: bytes) -> None:
    """At the end of a stream: a fixed VHD's footer in something declared raw is a lie too.

    Raises:
        FormatMismatch: The stream ends with a VHD footer but the format is not ``vhd``.
    """
    if disk_format in ("raw", "ami") and tail[-TAIL_BYTES:].startswith(b"conectix"):
        raise FormatMismatch(f"the file was declared {disk_format} but it is {_DESCRIPTIONS['vhd']}; "
                             f"declare disk format vhd")


# qcow2 safety (the header layout: qemu's docs/interop/qcow2.txt)

_QCOW2_MAGIC = b"QFI\xfb"
#: Version 2 header: magic, version, backing_file_offset, backing_file_size, cluster_bits, size,
#: crypt_method, l1_size, l1_table_offset, refcount_table_offset, refcount_table_clusters,
#: nb_snapshots, snapshots_offset.
_QCOW2_V2 = struct.Struct(">4sIQIIQIIQQIIQ")
#: What version 3 adds: incompatible, compatible and autoclear features, refcount_order,
#: header_length.
_QCOW2_V3 = struct.Struct(">QQQII")
_EXTENSION = struct.Struct(">II")  # type, length; the data follows, padded to 8 bytes
_EXT_END, _EXT_DATA_FILE = 0x00000000, 0x44415441  # "DATA": the external data file's name
#: Incompatible feature bits qemu knows: dirty, corrupt, external data file, compression
#: type, extended L2 entries. A higher bit is a feature nobody can vouch for (Glance refuses it).
_DATA_FILE_BIT = 2
_KNOWN_INCOMPATIBLE = (1 << 5) - 1
_NAME_SHOWN = 80  # characters of a named file the message repeats


def unsafe_reason(head: bytes) -> str | None:
    """Why the bytes are unsafe for a cloud to use, or None.

    Args:
        head: The first :data:`HEAD_BYTES` of the image (fewer if it is shorter).

    Returns:
        ``"a qcow2 image with a backing file ('base.raw')…"`` and the like, or None for
        anything that is not a qcow2 naming another file.
    """
    if not head.startswith(_QCOW2_MAGIC):
        return None
    hazards = _qcow2_hazards(head)
    if not hazards:
        return None
    return (f"a qcow2 image with {' and '.join(hazards)}; a qcow2 that names (or may name) other "
            f"files for the cloud to open on its hosts is refused, as Glance refuses it: flatten "
            f"it first (qemu-img convert -O qcow2 IN OUT, without -o data_file)")


def check_safe(head: bytes) -> None:
    """Refuse bytes that :func:`unsafe_reason` finds unsafe.

    Raises:
        UnsafeImage: With the reason; Glint never sends such an image to a cloud.
    """
    reason = unsafe_reason(head)
    if reason:
        raise UnsafeImage(f"the file is {reason}")


def _qcow2_hazards(head: bytes) -> list[str]:
    """What in a qcow2 header names another file, or cannot be read to tell."""
    if len(head) < _QCOW2_V2.size:
        return ["a header cut short"]
    (_magic, version, backing_offset, backing_size, *_rest) = _QCOW2_V2.unpack_from(head)
    if version not in (2, 3):
        return [f"an unknown header version {version}"]
    hazards = []
    if backing_offset:
        hazards.append(f"a backing file{_named(head, backing_offset, backing_size)}")
    extensions_at = _QCOW2_V2.size
    if version == 3:
        if len(head) < _QCOW2_V2.size + _QCOW2_V3.size:
            return hazards + ["a header cut short"]
        incompatible, _compatible, _autoclear, _order, header_length = \
            _QCOW2_V3.unpack_from(head, _QCOW2_V2.size)
        if incompatible & (1 << _DATA_FILE_BIT):
            hazards.append("the external data file flag")
        if incompatible & ~_KNOWN_INCOMPATIBLE:
            hazards.append(f"unknown incompatible features (0x{incompatible:x})")
        if header_length < _QCOW2_V2.size + _QCOW2_V3.size:
            return hazards + [f"a header length of {header_length} bytes"]
        extensions_at = header_length
    return hazards + _extension_hazards(head, extensions_at)


def _extension_hazards(head: bytes, offset: int) -> list[str]:
    """The header extensions from ``offset`` to the end marker: an external data file's name,
    or an extension list that runs past the bytes inspected (then nobody can tell)."""
    while True:
        if offset + _EXTENSION.size > len(head):
            return [f"header extensions beyond the first {len(head)} bytes"]
        kind, length = _EXTENSION.unpack_from(head, offset)
        offset += _EXTENSION.size
        if kind == _EXT_END:
            return []
        if kind == _EXT_DATA_FILE:
            return [f"an external data file{_named(head, offset, length)}"]
        offset += (length + 7) // 8 * 8


def _named(head: bytes, offset: int, length: int) -> str:
    """`` ('name')``: the file a header names, if it lies in the head (escaped by repr)."""
    if length <= 0 or offset + length > len(head):
        return ""
    name = head[offset:offset + length].decode("utf-8", "replace")
    return f" ({name[:_NAME_SHOWN]!r})"
