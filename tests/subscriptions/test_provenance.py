"""Against devcloud: a subscription's image is fetched once by Glint, whatever ``cloud_pull``
says, and fanned out to every target; Glint's copies are known by provenance (what its own
upload jobs created), so neither an image leaving the list nor an update's ``replace`` deletes a
same-name image someone else made, even one carrying the list's properties; two subscriptions of
the same content never upload it twice to a repo."""

from __future__ import annotations

import os

import pytest

from glint.inventory.poller import poll_repos
from glint.subscriptions.models import SubscribedImage
from tests.clients import make_user
from tests.devcloud_repos import add_devcloud_repo
from tests.jobs.images import driver_for
from tests.subscriptions.helpers import publish, refreshed, run_queued_jobs, subscribe
from tests.subscriptions.lists import ListedImage, image
from tests.subscriptions.test_keeping_in_step import CLOUDS, assert_holds, by_cloud

pytestmark = [pytest.mark.devcloud, pytest.mark.django_db(transaction=True)]

KiB = 1024


def foreign_image(devcloud, cloud: str, name: str, data: bytes, **properties) -> str:
    """Someone's own image, made without Glint; its id."""
    with driver_for(devcloud, cloud) as driver:
        record = driver.create_and_write(
            {"name": name, "disk_format": "raw", "container_format": "bare", **properties},
            iter([data]),
            size=len(data),
        )
    return record.id


def gets(web, listed: ListedImage) -> list[str]:
    """The User-Agent of every request for ``listed``'s bytes."""
    return web.agents(f"/images/{listed.identifier}")


def test_glint_fetches_each_image_once_and_deletes_only_its_own_copies(
    devcloud, group_a, trust, web, prefix, settings
):
    _directory, endorser, _revoked, _other = trust
    name_prefix, names = prefix
    # The clouds may fetch links themselves here; a subscription's image still goes through Glint.
    settings.GLINT_CLOUD_PULL = True
    manager = make_user("List Manager", group=group_a, role="manager")
    repos = [add_devcloud_repo(devcloud, group_a, cloud) for cloud in CLOUDS]
    alpha, beta = image("alpha", os.urandom(192 * KiB)), image("beta", os.urandom(128 * KiB))
    alpha_name, beta_name = f"{name_prefix}alpha", f"{name_prefix}beta"
    names += [alpha_name, beta_name]
    publish(web, endorser, [alpha, beta], version="1")
    subscription = subscribe(manager, group_a, repos, web, endorser, name_prefix=name_prefix)
    assert refreshed(subscription).ok
    ended = run_queued_jobs()
    assert [job.state for job in ended] == ["done", "done"], [job.error for job in ended]
    assert gets(web, alpha) == ["Glint"] and gets(web, beta) == ["Glint"], (
        "each image is fetched once, by Glint, for both target repos"
    )
    for cloud in CLOUDS:
        (copy,) = by_cloud(devcloud, alpha_name)[cloud]
        assert_holds(copy, alpha)
    # Someone's images with Glint's names and the list's very properties: in devcloud-2 one named
    # like alpha (other bytes), in devcloud-3 one named like beta (other bytes).
    lookalike = {
        "imagelist_id": subscription.list_identifier,
        "imagelist_image": beta.identifier,
        "imagelist_sha512": "0" * 128,
    }
    someones_alpha = foreign_image(devcloud, "devcloud-2", alpha_name, b"a" * 4096)
    someones_beta = foreign_image(devcloud, "devcloud-3", beta_name, b"b" * 4096, **lookalike)
    poll_repos(repos)

    # Version 2: alpha updated (same name: the subscription's policy is replace), beta gone.
    alpha2 = ListedImage(alpha.identifier, "alpha", os.urandom(160 * KiB), version="2")
    publish(web, endorser, [alpha2], version="2")
    update = refreshed(subscription)

    assert update.ok, update.error
    assert update.removed == [beta_name]
    ended = run_queued_jobs()
    assert all(job.state == "done" for job in ended), [(job.kind, job.error) for job in ended]
    assert gets(web, alpha) == ["Glint", "Glint"], "one fetch per version of the image"
    poll_repos(repos)
    for cloud in CLOUDS:
        alphas = by_cloud(devcloud, alpha_name)[cloud]
        (copy,) = [c for c in alphas if c.id != someones_alpha]
        assert_holds(copy, alpha2)  # Glint's old copy was replaced once the new one was in
    assert [c.id for c in by_cloud(devcloud, alpha_name)["devcloud-2"] if c.status == "active"]
    assert someones_alpha in {c.id for c in by_cloud(devcloud, alpha_name)["devcloud-2"]}, (
        "replace deletes only Glint's earlier copy, never someone's image of the same name"
    )
    assert [c.id for c in by_cloud(devcloud, beta_name)["devcloud-3"]] == [someones_beta], (
        "Glint's copy of beta is gone, someone's image carrying the list's properties is not"
    )
    assert not by_cloud(devcloud, beta_name)["devcloud-2"]


def test_two_subscriptions_of_the_same_content_upload_it_once_to_a_repo(
    devcloud, group_a, trust, web, prefix
):
    _directory, endorser, _revoked, _other = trust
    name_prefix, names = prefix
    manager = make_user("List Manager", group=group_a, role="manager")
    two, three = (add_devcloud_repo(devcloud, group_a, cloud) for cloud in CLOUDS)
    alpha = image("alpha", os.urandom(128 * KiB))
    names.append(f"{name_prefix}alpha")
    publish(web, endorser, [alpha])
    first = subscribe(manager, group_a, [two], web, endorser, name_prefix=name_prefix)
    second = subscribe(
        manager, group_a, [two, three], web, endorser, name="same list", name_prefix=name_prefix
    )

    assert refreshed(first).fetching == {f"{name_prefix}alpha": ["devcloud-2"]}
    assert refreshed(second).fetching == {f"{name_prefix}alpha": ["devcloud-2", "devcloud-3"]}
    (upload_of_second,) = [f.upload for f in SubscribedImage.objects.filter(subscription=second)]
    assert [r.name for r in upload_of_second.targets.all()] == ["devcloud-3"], (
        "the other subscription's upload to devcloud-2 is under way: not a second one"
    )
    ended = run_queued_jobs()
    assert [job.state for job in ended] == ["done", "done"], [job.error for job in ended]
    for cloud in CLOUDS:
        (copy,) = by_cloud(devcloud, f"{name_prefix}alpha")[cloud]
        assert_holds(copy, alpha)
    poll_repos([two, three])
    again = refreshed(second)
    assert (again.present, again.fetching) == ([f"{name_prefix}alpha"], {}), (
        "content already in the repos is left alone"
    )
    assert SubscribedImage.objects.count() == 2
