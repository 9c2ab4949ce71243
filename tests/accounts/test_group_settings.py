"""A group's format for copies from raw-only clouds (issue #14), set by an admin through the API
and the group edit page, refused when it is no format Glint stores, and audited like the group's
other settings."""

from __future__ import annotations

import pytest

from glint.audit.models import AuditRecord
from tests.clients import client_for, make_user
from tests.repos.helpers import post_json


@pytest.mark.django_db
def test_an_admin_sets_the_format_of_copies_from_raw_only_clouds(group_a):
    admin = client_for(make_user("Format Admin", admin=True))
    assert group_a.raw_copies_format == "raw"  # EC2's bytes as they are, unless asked
    url = f"/api/v1/groups/{group_a.pk}/"

    response = post_json(admin, url, {"raw_copies_format": "qcow2"}, "patch")
    assert response.status_code == 200, response.content
    assert admin.get(url).json()["raw_copies_format"] == "qcow2"
    group_a.refresh_from_db()
    assert (group_a.raw_copies_format, group_a.copies_run_at) == ("qcow2", "target")
    record = AuditRecord.objects.filter(action="group.update").latest("pk")
    assert record.details["raw_copies_format"] == "qcow2"

    refused = post_json(admin, url, {"raw_copies_format": "vmdk"}, "patch")
    assert refused.status_code == 400 and "raw_copies_format" in refused.json()

    page = admin.get(f"/accounts/groups/{group_a.pk}/edit/").content.decode()
    assert 'name="raw_copies_format"' in page and "Copies from raw-only clouds" in page
    # A form without the field keeps the setting; one with it changes it.
    assert admin.post(f"/accounts/groups/{group_a.pk}/edit/", {"name": "alpha"}).status_code == 302
    group_a.refresh_from_db()
    assert group_a.raw_copies_format == "qcow2"
    saved = admin.post(
        f"/accounts/groups/{group_a.pk}/edit/", {"name": "alpha", "raw_copies_format": "raw"}
    )
    assert saved.status_code == 302
    group_a.refresh_from_db()
    assert group_a.raw_copies_format == "raw"
    record = AuditRecord.objects.filter(action="group.update").latest("pk")
    assert record.details["raw_copies_format"] == "raw"


@pytest.mark.django_db
def test_a_member_cannot_change_the_format(group_a):
    manager = client_for(make_user("Format Manager", group=group_a, role="manager"))
    response = post_json(
        manager, f"/api/v1/groups/{group_a.pk}/", {"raw_copies_format": "qcow2"}, "patch"
    )
    assert response.status_code == 403
    group_a.refresh_from_db()
    assert group_a.raw_copies_format == "raw"
