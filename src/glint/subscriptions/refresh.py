"""One refresh of a subscription: fetch the list, verify it, and bring the repos in step.

1. The list is fetched through the web-link fetcher (the same address rules as a web-link upload;
   at most ``imagelist.MAX_LIST_BYTES``), verified (``imagelist.verify``: signature, chain, CRLs)
   and read (``imagelist.parse``: the signer is the list's own endorser, not expired). It must be
   signed by the subscription's endorser, and its ``hv:version`` may not go back: a lower version,
   or the same version with other content, is refused. A refused list changes nothing; its reason
   is the subscription's last error and the last good list stays in force.
2. Keeping in step works by content, never by name: each wanted image (all, or the chosen
   identifiers) is looked for in every target repo by its listed SHA-512 (Glance's own
   ``os_hash_value``, or the ``imagelist_sha512`` property Glint sets). The repos that lack it get
   it from one web-link upload (``transfers.services.create_upload``) that Glint always streams
   itself, never handing the link to the clouds' own web-download: fetched once, its size and
   SHA-512 checked against the list while streaming (a mismatch fails it and keeps nothing), and
   fanned out to those repos by the copy engine, verified. A repo that already holds the content
   is left alone, and so is a repo an upload of that content (by any subscription) is still
   bringing it to. Why the last fetch of an image failed is the subscription's last error.
3. Glint's copies are known by provenance, never by their properties (anyone can set those): the
   images the targets of this subscription's own upload jobs created. An updated image (same
   identifier, new SHA-512) has the same name: the subscription's conflict policy, ``replace`` by
   default, copies and verifies the new image before it removes the old, and it may remove only
   Glint's earlier copies of that image, never a same-name image someone else made. Copies of an
   image that left the list (or of a list that expired) get ``on_removal``: Glint's copies are
   deleted, the row is hidden, or nothing happens.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
from urllib.parse import quote, urlsplit, urlunsplit

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from glint import audit
from glint.inventory import services as inventory
from glint.inventory.models import Image
from glint.jobs import services as jobs
from glint.jobs.matrix import group_matrix
from glint.jobs.models import JobTarget
from glint.repos.models import Repo
from glint.subscriptions import imagelist
from glint.subscriptions.choices import OnRemoval
from glint.subscriptions.models import PROPERTY_PREFIX, SubscribedImage, Subscription
from glint.transfers import fetch
from glint.transfers import services as transfers
from glint.transfers.errors import TooLarge, TransferError
from glint.transfers.models import UploadState
from glint.transfers.upload_job import fetch_policy

__all__ = ["RefreshResult", "record_failed_fetches", "refresh", "refresh_due"]

log = logging.getLogger(__name__)

#: Seconds a process holds a subscription while it refreshes it.
LEASE_SECONDS = 300
#: After a failed refresh, the next try comes this soon (or at the interval, if sooner).
RETRY_AFTER = datetime.timedelta(minutes=5)
#: Upload states that mean the image is on its way.
_UNDER_WAY = (UploadState.WAITING, UploadState.RECEIVING, UploadState.INTERRUPTED)
#: Target outcomes of an upload job that mean the target created the image (Glint's copy).
_CREATED = ("copied", "pulled")


@dataclasses.dataclass
class RefreshResult:
    """What a refresh did, for the page, the API and the command line.

    Attributes:
        ok: The list was accepted (or was the one in force already).
        error: Why it was refused (``ok`` False).
        fetching: ``{image name: repo names}`` that new uploads are bringing in.
        present: Image names every target already holds.
        removed: Image names whose copies were deleted or hidden as they left the list.
        failed: ``{image name: reason}`` of images that could not be started.
    """

    ok: bool
    error: str = ""
    fetching: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    present: list[str] = dataclasses.field(default_factory=list)
    removed: list[str] = dataclasses.field(default_factory=list)
    failed: dict[str, str] = dataclasses.field(default_factory=dict)

    @property
    def problems(self) -> str:
        """What the subscription shows: why the list was refused, else why images did not
        start (the list is still in force), else nothing."""
        if self.error:
            return self.error
        return "; ".join(f"{name}: {reason}" for name, reason in sorted(self.failed.items()))


def refresh(subscription: Subscription) -> RefreshResult:
    """Fetch, verify and apply ``subscription``'s list now (see the module's docstring)."""
    now = timezone.now()
    try:
        listed = _fetch_and_verify(subscription, now)
    except imagelist.ListRefused as exc:
        result = RefreshResult(False, exc.message)
        _record(subscription, now, result)
        if subscription.list_expires and subscription.list_expires <= now:
            _keep_in_step(subscription, (), result)  # the last good list expired: images go
        return result
    if listed is not None:
        _accept(subscription, listed, now)
    result = RefreshResult(True)
    _keep_in_step(subscription, _wanted(subscription), result)
    _record(subscription, now, result)
    return result


def _due(now):
    """Enabled subscriptions whose time has come and that no live process holds."""
    return Subscription.objects.filter(enabled=True, next_refresh_at__lte=now).filter(
        Q(refresh_lease_expires__isnull=True) | Q(refresh_lease_expires__lt=now)
    )


def refresh_due(batch: int = 20) -> int:
    """Refresh up to ``batch`` due subscriptions, each in the process that leases it; returns
    how many this process refreshed."""
    now = timezone.now()
    done = 0
    for pk in list(_due(now).values_list("pk", flat=True)[:batch]):
        lease = now + datetime.timedelta(seconds=LEASE_SECONDS)
        if not _due(now).filter(pk=pk).update(refresh_lease_expires=lease):
            continue  # another process took it
        subscription = Subscription.objects.select_related("group").get(pk=pk)
        try:
            refresh(subscription)
        except Exception:  # one list's trouble must not stop the others
            log.exception("refresh of subscription %s failed", pk)
            Subscription.objects.filter(pk=pk).update(
                next_refresh_at=now + RETRY_AFTER, refresh_lease_expires=None
            )
        done += 1
    record_failed_fetches()
    return done


def _fetch_failure(upload) -> str:
    """How a failed fetch reads in the subscription's last error (after the image's name): the
    same words whether the refresh or :func:`record_failed_fetches` writes them."""
    return f"its fetch failed: {upload.error}"


def record_failed_fetches() -> int:
    """Put why an image's fetch failed (its bytes did not match the list, its link was refused)
    into its subscription's last error as soon as its upload ended, not only at the next refresh
    (which may be hours away); returns how many subscriptions changed."""
    failed = SubscribedImage.objects.filter(
        upload__state=UploadState.FAILED,
        upload__job__finished__gt=F("subscription__last_refresh_at"),
    ).select_related("upload")
    reasons: dict[int, list[str]] = {}
    for fetched in failed.order_by("name", "pk"):
        reasons.setdefault(fetched.subscription_id, []).append(
            f"{fetched.name}: {_fetch_failure(fetched.upload)}"
        )
    changed = 0
    for pk, new in reasons.items():
        last_error = Subscription.objects.get(pk=pk).last_error
        new = [reason for reason in new if reason not in last_error]
        if new:
            last_error = "; ".join(filter(None, (last_error, *new)))
            Subscription.objects.filter(pk=pk).update(last_error=last_error)
            changed += 1
    return changed


# The list


def _fetch_and_verify(subscription: Subscription, now) -> imagelist.ImageList | None:
    """The list if it is new and valid; None if it is the one in force already.

    Raises:
        imagelist.ListRefused: It cannot be fetched, does not verify, or is no newer.
    """
    url = subscription.url.reveal()
    if subscription.token:
        url = _with_token(url, subscription.token.reveal())
    try:
        with fetch.open_url(url, fetch_policy(imagelist.MAX_LIST_BYTES)) as stream:
            signed = stream.read_all()
    except TooLarge:
        raise imagelist.ListRefused(
            f"The list is larger than {imagelist.MAX_LIST_BYTES // 2**20} MiB; Glint does not "
            "read it."
        ) from None
    except TransferError as exc:
        raise imagelist.ListRefused(f"The list cannot be fetched: {exc.message}") from None
    content, signer = imagelist.verify(
        signed,
        ca_file=str(settings.GLINT["tls_client_ca"] or ""),
        ca_dir=str(settings.GLINT["tls_client_ca_dir"] or ""),
    )
    listed = imagelist.parse(content, signer, now)
    if (listed.endorser_dn, listed.endorser_ca) != (
        subscription.endorser_dn,
        subscription.endorser_ca,
    ):
        raise imagelist.ListRefused(
            f"The list is signed by {listed.endorser_dn} (CA {listed.endorser_ca}), not by the "
            f"endorser this subscription trusts ({subscription.endorser_dn}, CA "
            f"{subscription.endorser_ca})."
        )
    if subscription.list_digest:
        if subscription.list_identifier and listed.identifier != subscription.list_identifier:
            raise imagelist.ListRefused(
                f"The list's identifier changed from {subscription.list_identifier} to "
                f"{listed.identifier}: subscribe to the other list instead."
            )
        order = imagelist.newer(listed.version, subscription.list_version)
        if order < 0:
            raise imagelist.ListRefused(
                f"The list's version {listed.version} is lower than the version "
                f"{subscription.list_version} accepted before (a rollback)."
            )
        if order == 0:
            if listed.digest != subscription.list_digest:
                raise imagelist.ListRefused(
                    f"The list's version {listed.version} is the one accepted before, but its "
                    "content differs: a publisher changes the version with the content."
                )
            return None
    return listed


def _with_token(url: str, token: str) -> str:
    parts = urlsplit(url)
    user, _, password = token.partition(":")
    netloc = f"{quote(user, safe='')}:{quote(password, safe='')}@{parts.hostname}"
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


def _accept(subscription: Subscription, listed: imagelist.ImageList, now) -> None:
    fields = {
        "list_identifier": listed.identifier,
        "list_title": listed.title[:500],
        "list_version": listed.version[:100],
        "list_expires": listed.expires,
        "list_digest": listed.digest,
        "list_document": listed.document,
        "list_accepted_at": now,
    }
    Subscription.objects.filter(pk=subscription.pk).update(**fields)
    for name, value in fields.items():
        setattr(subscription, name, value)
    audit.record(
        "subscription.list_accepted",
        group=subscription.group,
        details={
            "subscription": subscription.pk,
            "list": listed.identifier,
            "version": listed.version,
            "images": len(listed.images),
        },
    )


def _record(subscription: Subscription, now, result: RefreshResult) -> None:
    interval = datetime.timedelta(seconds=subscription.refresh_seconds)
    Subscription.objects.filter(pk=subscription.pk).update(
        last_refresh_at=now,
        last_refresh_ok=result.ok,
        last_error=result.problems,
        next_refresh_at=now + (interval if result.ok else min(interval, RETRY_AFTER)),
        refresh_lease_expires=None,
    )
    subscription.last_refresh_at, subscription.last_refresh_ok = now, result.ok
    subscription.last_error = result.problems
    if not result.ok:
        audit.record(
            "subscription.list_refused",
            outcome=audit.FAILED,
            group=subscription.group,
            details={"subscription": subscription.pk, "reason": result.error},
        )


def _wanted(subscription: Subscription) -> list[imagelist.ListImage]:
    """The images of the list in force that this subscription takes."""
    if not subscription.list_document:
        return []
    images = imagelist.images_of(subscription.list_document)
    chosen = set(subscription.images)
    return [image for image in images if not chosen or image.identifier in chosen]


# Keeping in step


def image_name(subscription: Subscription, image: imagelist.ListImage) -> str:
    return f"{subscription.name_prefix}{image.title}"[:255]


def image_properties(subscription: Subscription, image: imagelist.ListImage) -> dict[str, str]:
    """What Glint records on each copy: the list's metadata under one prefix."""
    values = {
        "id": subscription.list_identifier,
        "image": image.identifier,
        "sha512": image.sha512,
        "version": image.version,
        "os": image.os,
        "os_version": image.os_version,
        "arch": image.arch,
        "expires": subscription.list_expires.isoformat() if subscription.list_expires else "",
    }
    properties = {f"{PROPERTY_PREFIX}{key}": value for key, value in values.items() if value}
    if image.arch:
        properties["architecture"] = image.arch
    return properties


