"""Conflict policies, property sync and image references, on real clouds (devcloud)."""

from __future__ import annotations

import pytest

from glint.replication import (
    ConflictPolicy,
    CopySource,
    CopyTarget,
    NameConflict,
    PropertyRules,
    TargetOutcome,
    TargetState,
    copy_image,
    sync_properties,
)
from tests.replication.helpers import SOURCE, TARGETS, flip_byte

pytestmark = pytest.mark.devcloud

KIB = 1024
TARGET = TARGETS[0]


@pytest.fixture
def clash(clouds):
    """A source image, and an image of the same name with other content at the target."""
    name = clouds.name("clash")
    source_id = clouds.make_image(SOURCE, 40 * KIB, name=name, seed=1)
    old_id = clouds.make_image(TARGET, 50 * KIB, name=name, seed=2, visibility="community")
    return name, source_id, old_id


def _copy(clouds, source_id, policy):
    return copy_image(
        CopySource(clouds.driver(SOURCE), source_id, "r1"),
        [CopyTarget("t", clouds.driver(TARGET), policy=policy)],
    )


def test_report_policy_copies_nothing_and_names_the_clash(clouds, clash):
    name, source_id, old_id = clash
    target = _copy(clouds, source_id, ConflictPolicy.REPORT).targets["t"]
    assert target.state is TargetState.FAILED and isinstance(target.error, NameConflict)
    assert old_id in str(target.error) and "report" in str(target.error)
    assert [i.id for i in clouds.images(TARGET)] == [old_id]


def test_skip_policy_leaves_the_target_alone(clouds, clash):
    name, source_id, old_id = clash
    target = _copy(clouds, source_id, ConflictPolicy.SKIP).targets["t"]
    assert (target.state, target.outcome) == (TargetState.DONE, TargetOutcome.SKIPPED)
    assert [i.id for i in clouds.images(TARGET)] == [old_id]


def test_replace_policy_deletes_the_old_image_after_the_new_one_is_verified(clouds, clash):
    name, source_id, old_id = clash
    target = _copy(clouds, source_id, ConflictPolicy.REPLACE).targets["t"]
    assert target.outcome is TargetOutcome.COPIED and target.replaced_image_ids == [old_id]
    images = clouds.images(TARGET)
    assert [(i.id, i.name, i.status) for i in images] == [(target.image_id, name, "active")]


def test_replace_only_touches_the_old_images_it_is_given(clouds, clash):
    """A subscription's copy may replace only Glint's earlier copy: someone's image of the same
    name stays, and the target says so."""
    name, source_id, someones_id = clash
    glints_id = clouds.make_image(TARGET, 30 * KIB, name=name, seed=3)
    target = copy_image(
        CopySource(clouds.driver(SOURCE), source_id, "r1"),
        [
            CopyTarget(
                "t",
                clouds.driver(TARGET),
                policy=ConflictPolicy.REPLACE,
                replace_only=frozenset({glints_id}),
            )
        ],
    ).targets["t"]
    assert target.outcome is TargetOutcome.COPIED and target.replaced_image_ids == [glints_id]
    assert sorted(i.id for i in clouds.images(TARGET)) == sorted([target.image_id, someones_id])
    assert any(someones_id in warning and "was kept" in warning for warning in target.warnings)


def test_rename_old_policy_keeps_the_old_image_private_under_a_dated_name(clouds, clash):
    name, source_id, old_id = clash
    target = _copy(clouds, source_id, ConflictPolicy.RENAME_OLD).targets["t"]
    assert target.outcome is TargetOutcome.COPIED and target.renamed_image_ids == [old_id]
    images = {i.id: i for i in clouds.images(TARGET)}
    assert images[target.image_id].name == name
    assert images[old_id].name.startswith(f"{name}.old-")
    assert images[old_id].visibility == "private"


def test_replace_that_fails_midway_keeps_the_old_image(clouds, clash):
    """The new copy fails after its bytes were sent (the source's file was damaged in the
    Glance store, so the source verification fails): the old image is untouched."""
    name, source_id, old_id = clash
    flip_byte(clouds.devcloud.store_dir(SOURCE) / source_id, 100)
    target = _copy(clouds, source_id, ConflictPolicy.REPLACE).targets["t"]
    assert target.state is TargetState.FAILED, target
    images = clouds.images(TARGET)
    assert [(i.id, i.status) for i in images] == [(old_id, "active")], target


