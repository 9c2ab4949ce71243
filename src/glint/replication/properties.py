"""Which of an image's attributes travel with a copy, and the provenance Glint adds.

A copy carries what makes the image boot the same way elsewhere (formats, ``min_disk``,
``min_ram``, tags, ``architecture``, ``hw_*``, ``os_*``, ``trait:*``) and the owner's own
metadata. It never carries what only means something in the source cloud or would be a lie in
the target: Glance's bookkeeping (``os_glance_*``, stored hashes, locations, owner, timestamps),
signatures and encryption keys that do not match the target's key manager, references to
instances and users of the source cloud, and Glint's and openstacksdk's own markers (rewritten
for the copy). ``kernel_id``/``ramdisk_id`` name images of the source cloud, so they are remapped
to the target's copies of those images or dropped with a warning.

The rules are fnmatch patterns: a property travels when it matches an allow pattern and no deny
pattern. The default allowlist is ``*`` because people tag images with their own keys (an
experiment, a build id) and losing those silently is worse than carrying one more string; a
group that wants less narrows the allowlist.
"""

from __future__ import annotations

import dataclasses
import fnmatch
from collections.abc import Mapping
from typing import Any

from glint.clouds import CloudDriver, ImageRecord

__all__ = [
    "PropertyRules",
    "PropertySyncResult",
    "copy_fields",
    "provenance",
    "rename_image",
    "sync_properties",
    "GLINT_MADE_FROM",
    "GLINT_SHA256",
    "GLINT_SOURCE_REPO",
    "GLINT_SOURCE_ID",
    "IMAGE_REFERENCES",
]

GLINT_SHA256 = "glint_sha256"
#: ``sha256:<hex>`` of the bytes a copy was converted from (docs/architecture.md "Conversions"):
#: the content the copy stands for when it stores other bytes (a qcow2 made raw for EC2).
GLINT_MADE_FROM = "glint_made_from"
GLINT_SOURCE_REPO = "glint_source_repo"
GLINT_SOURCE_ID = "glint_source_id"
SDK_SHA256 = "owner_specified.openstack.sha256"
SDK_MD5 = "owner_specified.openstack.md5"
SDK_OBJECT = "owner_specified.openstack.object"

#: Properties whose value is the id of another image in the same cloud.
IMAGE_REFERENCES = ("kernel_id", "ramdisk_id")

DEFAULT_ALLOW: tuple[str, ...] = ("*",)

DEFAULT_DENY: tuple[str, ...] = (
    # Glance's own bookkeeping: set by the target cloud itself.
    "os_glance_*",
    "os_hash_algo",
    "os_hash_value",
    "checksum",
    "owner",
    "locations",
    "direct_url",
    "stores",
    "created_at",
    "updated_at",
    "size",
    "virtual_size",
    "status",
    # Security material tied to the source's key manager.
    "img_signature*",
    "cinder_encryption_key_id",
    "cinder_encryption_key_deletion_policy",
    # References to the source cloud's instances, users and volumes (snapshot metadata).
    "instance_uuid",
    "base_image_ref",
    "image_location",
    "image_state",
    "image_type",
    "user_id",
    "owner_id",
    "owner_project_name",
    "owner_user_name",
    "boot_roles",
    "block_device_mapping",
    "bdm_v2",
    "root_device_name",
    # Markers rewritten for the copy, and image references remapped separately.
    "glint_*",
    "owner_specified.openstack.*",
    *IMAGE_REFERENCES,
)


@dataclasses.dataclass(frozen=True)
class PropertyRules:
    """Allow and deny patterns (fnmatch) for custom properties; deny wins.

    Fields:
        allow: A property travels only if it matches one of these.
        deny: A property never travels if it matches one of these.
    """

    allow: tuple[str, ...] = DEFAULT_ALLOW
    deny: tuple[str, ...] = DEFAULT_DENY

    def carries(self, key: str) -> bool:
        """Whether property ``key`` travels with a copy."""
        return any(fnmatch.fnmatchcase(key, p) for p in self.allow) and not any(
            fnmatch.fnmatchcase(key, p) for p in self.deny
        )


def copy_fields(
    source: ImageRecord,
    *,
    rules: PropertyRules | None = None,
    name: str | None = None,
    image_map: Mapping[str, str] | None = None,
) -> tuple[dict[str, Any], list[str]]:
    """The fields a copy of ``source`` is created with (visibility and provenance aside).

    Args:
        source: The source image.
        rules: Which custom properties travel (None: the defaults).
        name: The copy's name (None: the source's).
        image_map: Source image id → the target's copy of it, for ``kernel_id``/``ramdisk_id``.

    Returns:
        The fields for :meth:`CloudDriver.create_image`, and warnings for references dropped.
    """
    rules = rules or PropertyRules()
    fields: dict[str, Any] = {
        "name": name if name is not None else source.name,
        "disk_format": source.disk_format,
        "container_format": source.container_format,
        "min_disk": source.min_disk,
        "min_ram": source.min_ram,
        "tags": list(source.tags),
    }
    fields = {k: v for k, v in fields.items() if v is not None}
    if source.os_hidden:
        fields["os_hidden"] = True
    fields.update({k: _text(v) for k, v in source.properties.items() if rules.carries(k)})
    references, warnings = _remapped_references(source, image_map or {})
    fields.update(references)
    return fields, warnings


