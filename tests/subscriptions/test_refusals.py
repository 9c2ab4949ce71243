"""Against devcloud: a refused list changes nothing. Its images in force are in two clouds; each bad
list that follows (a rollback, the same version with other content, an expired list, a revoked
endorser, another signer, a tampered signature, a huge list, a signed list that is not JSON) is
refused with its reason on the subscription, and creates no job, no upload and no image, in
Glint's database or in the clouds, and the previous list stays in force."""

from __future__ import annotations

import datetime as dt
import os

import pytest

from glint.inventory.models import Image
from glint.inventory.poller import poll_repos
from glint.jobs.models import Job
from glint.transfers.models import Upload
from tests.clients import client_for, make_user
from tests.devcloud_repos import add_devcloud_repo
from tests.jobs.images import images_named
from tests.subscriptions.helpers import LIST_PATH, publish, refreshed, run_queued_jobs, subscribe
from tests.subscriptions.lists import image

pytestmark = [pytest.mark.devcloud, pytest.mark.django_db(transaction=True)]

CLOUDS = ("devcloud-2", "devcloud-3")


def in_clouds(devcloud, names) -> dict:
    """Every image of ``names`` in ``CLOUDS``: (cloud, name) → sorted (id, status, checksum)."""
    found = {}
    for name in names:
        for cloud, images in images_named(devcloud, name).items():
            if cloud in CLOUDS:
                found[cloud, name] = sorted((i.id, i.status, i.hash_value) for i in images)
    return found


def in_glint(repos) -> list:
    poll_repos(repos)
    return sorted(Image.objects.filter(repo__in=repos).values_list("repo_id", "name", "checksum"))


@pytest.fixture
def in_two_clouds(devcloud, group_a, prefix):
    """(manager, the group's repos in ``CLOUDS``, the name prefix, the image names to clean up)."""
    name_prefix, names = prefix
    names += [f"{name_prefix}one", f"{name_prefix}two"]
    repos = [add_devcloud_repo(devcloud, group_a, cloud) for cloud in CLOUDS]
    return make_user("List Manager", group=group_a, role="manager"), repos, name_prefix, names


def test_a_refused_list_creates_no_job_upload_or_image_and_keeps_the_list_in_force(
    devcloud, group_a, trust, web, in_two_clouds
):
    _directory, endorser, revoked, other = trust
    manager, repos, name_prefix, names = in_two_clouds
    images, two = [image("one", os.urandom(64 * 1024))], image("two", os.urandom(32 * 1024))
    publish(web, endorser, images, version="5")
    subscription = subscribe(manager, group_a, repos, web, endorser, name_prefix=name_prefix)
    assert refreshed(subscription).ok
    assert [job.state for job in run_queued_jobs()] == ["done"]
    clouds_before, glint_before = in_clouds(devcloud, names), in_glint(repos)
    assert [status for (_id, status, _sum) in clouds_before[CLOUDS[0], names[0]]] == ["active"]
    jobs, uploads = Job.objects.count(), Upload.objects.count()
    subscription.refresh_from_db()
    document = subscription.list_document

    cases = [
        (
            "version 4 is lower than the version 5",
            lambda: publish(web, endorser, images, version="4"),
        ),
        (
            "version 5 is the one accepted before, but its content differs",
            lambda: publish(web, endorser, [*images, two], version="5"),
        ),
        (
            "The list expired on",
            lambda: publish(
                web,
                endorser,
                [*images, two],
                version="6",
                expires=dt.datetime.now(dt.UTC) - dt.timedelta(hours=1),
            ),
        ),
        ("certificate revoked", lambda: publish(web, revoked, [*images, two], version="6")),
        (
            "not by the endorser this subscription trusts",
            lambda: publish(web, other, [*images, two], version="6"),
        ),
        (
            "signature does not verify",
            lambda: web.add(
                LIST_PATH,
                publish(web, endorser, [*images, two], version="6").replace(b'"6"', b'"9"'),
            ),
        ),
        ("larger than 4 MiB", lambda: web.add(LIST_PATH, b"x" * (4 * 2**20 + 1))),
        ("The list is not JSON", lambda: web.add(LIST_PATH, endorser.sign(b'{"hv:imagelist"'))),
    ]
    for reason, change in cases:
        change()
        result = refreshed(subscription)

        assert not result.ok and reason in result.error, (reason, result.error)
        subscription.refresh_from_db()
        assert (subscription.last_refresh_ok, subscription.last_error) == (False, result.error)
        assert subscription.list_version == "5" and subscription.list_document == document, (
            f"{reason}: the last good list stays in force"
        )
        assert (Job.objects.count(), Upload.objects.count()) == (jobs, uploads), (
            f"{reason}: no job and no upload"
        )
        page = client_for(manager).get(f"/subscriptions/{subscription.pk}/").content.decode()
        assert "refused" in page and reason.split(":")[0] in page, reason

    assert in_glint(repos) == glint_before, "no image came or went in Glint's inventory"
    assert in_clouds(devcloud, names) == clouds_before, "no image came or went in the clouds"
