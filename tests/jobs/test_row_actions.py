"""Actions on one image row against the devcloud: make its copies' properties equal (a
property-sync job, no bytes copied), and rename one copy of a conflict from the conflicts page."""

from __future__ import annotations

import re

import pytest

from glint.audit.models import AuditRecord
from glint.inventory.models import Image, RepoInventory
from glint.inventory.poller import poll_repos
from glint.jobs.matrix import group_matrix
from glint.plans.services import property_differences
from tests.clients import client_for, make_user
from tests.jobs.helpers import run_in_process
from tests.jobs.images import delete_named, driver_for, images_named, upload
from tests.plans.helpers import row_of

pytestmark = [pytest.mark.devcloud, pytest.mark.django_db(transaction=True)]

KIB = 1024


def copies_of(devcloud, name: str) -> dict[str, tuple]:
    """``{cloud: (id, md5, hash, properties)}`` of the image called ``name`` in each cloud holding
    one."""
    return {
        cloud: (r.id, r.checksum, r.hash_value, dict(r.properties))
        for cloud, records in images_named(devcloud, name).items()
        for r in records
    }


def test_make_properties_equal_syncs_them_without_copying_bytes(
    devcloud, group_a, group_b, repos, image_name
):
    one, two, _three = repos
    first = upload(devcloud, "devcloud-1", image_name, 64 * KIB, seed="same")
    second = upload(devcloud, "devcloud-2", image_name, 64 * KIB, seed="same")
    with driver_for(devcloud, "devcloud-1") as cloud:
        cloud.set_properties(
            first, set={"os_distro": "rocky", "hw_disk_bus": "scsi", "min_ram": 512}
        )
    with driver_for(devcloud, "devcloud-2") as cloud:  # provenance differs by design: never synced
        cloud.set_properties(
            second, set={"os_distro": "centos", "build": "42", "glint_source_repo": "elsewhere"}
        )
    poll_repos(repos)
    before = copies_of(devcloud, image_name)
    row = row_of(group_a, image_name)
    member = client_for(make_user("Sync Member", group=group_a))

    page = member.get(f"/images/{row.id}/").content.decode()
    differing = re.search(
        r'<section class="property-differences">(.*?)</section>', page, re.DOTALL
    ).group(1)
    keys = re.findall(r"<tr><th>([^<]+)</th>", differing.partition("<tbody>")[2])
    assert keys == ["build", "hw_disk_bus", "min_ram", "os_distro"], (
        "provenance and Glance's fields left out"
    )
    for repo in ("devcloud-1", "devcloud-2"):
        assert f"Make properties equal (from {repo})" in differing

    outsider = client_for(make_user("Sync Outsider", group=group_b))
    url = f"/api/v1/images/{row.id}/sync-properties/"
    assert (
        outsider.post(url, {"source_repo": one.pk}, content_type="application/json").status_code
        == 404
    )
    response = member.post(url, {"source_repo": one.pk}, content_type="application/json")
    assert response.status_code == 202, response.content
    job = response.json()
    assert (job["kind"], [t["repo_name"] for t in job["targets"]]) == (
        "property-sync",
        ["devcloud-2"],
    )

    assert run_in_process(job["id"]) == "done"
    poll_repos(repos)
    after = copies_of(devcloud, image_name)
    assert {c: v[:3] for c, v in after.items()} == {c: v[:3] for c, v in before.items()}, (
        "same images, same bytes"
    )
    props = after["devcloud-2"][3]
    assert (props["os_distro"], props["hw_disk_bus"], "build" in props) == ("rocky", "scsi", False)
    assert props["glint_source_repo"] == "elsewhere", "provenance is the copy's own"
    assert (
        property_differences(list(Image.objects.filter(name=image_name).order_by("repo__name")))
        == []
    )
    again = member.post(
        f"/plans/sync-properties/{row_of(group_a, image_name).id}/",
        {"source_repo": two.pk},
        follow=True,
    ).content.decode()
    assert "Nothing to change" in again and "property-differences" not in again


def test_rename_one_copy_of_a_conflict(devcloud, group_a, group_b, repos, image_name):
    one = repos[0]
    taken, renamed = f"{image_name}-taken", f"{image_name}-renamed"
    try:
        first = upload(devcloud, "devcloud-1", image_name, 4 * KIB, seed="a")
        upload(
            devcloud, "devcloud-1", image_name, 4 * KIB, seed="b"
        )  # same name, other bytes: type 1
        upload(devcloud, "devcloud-1", taken, 4 * KIB)
        poll_repos(repos)
        conflict = next(c for c in group_matrix(group_a).conflicts if c.subject == image_name)
        conflict_id = f"{group_a.pk}-{conflict.key}"
        copy = Image.objects.get(repo=one, image_id=first)
        person = make_user("Rename Member", group=group_a)
        member = client_for(person)

        page = member.get(f"/images/conflicts/?group={group_a.pk}").content.decode()
        action = f"/plans/conflicts/{conflict_id}/rename/"
        assert page.count(f'action="{action}"') == 2, "a Rename form per copy"
        refused = member.post(
            action, {"image": copy.pk, "name": "  "}, follow=True
        ).content.decode()
        assert "Type the new name." in refused

        api = f"/api/v1/conflicts/{conflict_id}/rename/"
        for name, reason in (
            ("x" * 256, "at most 255 characters"),
            (taken, "already has an image called"),
            (image_name, "already called"),
        ):
            response = member.post(
                api, {"image": first, "name": name}, content_type="application/json"
            )
            assert response.status_code == 400 and reason in response.json()["detail"], (
                response.content
            )
        outsider = client_for(make_user("Rename Outsider", group=group_b))
        assert (
            outsider.post(
                api, {"image": first, "name": renamed}, content_type="application/json"
            ).status_code
            == 404
        )
        assert [i.name for i in images_named(devcloud, taken)["devcloud-1"]] == [taken], (
            "nothing renamed yet"
        )

        response = member.post(
            api, {"image": first, "name": renamed}, content_type="application/json"
        )
        assert response.status_code == 200, response.content
        assert [i.id for i in images_named(devcloud, renamed)["devcloud-1"]] == [first]
        assert RepoInventory.objects.get(repo=one).refresh_requested_at is not None, (
            "the repo is polled again"
        )
        done = AuditRecord.objects.get(action="image.rename", outcome="ok")
        assert (done.repo_name, done.details["to"], done.user_dn) == (
            "devcloud-1",
            renamed,
            person.dn,
        )
        poll_repos(repos)
        assert not any(c.subject == image_name for c in group_matrix(group_a).conflicts)
    finally:
        delete_named(devcloud, taken)
        delete_named(devcloud, renamed)