def test_property_sync_makes_properties_equal_without_copying_bytes(clouds):
    source_id = clouds.make_image(
        SOURCE, 8 * KIB, hw_disk_bus="virtio", os_distro="ubuntu", min_ram=64
    )
    result = copy_image(
        CopySource(clouds.driver(SOURCE), source_id, "r1"), [CopyTarget("t", clouds.driver(TARGET))]
    )
    copy_id = result.targets["t"].image_id
    with clouds.driver(SOURCE) as source:
        source.set_properties(
            source_id,
            set={"os_distro": "debian", "hw_vif_model": "e1000", "min_ram": 256, "tags": ["new"]},
            remove=["hw_disk_bus"],
        )
        record = source.get_image(source_id)
    with clouds.driver(TARGET) as target:
        before = target.get_image(copy_id)
        synced = sync_properties(record, target, copy_id)
        after = target.get_image(copy_id)
    assert synced.removed == ["hw_disk_bus"]
    assert {k: synced.set[k] for k in ("os_distro", "hw_vif_model", "min_ram", "tags")} == {
        "os_distro": "debian",
        "hw_vif_model": "e1000",
        "min_ram": 256,
        "tags": ["new"],
    }
    assert after.properties["os_distro"] == "debian"
    assert after.properties["hw_vif_model"] == "e1000"
    assert "hw_disk_bus" not in after.properties
    assert (after.min_ram, list(after.tags)) == (256, ["new"])
    # No bytes moved, and Glint's provenance survived.
    assert (after.hash_value, after.size) == (before.hash_value, before.size)
    assert after.properties["glint_source_id"] == source_id
    with clouds.driver(TARGET) as target:
        assert not sync_properties(record, target, copy_id).changed


def test_allowlist_narrows_what_travels(clouds):
    source_id = clouds.make_image(SOURCE, 4 * KIB, hw_disk_bus="virtio", site_note="x")
    result = copy_image(
        CopySource(clouds.driver(SOURCE), source_id, "r1"),
        [CopyTarget("t", clouds.driver(TARGET))],
        options=_options(PropertyRules(allow=("hw_*",))),
    )
    with clouds.driver(TARGET) as target:
        copy = target.get_image(result.targets["t"].image_id)
    assert copy.properties["hw_disk_bus"] == "virtio"
    assert "site_note" not in copy.properties


def _options(rules):
    from glint.replication import CopyOptions

    return CopyOptions(property_rules=rules)


def test_kernel_id_is_remapped_to_the_targets_copy_or_dropped_with_a_warning(clouds):
    kernel_id = clouds.make_image(
        SOURCE, 4 * KIB, name=clouds.name("kernel"), disk_format="aki", container_format="aki"
    )
    ramdisk_id = clouds.make_image(
        SOURCE,
        4 * KIB,
        name=clouds.name("ramdisk"),
        seed=3,
        disk_format="ari",
        container_format="ari",
    )
    image_id = clouds.make_image(
        SOURCE,
        8 * KIB,
        name=clouds.name("ami"),
        disk_format="ami",
        container_format="ami",
        kernel_id=kernel_id,
        ramdisk_id=ramdisk_id,
    )
    kernel_copy = copy_image(
        CopySource(clouds.driver(SOURCE), kernel_id, "r1"), [CopyTarget("t", clouds.driver(TARGET))]
    ).targets["t"]
    assert kernel_copy.outcome is TargetOutcome.COPIED
    result = copy_image(
        CopySource(clouds.driver(SOURCE), image_id, "r1"), [CopyTarget("t", clouds.driver(TARGET))]
    )
    target = result.targets["t"]
    assert target.outcome is TargetOutcome.COPIED
    with clouds.driver(TARGET) as driver:
        copy = driver.get_image(target.image_id)
    assert copy.properties["kernel_id"] == kernel_copy.image_id
    assert "ramdisk_id" not in copy.properties
    assert any("ramdisk_id" in w and ramdisk_id in w for w in target.warnings)


def test_visibility_the_project_may_not_set_leaves_the_copy_private_with_a_warning(clouds):
    """Glance lets only admins publish: asking for "public" as a project member still gives a
    verified copy, private, and says why."""
    source_id = clouds.make_image(SOURCE, 4 * KIB)
    result = copy_image(
        CopySource(clouds.driver(SOURCE), source_id, "r1"),
        [CopyTarget("t", clouds.driver(TARGET), visibility="public")],
    )
    target = result.targets["t"]
    assert target.outcome is TargetOutcome.COPIED
    with clouds.driver(TARGET) as driver:
        copy = driver.get_image(target.image_id)
    assert copy.visibility == "private"
    assert copy.properties["glint_sha256"] == result.sha256
    assert any("may not make images public" in w for w in target.warnings)
