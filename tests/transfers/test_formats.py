"""Disk formats told from real images (made by qemu-img), and declarations that lie."""

from __future__ import annotations

import os

import pytest

from glint.transfers import formats
from tests.transfers.helpers import qemu_image


def head_and_tail(path):
    data = path.read_bytes()
    return data[: formats.HEAD_BYTES], data[-formats.TAIL_BYTES:]


@pytest.mark.parametrize("fmt, options, expected", [
    ("qcow2", (), "qcow2"),
    ("vmdk", (), "vmdk"),
    ("vmdk", ("-o", "subformat=streamOptimized"), "vmdk"),
    ("vpc", (), "vhd"),
    ("vpc", ("-o", "subformat=fixed"), "vhd"),
    ("vhdx", (), "vhdx"),
    ("raw", (), "raw"),
])
def test_real_images_are_recognised(tmp_path, fmt, options, expected):
    head, tail = head_and_tail(qemu_image(tmp_path, fmt, *options))
    assert formats.detect(head, tail) == expected
    assert formats.resolve(None, head, tail) == expected, "nothing declared: the detected format is used"


def test_an_iso_is_recognised_by_its_volume_descriptor():
    image = bytearray(os.urandom(0x9800))
    image[0x8001:0x8006] = b"CD001"
    assert formats.detect(bytes(image)) == "iso"


def test_a_fixed_vhd_is_only_seen_at_its_end(tmp_path):
    head, tail = head_and_tail(qemu_image(tmp_path, "vpc", "-o", "subformat=fixed"))
    assert formats.detect(head) == "raw", "a stream's head alone looks raw"
    with pytest.raises(formats.FormatMismatch, match="declared raw but it is a Hyper-V/Virtual PC vhd"):
        formats.check_tail("raw", tail)
    formats.check_tail("vhd", tail)


def test_qcow2_declared_for_raw_bytes_is_refused():
    with pytest.raises(formats.FormatMismatch, match="declared qcow2 but it is raw data"):
        formats.resolve("qcow2", os.urandom(4096))


def test_raw_declared_for_a_real_qcow2_is_refused(tmp_path):
    head, _ = head_and_tail(qemu_image(tmp_path, "qcow2"))
    with pytest.raises(formats.FormatMismatch, match="declared raw but it is a qcow2 image.*declare disk format qcow2"):
        formats.resolve("raw", head)


def test_ami_ari_aki_are_taken_by_declaration_unless_the_bytes_are_another_format(tmp_path):
    assert formats.resolve("aki", os.urandom(4096)) == "aki"
    assert formats.resolve("vdi", os.urandom(4096)) == "vdi"
    head, _ = head_and_tail(qemu_image(tmp_path, "qcow2"))
    with pytest.raises(formats.FormatMismatch, match="declared ami"):
        formats.resolve("ami", head)
