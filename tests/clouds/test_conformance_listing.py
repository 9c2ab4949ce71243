"""Conformance: a listing shows everything the project can see, once; properties round-trip.

docs/architecture.md "Listing": visibility=all plus what that leaves out (hidden images, community
images of other projects, shared images pending acceptance), each with owner, visibility,
status and protected flag. A second project of the same cloud owns the foreign images.
"""

from __future__ import annotations

import pytest

from glint.clouds import Forbidden
from tests.clouds.helpers import unique_name

pytestmark = pytest.mark.devcloud


@pytest.mark.kinds("openstack", why="Glance's visibilities; EC2's listing: test_ec2_driver.py")
def test_listing_includes_hidden_community_and_pending_shared(target, new_record):
    if target.other is None:
        pytest.skip(f"{target.variant.fixture} has no second project")
    me = target.driver.check()
    them = target.other.check()
    assert me.project_id != them.project_id

    mine = new_record(
        "mine", visibility="private", tags=["a", "b"], min_disk=1, glint_source_repo="repo-7"
    )
    hidden = new_record("hidden", os_hidden=True)
    community = new_record("community", driver=target.other, visibility="community")
    shared = new_record("shared", driver=target.other, visibility="shared")
    target.kit.share(target.other_cloud, shared.id, me.project_id)
    private = new_record("private", driver=target.other)

    images = target.driver.list_images(page_size=2)  # several pages per query
    ids = [i.id for i in images]
    assert len(ids) == len(set(ids)), "an image is listed twice"
    by_id = {i.id: i for i in images}

    assert private.id not in by_id
    got = by_id[mine.id]
    assert (got.owner, got.visibility, got.status, got.protected) == (
        me.project_id,
        "private",
        "queued",
        False,
    )
    assert set(got.tags) == {"a", "b"} and got.min_disk == 1
    assert got.properties["glint_source_repo"] == "repo-7"
    assert got.member_status is None
    assert by_id[hidden.id].os_hidden is True
    assert (by_id[community.id].visibility, by_id[community.id].owner) == (
        "community",
        them.project_id,
    )
    got = by_id[shared.id]
    assert (got.visibility, got.owner, got.member_status) == ("shared", them.project_id, "pending")
    assert target.driver.get_image(shared.id).member_status == "pending"


def test_set_and_remove_properties(target, new_record):
    record = new_record("props", glint_a="1", glint_b="2")
    updated = target.driver.set_properties(
        record.id,
        set={"glint_a": "changed", "glint_c": "3"},
        remove=["glint_b", "glint_never_set"],
    )
    assert updated.properties.get("glint_a") == "changed"
    assert updated.properties.get("glint_c") == "3"
    assert "glint_b" not in updated.properties
    assert target.driver.get_image(record.id) == updated

    assert target.driver.set_properties(record.id) == updated  # nothing to do


def test_rename_through_set_properties(target, new_record):
    """The engine renames a copy through ``set_properties(set={"name": ...})``."""
    record = new_record("rename")
    updated = target.driver.set_properties(record.id, set={"name": record.name + "-renamed"})
    assert updated.name == record.name + "-renamed"
    assert target.driver.get_image(record.id).name == updated.name


@pytest.mark.kinds("openstack", why="Glint's EC2 kind keeps no deregistration protection")
def test_protected_image_cannot_be_deleted(target, new_record):
    record = new_record("protected", protected=True)
    with pytest.raises(Forbidden) as info:
        target.driver.delete(record.id)
    assert info.value.code == "forbidden"
    assert target.driver.get_image(record.id).protected is True


def test_capabilities(target):
    """What the engine picks its strategy by: OpenStack imports from a URL and takes streams of
    unknown length; EC2 writes in one step; both resume reads."""
    caps = target.driver.capabilities()
    expected = target.kit.capabilities
    assert set(expected.import_methods) <= set(caps.import_methods)
    assert (caps.can_stream_write, caps.can_range_read, caps.writes_in_one_step) == (
        expected.can_stream_write,
        expected.can_range_read,
        expected.writes_in_one_step,
    )


@pytest.mark.kinds("openstack", why="an EC2 AMI is created with its data (create_and_write)")
def test_create_image_fields(target, new_record):
    name = unique_name("fields")
    record = new_record("x", name=name, disk_format="qcow2", min_ram=512, tags=("t1",))
    assert (record.name, record.disk_format, record.container_format) == (name, "qcow2", "bare")
    assert (record.min_ram, record.tags, record.size) == (512, ("t1",), None)
    assert record.visibility == "shared" and record.status == "queued"  # Glance's default