def _holds(repo_images: list[Image], sha512: str) -> bool:
    return any(
        (image.os_hash_algo == "sha512" and image.os_hash_value == sha512)
        or image.properties.get(f"{PROPERTY_PREFIX}sha512") == sha512
        for image in repo_images
        if image.status == "active"
    )


def _keep_in_step(
    subscription: Subscription, wanted: list[imagelist.ListImage], result: RefreshResult
) -> None:
    targets = [repo for repo in subscription.targets.all() if repo.enabled]
    held = {repo.pk: list(Image.objects.filter(repo=repo)) for repo in targets}
    made = _made_copies(subscription)
    for image in wanted:
        missing = [repo for repo in targets if not _holds(held[repo.pk], image.sha512)]
        name = image_name(subscription, image)
        if not missing:
            result.present.append(name)
            continue
        failure = _last_fetch_failure(subscription, image)
        if failure:
            result.failed[name] = failure  # and it is fetched again below
        with transaction.atomic():
            _start_fetch(subscription, image, name, missing, made, result)
    _remove_left_over(subscription, wanted, targets, held, made, result)


def _start_fetch(
    subscription: Subscription,
    image: imagelist.ListImage,
    name: str,
    missing: list[Repo],
    made: dict[tuple[int, str], SubscribedImage],
    result: RefreshResult,
) -> None:
    """One upload of ``image`` to the repos of ``missing`` that no upload of it is coming to.

    Runs in a transaction holding those repos' rows, so two refreshes of subscriptions that share
    a repo decide one after the other (the second sees the first's upload under way), and an
    upload never stands without its row here.
    """
    list(Repo.objects.select_for_update().filter(pk__in=[r.pk for r in missing]).order_by("pk"))
    coming = _under_way(image, missing)
    if coming:
        result.fetching[name] = [repo.name for repo in missing if repo.pk in coming]
    missing = [repo for repo in missing if repo.pk not in coming]
    if not missing:
        return
    try:
        upload = transfers.create_upload(
            subscription.group,
            requester=None,
            targets=missing,
            name=name,
            disk_format=image.disk_format
            if image.disk_format in ("qcow2", "raw", "vmdk", "vdi", "vhd", "iso")
            else "",
            properties=image_properties(subscription, image),
            conflict_policy=subscription.conflict_policy,
            size=image.size,
            checksum_algo="sha512",
            checksum=image.sha512,
            url=image.uri,
            cloud_pull=False,  # fetched once and checked by Glint (see the module)
            replace_only={
                repo.pk: [
                    image_id
                    for (repo_pk, image_id), earlier in made.items()
                    if repo_pk == repo.pk and earlier.identifier == image.identifier
                ]
                for repo in missing
            },
        )
    except transfers.UploadRefused as exc:
        result.failed[name] = exc.message
        return
    SubscribedImage.objects.create(
        subscription=subscription,
        identifier=image.identifier,
        sha512=image.sha512,
        name=name,
        upload=upload,
    )
    result.fetching[name] = sorted(result.fetching.get(name, []) + [r.name for r in missing])


