"""Subscribing in this process, publishing a list on the test web server, and running the jobs a
refresh starts, as the job runner of ``glint serve`` would."""

from __future__ import annotations

from glint.jobs import states
from glint.jobs.models import Job
from glint.subscriptions import refresh, services
from glint.subscriptions.models import Subscription
from tests.jobs.helpers import run_in_process
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
