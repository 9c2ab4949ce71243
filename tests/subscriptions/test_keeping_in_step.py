"""Against devcloud: a subscription brings its list's images into every target repo, verified;
a new list version adds and updates them (the old copy goes only once the new one is verified);
an image that leaves the list loses Glint's copies and nothing else; an image whose bytes do not
match its list is kept nowhere. (A refused list changing nothing: ``test_refusals``.)"""

from __future__ import annotations

import hashlib
import os

import pytest

from glint.inventory.poller import poll_repos
from glint.jobs.matrix import group_matrix
from glint.matrix.planning import Change
from glint.plans import services as plans
from glint.subscriptions.models import SubscribedImage
from tests.clients import client_for, make_user
from tests.devcloud_repos import add_devcloud_repo
from tests.jobs.images import driver_for, images_named
from tests.plans.helpers import add_repo, row_of, version
from tests.subscriptions.helpers import (
    glint_copy,
    publish,
    refreshed,
    run_queued_jobs,
    subscribe,
)
from tests.subscriptions.lists import ListedImage, image

pytestmark = [pytest.mark.devcloud, pytest.mark.django_db(transaction=True)]

KiB = 1024
CLOUDS = ("devcloud-2", "devcloud-3")


def by_cloud(devcloud, name: str) -> dict[str, list]:
    return {
        cloud: found for cloud, found in images_named(devcloud, name).items() if cloud in CLOUDS
    }


def assert_holds(copy, listed: ListedImage) -> None:
    """``copy`` is active and holds exactly ``listed``'s bytes, by the cloud's own hash."""
    algo = copy.hash_algo or "md5"
    expected = hashlib.new(algo, listed.data).hexdigest()
    assert copy.status == "active" and copy.hash_value == expected, (copy, listed.title)
    assert copy.properties["imagelist_sha512"] == listed.sha512


def test_a_subscription_keeps_the_repos_in_step_with_its_list(
    devcloud, group_a, trust, web, prefix
):
    _directory, endorser, _revoked, _other = trust
    name_prefix, names = prefix
    manager = make_user("List Manager", group=group_a, role="manager")
    repos = [add_devcloud_repo(devcloud, group_a, cloud) for cloud in CLOUDS]
    alpha, beta = image("alpha", os.urandom(256 * KiB)), image("beta", os.urandom(192 * KiB))
    names += [f"{name_prefix}alpha", f"{name_prefix}beta", f"{name_prefix}gamma", "users-own"]
    # Someone's own image with beta's bytes in devcloud-2: that repo already has the content.
    upload_bytes(devcloud, "devcloud-2", "users-own", beta.data)
    poll_repos(repos)
    publish(web, endorser, [alpha, beta], version="1")

    subscription = subscribe(manager, group_a, repos, web, endorser, name_prefix=name_prefix)
    result = refreshed(subscription)

    assert result.ok, result.error
    assert result.fetching == {
        f"{name_prefix}alpha": ["devcloud-2", "devcloud-3"],
        f"{name_prefix}beta": ["devcloud-3"],
    }, "a repo that already holds the content is left alone"
    ended = run_queued_jobs()
    assert [job.state for job in ended] == ["done", "done"], [job.error for job in ended]
    for listed, clouds in ((alpha, CLOUDS), (beta, ("devcloud-3",))):
        for cloud in clouds:
            (copy,) = by_cloud(devcloud, f"{name_prefix}{listed.title}")[cloud]
            assert_holds(copy, listed)
            assert copy.properties.get("imagelist_image") == listed.identifier, copy.properties
            assert copy.properties["imagelist_id"] == subscription.list_identifier
            assert (copy.properties["imagelist_os"], copy.properties["architecture"]) == (
                "Linux",
                "x86_64",
            )
    poll_repos(repos)
    assert_the_matrix_shows_the_list(group_a, manager, subscription, f"{name_prefix}alpha", repos)
    again = refreshed(subscription)
    assert (
        again.ok
        and not again.fetching
        and sorted(again.present) == sorted([f"{name_prefix}alpha", f"{name_prefix}beta"])
    ), "nothing to do once the repos hold the list"
    assert SubscribedImage.objects.filter(subscription=subscription).count() == 2

    # Version 2: alpha updated, beta gone, gamma new.
    alpha2 = ListedImage(alpha.identifier, "alpha", os.urandom(160 * KiB), version="2")
    gamma = image("gamma", os.urandom(128 * KiB))
    publish(web, endorser, [alpha2, gamma], version="2")
    update = refreshed(subscription)

    assert update.ok, update.error
    assert set(update.fetching) == {f"{name_prefix}alpha", f"{name_prefix}gamma"}
    assert update.removed == [f"{name_prefix}beta"]
    ended = run_queued_jobs()
    assert {job.kind for job in ended} == {"upload", "delete"}
    assert all(job.state == "done" for job in ended), [(job.kind, job.error) for job in ended]
    for cloud in CLOUDS:
        (copy,) = by_cloud(devcloud, f"{name_prefix}alpha")[cloud]
        assert_holds(copy, alpha2)  # the old copy went once the new one was verified
        (copy,) = by_cloud(devcloud, f"{name_prefix}gamma")[cloud]
        assert_holds(copy, gamma)
        assert not by_cloud(devcloud, f"{name_prefix}beta")[cloud], "Glint's copy of beta is gone"
    assert [i.status for i in by_cloud(devcloud, "users-own")["devcloud-2"]] == ["active"], (
        "an image Glint did not make for the list is never touched"
    )