def _under_way(image: imagelist.ListImage, repos) -> set[int]:
    """The repos of ``repos`` that an upload of this content (by any subscription, of any
    group) is still bringing it to: two subscriptions of one list never fetch it twice."""
    fetched = SubscribedImage.objects.filter(
        sha512=image.sha512, upload__targets__in=repos
    ).select_related("upload__job")
    coming: set[int] = set()
    for f in fetched.distinct():
        if f.upload.state in _UNDER_WAY or (f.upload.job is not None and f.upload.job.is_live):
            coming.update(f.upload.targets.values_list("pk", flat=True))
    return coming


def _last_fetch_failure(subscription: Subscription, image: imagelist.ListImage) -> str:
    """Why this subscription's last fetch of this very image failed, or ''."""
    last = (
        SubscribedImage.objects.filter(
            subscription=subscription, identifier=image.identifier, sha512=image.sha512
        )
        .select_related("upload")
        .order_by("-created", "-pk")
        .first()
    )
    if last is None or last.upload is None or last.upload.state != UploadState.FAILED:
        return ""
    return _fetch_failure(last.upload)


def _made_copies(subscription: Subscription) -> dict[tuple[int, str], SubscribedImage]:
    """Glint's copies for this subscription, by provenance: ``(repo pk, cloud image id)`` of each
    image a target of one of its upload jobs created, and the listed image it is a copy of."""
    by_job = {
        fetched.upload.job_id: fetched
        for fetched in SubscribedImage.objects.filter(
            subscription=subscription, upload__job__isnull=False
        ).select_related("upload")
    }
    created = JobTarget.objects.filter(
        job_id__in=by_job, state="done", outcome__in=_CREATED, repo__isnull=False
    ).exclude(image_id="")
    return {(t.repo_id, t.image_id): by_job[t.job_id] for t in created}


