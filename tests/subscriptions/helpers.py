"""Subscribing in this process, publishing a list on the test web server, and running the jobs a
refresh starts, as the job runner of ``glint serve`` would."""

from __future__ import annotations

import time
import uuid

from glint.jobs import states
from glint.jobs.models import Job
from glint.subscriptions import refresh, services
from glint.subscriptions.models import Subscription
from tests.jobs.helpers import run_in_process
from tests.jobs.images import delete_named, images_named
from tests.subscriptions.lists import Endorser, ListedImage, image_list

LIST_PATH = "/lists/test.smime"


def publish(web, endorser: Endorser, images: list[ListedImage], **kwargs) -> bytes:
    """Serve the images and their list, signed by ``endorser``; returns the signed list."""
    for listed in images:
        web.add(f"/images/{listed.identifier}", listed.data)
    signed = endorser.sign(image_list(endorser, images, web.url("/images"), **kwargs))
    web.add(LIST_PATH, signed)
    return signed


def subscribe(manager, group, targets, web, endorser: Endorser, **fields) -> Subscription:
    subscription = Subscription(group=group, name=fields.pop("name", "test list"), **fields)
    return services.save_subscription(
        manager,
        subscription,
        targets=targets,
        url=web.url(LIST_PATH),
        endorser_dn=endorser.dn,
        endorser_ca=endorser.ca_dn,
    )


def glint_copy(target, subscription: Subscription, listed: ListedImage):
    """Glint's copy of ``listed`` in the offline repo ``target`` once the subscription's upload
    is done: the image as a poll sees it (with the list's properties), and the upload job's
    target recording that it created it (the repo is offline: recorded here as the runner
    would), which is how Glint knows its copies."""
    from glint.jobs.models import JobTarget
    from glint.subscriptions.models import SubscribedImage
    from tests.plans.helpers import add_image

    copy = add_image(
        target,
        listed.title,
        listed.data,
        properties={
            "imagelist_id": subscription.list_identifier,
            "imagelist_image": listed.identifier,
            "imagelist_sha512": listed.sha512,
        },
    )
    (fetched,) = SubscribedImage.objects.filter(
        subscription=subscription, identifier=listed.identifier
    )
    JobTarget.objects.filter(job=fetched.upload.job, repo=copy.repo).update(
        state="done", outcome="copied", image_id=copy.image_id
    )
    return copy


def run_queued_jobs() -> list[Job]:
    """Run every queued job here, oldest first, until none is left; the jobs, ended."""
    ran = []
    while True:
        job = Job.objects.filter(state=states.QUEUED).order_by("created", "pk").first()
        if job is None:
            return ran
        run_in_process(job.pk)
        ran.append(Job.objects.get(pk=job.pk))


def refreshed(subscription: Subscription) -> refresh.RefreshResult:
    subscription.refresh_from_db()
    return refresh.refresh(subscription)


def start_subscribing_glint(devcloud, pki, data_dir):
    """A live ``glint serve`` (``tests.live.start_live_glint``) whose fetcher may reach the
    loopback list server, as an operator allows a site mirror; its trust store is ``pki``'s CA,
    so an endorser must be issued by ``pki.ca``."""
    from tests.live import start_live_glint

    yield from start_live_glint(
        devcloud, pki, data_dir, GLINT_FETCH_ALLOW_CIDRS="127.0.0.0/8", GLINT_JOB_RETRY_LIMIT="1"
    )


def wait_for_images(devcloud, names: list[str], clouds: tuple[str, ...], timeout: float = 120):
    """Wait until every image of ``names`` is active in every cloud of ``clouds``; the images."""
    deadline = time.monotonic() + timeout
    while True:
        found = {name: images_named(devcloud, name) for name in names}
        if all(
            [i.status for i in found[name][cloud]] == ["active"]
            for name in names
            for cloud in clouds
        ):
            return found
        assert time.monotonic() < deadline, f"images not in {clouds} in time: {found}"
        time.sleep(1)


def fresh_prefix(devcloud, label: str):
    """Yield a fresh name prefix and a list to put image names in; those images are deleted from
    every cloud afterwards."""
    value = f"{label}-{uuid.uuid4().hex[:6]}-"
    names: list[str] = []
    yield value, names
    for name in names:
        delete_named(devcloud, name)
