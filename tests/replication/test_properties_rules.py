"""The property rules as a pure function (no cloud needed: Glance refuses to store most of the
denied keys on a source image, so only a record built here can carry them all)."""

from __future__ import annotations

from glint.clouds import ImageRecord
from glint.replication import PropertyRules, copy_fields


def _record(**properties) -> ImageRecord:
    return ImageRecord(
        id="src",
        name="alma",
        status="active",
        disk_format="qcow2",
        container_format="bare",
        min_disk=3,
        min_ram=512,
        tags=("a",),
        properties=properties,
    )


def test_denied_properties_never_travel_and_portable_ones_do():
    fields, warnings = copy_fields(
        _record(
            os_glance_importing_to_stores="file",
            os_glance_failed_import="",
            img_signature="x",
            img_signature_certificate_uuid="y",
            cinder_encryption_key_id="k",
            instance_uuid="i",
            user_id="u",
            glint_sha256="old",
            **{"owner_specified.openstack.md5": "old", "trait:CUSTOM_GPU": "required"},
            hw_firmware_type="uefi",
            os_distro="almalinux",
            architecture="x86_64",
            build="42",
        )
    )
    assert warnings == []
    assert {k: v for k, v in fields.items() if k not in ("name", "tags")} == {
        "disk_format": "qcow2",
        "container_format": "bare",
        "min_disk": 3,
        "min_ram": 512,
        "trait:CUSTOM_GPU": "required",
        "hw_firmware_type": "uefi",
        "os_distro": "almalinux",
        "architecture": "x86_64",
        "build": "42",
    }


def test_kernel_id_is_remapped_or_dropped_with_a_warning():
    record = _record(kernel_id="k-src", ramdisk_id="r-src")
    fields, warnings = copy_fields(record, image_map={"k-src": "k-dst"})
    assert fields["kernel_id"] == "k-dst" and "ramdisk_id" not in fields
    assert len(warnings) == 1 and "ramdisk_id r-src was dropped" in warnings[0]


def test_allowlist_narrows_and_deny_wins():
    rules = PropertyRules(allow=("hw_*", "os_*"))
    assert rules.carries("hw_disk_bus") and rules.carries("os_distro")
    assert not rules.carries("build") and not rules.carries("os_glance_x")
