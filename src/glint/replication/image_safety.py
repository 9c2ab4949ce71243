"""Whether an image's first bytes are safe for a cloud to use: a qcow2 that names other files, or a
vmdk descriptor (a text file whose extents are other files).

A backing file, an external data file or an extent is opened by whoever runs the image (qemu on a
hypervisor, a conversion on the Glance host), so such an image reads files of the host. Newer
Glance refuses them on upload (its format inspector), older ones and images not declared ``bare``
do not; Glint refuses them itself: on upload (``glint.transfers.formats.check_safe``) and before
it copies one out of a cloud (:attr:`CopySource.inspect_head`). Plain Python, in the engine, so
both the uploads and the jobs' copies use the same rule.
"""

from __future__ import annotations

import struct

__all__ = ["HEAD_BYTES", "read_head", "unsafe_reason"]

#: Bytes of an image inspected: a qcow2 header and its extensions fit in them.
HEAD_BYTES = 64 * 1024


def read_head(driver, image_id: str) -> bytes:
    """The first :data:`HEAD_BYTES` of an image in a cloud (fewer if it is shorter)."""
    head = b""
    with driver.open_read(image_id, 0) as reader:
        for chunk in reader:
            head += chunk
            if len(head) >= HEAD_BYTES:
                break
    return head[:HEAD_BYTES]


# qcow2 safety (the header layout: qemu's docs/interop/qcow2.txt)

_QCOW2_MAGIC = b"QFI\xfb"
#: How a vmdk descriptor file begins (a monolithic vmdk begins with ``KDMV`` instead).
_VMDK_DESCRIPTOR = b"# Disk DescriptorFile"
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
        anything that is neither a qcow2 naming another file nor a vmdk descriptor.
    """
    if head.startswith(_VMDK_DESCRIPTOR):
        return (
            "a vmdk descriptor, whose extents are other files for the cloud to open on its "
            "hosts; Glint refuses it, as Glance does: make one self-contained vmdk first "
            "(qemu-img convert -O vmdk -o subformat=streamOptimized IN OUT)"
        )
    if not head.startswith(_QCOW2_MAGIC):
        return None
    hazards = _qcow2_hazards(head)
    if not hazards:
        return None
    return (
        f"a qcow2 image with {' and '.join(hazards)}; a qcow2 that names (or may name) other "
        f"files for the cloud to open on its hosts is refused, as Glance refuses it: flatten "
        f"it first (qemu-img convert -O qcow2 IN OUT, without -o data_file)"
    )


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
        incompatible, _compatible, _autoclear, _order, header_length = _QCOW2_V3.unpack_from(
            head, _QCOW2_V2.size
        )
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
    name = head[offset : offset + length].decode("utf-8", "replace")
    return f" ({name[:_NAME_SHOWN]!r})"