def assert_the_matrix_shows_the_list(group, manager, subscription, name: str, repos) -> None:
    """The row names its subscription (list and endorser), and its cells in the subscription's
    repos are the subscription's: a person's delete there is refused with the reason."""
    listing = client_for(manager).get("/api/v1/images/", {"group": group.pk, "q": name}).json()
    (row,) = listing["results"]
    assert row["subscription"] == {
        "id": subscription.pk,
        "name": subscription.name,
        "list_identifier": subscription.list_identifier,
        "list_title": "Glint test list",
        "list_version": "1",
        "endorser_dn": subscription.endorser_shown,
        "endorser_ca": subscription.endorser_ca,
        "targets": sorted(repo.pk for repo in repos),
    }
    plan = plans.create_plan(
        group, manager, [Change(row_of(group, name).id, repos[0].pk, "delete")], version(group)
    )
    (item,) = plan.items.all()
    assert (item.status, item.reason) == (
        "refused",
        f"not deleted: subscription {subscription.name} keeps it in {repos[0].name}; change the"
        " subscription's repos or unsubscribe",
    )


def upload_bytes(devcloud, cloud: str, name: str, data: bytes) -> None:
    with driver_for(devcloud, cloud) as driver:
        driver.create_and_write(
            {"name": name, "disk_format": "raw", "container_format": "bare"},
            iter([data]),
            size=len(data),
        )


def test_bytes_that_do_not_match_the_list_are_kept_nowhere(
    devcloud, group_a, trust, web, prefix, settings
):
    _directory, endorser, _revoked, _other = trust
    settings.GLINT_CLOUD_PULL = True  # the clouds may fetch links; a list's image is Glint's
    name_prefix, names = prefix
    manager = make_user("List Manager", group=group_a, role="manager")
    repos = [add_devcloud_repo(devcloud, group_a, cloud) for cloud in CLOUDS]
    tampered, resized = image("tampered", os.urandom(64 * KiB)), image("resized", b"r" * 4096)
    names += [f"{name_prefix}tampered", f"{name_prefix}resized"]
    publish(web, endorser, [tampered, resized], sizes={resized.identifier: 5000})
    web.add(f"/images/{tampered.identifier}", os.urandom(64 * KiB))  # not the listed bytes

    subscription = subscribe(manager, group_a, repos, web, endorser, name_prefix=name_prefix)
    assert refreshed(subscription).ok
    ended = {job.image_name: job for job in run_queued_jobs()}

    tampered_job = ended[f"{name_prefix}tampered"]
    assert tampered_job.state == "failed", tampered_job
    # Glint streamed it once (no cloud fetched the link itself) and found other bytes.
    assert (tampered_job.error_code, web.agents(f"/images/{tampered.identifier}")) == (
        "checksum_mismatch",
        ["Glint"],
    ), tampered_job.error
    assert f"declared sha512:{tampered.sha512}" in tampered_job.error
    assert ended[f"{name_prefix}resized"].error_code == "size_mismatch"
    assert "5000 were expected" in ended[f"{name_prefix}resized"].error
    for name in names:
        assert not any(by_cloud(devcloud, name).values()), f"{name} was kept somewhere"
    assert_the_subscription_says_why(manager, subscription, tampered_job)


def assert_the_subscription_says_why(manager, subscription, tampered_job) -> None:
    """Why each fetch failed is the subscription's last error (its page and API) as soon as the
    uploads ended (the refresher's round), and still after the next refresh."""
    from glint.subscriptions.refresh import record_failed_fetches

    uploads = {f.name: f.upload for f in SubscribedImage.objects.filter(subscription=subscription)}
    assert "the checksum does not match" in uploads[tampered_job.image_name].error
    assert "5000 were expected" in uploads[f"{subscription.name_prefix}resized"].error
    reasons = [f"{name}: its fetch failed: {uploads[name].error}" for name in sorted(uploads)]
    subscription.refresh_from_db()
    assert subscription.last_error == ""
    assert record_failed_fetches() == 1
    subscription.refresh_from_db()
    assert subscription.last_error == "; ".join(reasons)
    assert record_failed_fetches() == 0, "said once"
    shown = client_for(manager).get(f"/api/v1/subscriptions/{subscription.pk}/").json()
    assert shown["last_error"] == subscription.last_error
    page = client_for(manager).get(f"/subscriptions/{subscription.pk}/").content.decode()
    assert "tampered: its fetch failed: the checksum does not match" in page
    again = refreshed(subscription)
    assert again.problems == "; ".join(reasons), "the next refresh says it too (and tries again)"