def _remove_left_over(subscription, wanted, targets, held, made, result: RefreshResult) -> None:
    """Glint's copies of this list's images that are no longer wanted: ``on_removal``.

    A copy is Glint's when this subscription's upload created it (``made``; a property says
    nothing, anyone can set one); it is left over when its image left the list, or when a newer
    copy of the same image (its listed SHA-512) is already verified in that repo, so the old one
    goes only after the new one is in.
    """
    if subscription.on_removal == OnRemoval.KEEP or not subscription.list_identifier:
        return
    wanted_sha = {image.identifier: image.sha512 for image in wanted}
    left_over: list[Image] = []
    for repo in targets:
        for copy in held[repo.pk]:
            earlier = made.get((repo.pk, copy.image_id))
            if earlier is None:
                continue
            identifier, sha512 = earlier.identifier, earlier.sha512
            if identifier not in wanted_sha:
                left_over.append(copy)
            elif sha512 != wanted_sha[identifier] and _holds(held[repo.pk], wanted_sha[identifier]):
                left_over.append(copy)
    if not left_over:
        return
    group = subscription.group
    rows = group_matrix(group).rows
    for row in rows:
        copies = [copy for copy in left_over if copy.pk in {c.pk for c in row.copies}]
        if not copies:
            continue
        if subscription.on_removal == OnRemoval.HIDE:
            inventory.set_hidden(group, row, True, None)
        else:
            try:
                with transaction.atomic():
                    jobs.submit_delete(group, images=copies)
            except jobs.JobRefused as exc:
                result.failed[row.name] = exc.message
                continue
        result.removed.append(row.name)
