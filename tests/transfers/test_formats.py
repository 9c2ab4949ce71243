"""Disk formats told from real images (made by qemu-img), and declarations that lie."""

from __future__ import annotations

import os

import pytest

from glint.transfers import formats
from tests.transfers.helpers import qemu_image


def head_and_tail(path):
    data = path.read_bytes()
    return data[: formats.HEAD_BYTES], data[-formats.TAIL_BYTES :]


@pytest.mark.parametrize(
    "fmt, options, expected",
    [
        ("qcow2", (), "qcow2"),
        ("vmdk", (), "vmdk"),
        ("vmdk", ("-o", "subformat=streamOptimized"), "vmdk"),
        ("vpc", (), "vhd"),
        ("vpc", ("-o", "subformat=fixed"), "vhd"),
        ("vhdx", (), "vhdx"),
        ("raw", (), "raw"),
    ],
)
def test_real_images_are_recognised(tmp_path, fmt, options, expected):
    head, tail = head_and_tail(qemu_image(tmp_path, fmt, *options))
    assert formats.detect(head, tail) == expected
    assert formats.resolve(None, head, tail) == expected, (
        "nothing declared: the detected format is used"
    )


def test_an_iso_is_recognised_by_its_volume_descriptor():
    image = bytearray(os.urandom(0x9800))
    image[0x8001:0x8006] = b"CD001"
    assert formats.detect(bytes(image)) == "iso"


def test_a_fixed_vhd_is_only_seen_at_its_end(tmp_path):
    head, tail = head_and_tail(qemu_image(tmp_path, "vpc", "-o", "subformat=fixed"))
    assert formats.detect(head) == "raw", "a stream's head alone looks raw"
    with pytest.raises(
        formats.FormatMismatch, match="declared raw but it is a Hyper-V/Virtual PC vhd"
    ):
        formats.check_tail("raw", tail)
    formats.check_tail("vhd", tail)


def test_qcow2_declared_for_raw_bytes_is_refused():
    with pytest.raises(formats.FormatMismatch, match="declared qcow2 but it is raw data"):
        formats.resolve("qcow2", os.urandom(4096))


def test_raw_declared_for_a_real_qcow2_is_refused(tmp_path):
    head, _ = head_and_tail(qemu_image(tmp_path, "qcow2"))
    with pytest.raises(
        formats.FormatMismatch,
        match="declared raw but it is a qcow2 image.*declare disk format qcow2",
    ):
        formats.resolve("raw", head)


def test_ami_ari_aki_are_taken_by_declaration_unless_the_bytes_are_another_format(tmp_path):
    assert formats.resolve("aki", os.urandom(4096)) == "aki"
    assert formats.resolve("vdi", os.urandom(4096)) == "vdi"
    head, _ = head_and_tail(qemu_image(tmp_path, "qcow2"))
    with pytest.raises(formats.FormatMismatch, match="declared ami"):
        formats.resolve("ami", head)


# qcow2 images that name other files (qcow2 header layout: qemu's docs/interop/qcow2.txt)

INCOMPATIBLE_FEATURES = 72  # version 3's incompatible-feature bits (8 bytes, big-endian)


def qcow2_head(tmp_path, *options):
    return head_and_tail(qemu_image(tmp_path, "qcow2", *options))[0]


def test_a_plain_qcow2_is_safe(tmp_path):
    assert formats.unsafe_reason(qcow2_head(tmp_path)) is None
    assert formats.unsafe_reason(qcow2_head(tmp_path, "-o", "compat=0.10")) is None, "version 2"
    formats.check_safe(os.urandom(4096))


@pytest.mark.parametrize("compat", ["1.1", "0.10"])
def test_a_backing_file_is_refused_and_named(tmp_path, compat):
    qemu_image(tmp_path, "raw")
    head = qcow2_head(tmp_path, "-o", f"compat={compat}", "-b", "disk.raw", "-F", "raw")
    assert formats.unsafe_reason(head).startswith("a qcow2 image with a backing file ('disk.raw')")
    with pytest.raises(formats.UnsafeImage, match="backing file"):
        formats.resolve("raw", head)  # refused as unsafe, before the format lie


def test_an_external_data_file_is_refused_by_its_flag_and_by_its_name(tmp_path):
    head = bytearray(qcow2_head(tmp_path, "-o", "data_file=data.raw"))
    both = "the external data file flag and an external data file ('data.raw')"
    assert both in formats.unsafe_reason(head)

    only_the_name = bytearray(head)
    only_the_name[INCOMPATIBLE_FEATURES + 7] &= ~0x04
    assert "with an external data file ('data.raw')" in formats.unsafe_reason(only_the_name)

    only_the_flag = bytearray(head)
    at = only_the_flag.index(b"DATA")
    only_the_flag[at : at + 4] = b"\x12\x34\x56\x78"  # an extension type nobody knows: skipped
    assert "with the external data file flag;" in formats.unsafe_reason(only_the_flag)


def test_unknown_features_and_unreadable_headers_are_refused(tmp_path):
    head = bytearray(qcow2_head(tmp_path))
    unknown = bytearray(head)
    unknown[INCOMPATIBLE_FEATURES + 7] |= 0x20
    assert "unknown incompatible features (0x20)" in formats.unsafe_reason(unknown)
    assert "a header cut short" in formats.unsafe_reason(head[:90])
    never_ends = head[:104] + b"\x12\x34\x56\x78\x00\x00\x00\x00" * 10
    assert "header extensions beyond the first 184 bytes" in formats.unsafe_reason(never_ends)
    version_9 = bytearray(head)
    version_9[4:8] = (9).to_bytes(4, "big")
    assert "an unknown header version 9" in formats.unsafe_reason(version_9)