def test_a_link_the_fetcher_refuses_is_refused_when_subscribing(group_a, trust, settings):
    from glint.subscriptions import services
    from glint.subscriptions.models import Subscription

    _directory, endorser, _revoked, _other = trust
    settings.GLINT_FETCH_ALLOW_CIDRS = []
    manager = make_user("List Manager", group=group_a, role="manager")
    with pytest.raises(services.SubscriptionRefused) as refused:
        services.save_subscription(
            manager,
            Subscription(group=group_a, name="metadata"),
            targets=[add_repo(group_a, "r", "p1")],
            url="http://169.254.169.254/latest/list",
            endorser_dn=endorser.dn,
            endorser_ca=endorser.ca_dn,
        )
    assert refused.value.field == "url" and "169.254.169.254" in refused.value.message


def test_an_image_link_the_fetcher_refuses_is_a_reason_on_the_subscription(group_a, trust, web):
    _directory, endorser, _revoked, _other = trust
    manager = make_user("List Manager", group=group_a, role="manager")
    target = add_repo(group_a, "never-reached", "p1")
    good, hostile = image("good", b"g" * 1000), image("metadata", b"m" * 1000)
    publish(
        web,
        endorser,
        [good, hostile],
        uris={hostile.identifier: "http://169.254.169.254/latest/meta-data"},
    )
    subscription = subscribe(manager, group_a, [target], web, endorser)
    other = subscribe(
        manager, group_a, [target], web, endorser, name="other", images=[good.identifier]
    )

    result = refreshed(subscription)

    assert result.ok and list(result.fetching) == ["good"], result
    assert "169.254.169.254" in result.failed["metadata"]
    subscription.refresh_from_db()
    assert subscription.last_refresh_ok and subscription.list_version == "1"
    assert subscription.last_error.startswith("metadata: ") and "169.254.169.254" in (
        subscription.last_error
    )
    assert list(SubscribedImage.objects.values_list("name", flat=True)) == ["good"], (
        "nothing was started for the refused link"
    )
    page = client_for(manager).get(f"/subscriptions/{subscription.pk}/").content.decode()
    assert "images not in step: metadata: " in page
    assert refreshed(other).problems == "", "another subscription of the list is unaffected"


@pytest.mark.parametrize("on_removal", ["delete", "hide", "keep"])
def test_an_image_that_leaves_the_list_gets_the_subscription_s_on_removal(
    group_a, trust, web, on_removal
):
    from glint.jobs.models import Job
    from tests.plans.helpers import add_image

    _directory, endorser, _revoked, _other = trust
    manager = make_user("List Manager", group=group_a, role="manager")
    target = add_repo(group_a, "offline", "p1")
    leaving, staying = image("leaving", b"l" * 1000), image("staying", b"s" * 1000)
    publish(web, endorser, [leaving, staying], version="1")
    subscription = subscribe(manager, group_a, [target], web, endorser, on_removal=on_removal)
    assert refreshed(subscription).ok  # the list is in force; its uploads are never run here
    # Glint's copies as a poll then sees them, with the list's properties, and what their upload
    # jobs record once they ran (the repo is offline: recorded here as the runner would).
    leaving_copy, _staying_copy = (
        glint_copy(target, subscription, listed) for listed in (leaving, staying)
    )
    add_image(target, "leaving-too", leaving.data + b"!")
    assert refreshed(subscription).present == ["leaving", "staying"]
    jobs_before = Job.objects.count()

    publish(web, endorser, [staying], version="2")
    result = refreshed(subscription)

    assert result.ok, result.error
    assert result.removed == ([] if on_removal == "keep" else ["leaving"])
    new_jobs = list(Job.objects.order_by("pk")[jobs_before:])
    rows = {row.name: row for row in group_matrix(group_a).rows}
    if on_removal == "delete":
        (job,) = new_jobs
        assert job.kind == "delete"
        assert [t.image_id for t in job.targets.all()] == [leaving_copy.image_id], (
            "only Glint's copy goes, not someone's image of another name"
        )
    else:
        assert new_jobs == [], "nothing is deleted"
    assert rows["leaving"].hidden is (on_removal == "hide")
    assert rows["staying"].hidden is False and rows["leaving-too"].hidden is False