def _remapped_references(
    source: ImageRecord, image_map: Mapping[str, str]
) -> tuple[dict[str, str], list[str]]:
    mapped: dict[str, str] = {}
    warnings = []
    for key in IMAGE_REFERENCES:
        ref = source.properties.get(key)
        if not ref:
            continue
        if ref in image_map:
            mapped[key] = image_map[ref]
        else:
            warnings.append(
                f"{key} {ref} was dropped: the target has no verified copy of that image; copy "
                f"it first, then sync properties"
            )
    return mapped, warnings


def provenance(source_repo: str, source_id: str) -> dict[str, str]:
    """The markers a copy carries from its creation, before any byte is written.

    They tie the copy to its source in polls and let a reconciler recognise a Glint image stuck
    in ``queued``/``saving``. The content markers follow in :func:`content_markers`.
    """
    return {GLINT_SOURCE_REPO: source_repo, GLINT_SOURCE_ID: source_id}


def content_markers(
    name: str | None, sha256: str, md5: str | None, made_from: str | None = None
) -> dict[str, str]:
    """The markers set once a copy is verified: Glint's sha256 of the bytes the copy stores,
    what they were converted from (``made_from``, if they were), and openstacksdk's
    ``owner_specified.openstack.*`` so SDK tools see the copy as current."""
    markers = {GLINT_SHA256: sha256, SDK_SHA256: sha256, SDK_OBJECT: f"images/{name or ''}"}
    if md5:
        markers[SDK_MD5] = md5
    if made_from:
        markers[GLINT_MADE_FROM] = made_from
    return markers


def _text(value: Any) -> str:
    """Glance stores custom properties as strings."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else str(value)


# Property sync


@dataclasses.dataclass
class PropertySyncResult:
    """What :func:`sync_properties` changed on the target.

    Fields:
        image_id: The target image.
        set: Fields given new values.
        removed: Properties removed.
        warnings: References that could not be remapped.
    """

    image_id: str
    set: dict[str, Any]
    removed: list[str]
    warnings: list[str]

    @property
    def changed(self) -> bool:
        return bool(self.set or self.removed)


#: Core fields a sync makes equal. Name and formats stay: a rename is a person's decision, and
#: Glance refuses format changes once an image has data.
_SYNCED_CORE = ("min_disk", "min_ram", "tags", "os_hidden")


def sync_properties(
    source: ImageRecord,
    target: CloudDriver,
    target_image_id: str,
    *,
    rules: PropertyRules | None = None,
    image_map: Mapping[str, str] | None = None,
) -> PropertySyncResult:
    """Make a copy's properties equal to its source's, without copying bytes.

    Only properties the rules carry are touched: the target's own bookkeeping, provenance and
    denied keys stay as they are.

    Args:
        source: The source image's current record.
        target: A driver for the copy's repo.
        target_image_id: The copy.
        rules: As for :func:`copy_fields`.
        image_map: As for :func:`copy_fields`.

    Returns:
        What changed.

    Raises:
        CloudError: Reading or updating the target failed.
    """
    rules = rules or PropertyRules()
    desired, warnings = copy_fields(source, rules=rules, image_map=image_map)
    current = target.get_image(target_image_id)
    have: dict[str, Any] = {
        "min_disk": current.min_disk,
        "min_ram": current.min_ram,
        "tags": sorted(current.tags),
        "os_hidden": current.os_hidden,
        **{k: _text(v) for k, v in current.properties.items()},
    }
    want = {k: desired.get(k, False if k == "os_hidden" else None) for k in _SYNCED_CORE}
    want["tags"] = sorted(want["tags"] or ())
    want.update(
        {
            k: v
            for k, v in desired.items()
            if k not in ("name", "disk_format", "container_format", *_SYNCED_CORE)
        }
    )
    changes = {k: v for k, v in want.items() if v is not None and have.get(k) != v}
    removed = sorted(
        k
        for k in current.properties
        if k not in want and (rules.carries(k) or k in IMAGE_REFERENCES)
    )
    if changes or removed:
        target.set_properties(target_image_id, set=changes, remove=removed)
    return PropertySyncResult(target_image_id, changes, removed, warnings)


def rename_image(driver: CloudDriver, image_id: str, name: str) -> None:
    """Give one image a new name in place (no bytes move; a person chose the name).

    Raises:
        CloudError: The cloud refused or failed.
    """
    driver.set_properties(image_id, set={"name": name})
