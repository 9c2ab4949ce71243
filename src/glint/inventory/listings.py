"""Store one repo's poll result (its listing) in the database, as a diff.

Load the known ids and fingerprints, compare with the listing, bulk-update what changed, delete
what vanished, bulk-create what is new, then set the repo's poll status. A listing identical to
the previous one (same overall fingerprint) skips the comparison entirely, which is the common
case between changes (pulp's ``_should_optimize_sync``).

Status and counters are written with ``filter(pk=…).update()`` so a stale object held elsewhere
never overwrites what a person just edited (``docs/architecture.md``, "Background writes").
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
from collections.abc import Iterable

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from glint.inventory import models as m
from glint.matrix.rows import made_from_sha256
from glint.replication import ImageRecord
from glint.repos.models import Repo

__all__ = [
    "claim_project_poll",
    "record_failure",
    "record_listing",
    "image_fingerprint",
    "project_key",
    "release_project_poll",
    "retry_delay",
]

#: First retry of a failing repo comes after this many seconds, doubling with each failure ...
BACKOFF_BASE = 15
#: ... up to this many poll intervals.
BACKOFF_CAP_INTERVALS = 4
#: Rows per bulk statement, below every database's parameter limit.
BATCH = 500

_UPDATED_FIELDS = [
    "name",
    "status",
    "size",
    "virtual_size",
    "disk_format",
    "container_format",
    "checksum",
    "os_hash_algo",
    "os_hash_value",
    "owner",
    "visibility",
    "protected",
    "os_hidden",
    "member_status",
    "min_disk",
    "min_ram",
    "properties",
    "tags",
    "created_at",
    "updated_at",
    "glint_sha256",
    "sdk_sha256",
    "glint_source_repo",
    "glint_source_id",
    "glint_made_from",
    "fingerprint",
]


def image_fingerprint(record: ImageRecord) -> str:
    """Digest of everything the cloud said about an image."""
    text = json.dumps(dataclasses.asdict(record), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _timestamp(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    parsed = parse_datetime(value)
    if parsed is not None and timezone.is_naive(parsed):
        parsed = timezone.make_aware(parsed, dt.UTC)
    return parsed


def _made_from(props: dict) -> str:
    """The ``glint_made_from`` property in its one valid form, else '' (a malformed value is
    ignored: it must not pull the copy out of its own row)."""
    sha256 = made_from_sha256(str(props.get(m.GLINT_MADE_FROM) or ""))
    return f"sha256:{sha256}" if sha256 else ""


def _fields(record: ImageRecord, fingerprint: str) -> dict:
    props = dict(record.properties)
    text = lambda key: str(props.get(key) or "")[:255]  # noqa: E731 - properties are free text
    return {
        "name": (record.name or "")[:255],
        "status": record.status or "",
        "size": record.size,
        "virtual_size": record.virtual_size,
        "disk_format": record.disk_format or "",
        "container_format": record.container_format or "",
        "checksum": record.checksum or "",
        "os_hash_algo": record.hash_algo or "",
        "os_hash_value": record.hash_value or "",
        "owner": record.owner or "",
        "visibility": record.visibility or "",
        "protected": bool(record.protected),
        "os_hidden": bool(record.os_hidden),
        "member_status": record.member_status or "",
        "min_disk": max(int(record.min_disk or 0), 0),
        "min_ram": max(int(record.min_ram or 0), 0),
        "properties": props,
        "tags": list(record.tags),
        "created_at": _timestamp(record.created_at),
        "updated_at": _timestamp(record.updated_at),
        "glint_sha256": text(m.GLINT_SHA256)[:64],
        "sdk_sha256": text(m.SDK_SHA256)[:64],
        "glint_source_repo": text(m.GLINT_SOURCE_REPO),
        "glint_source_id": text(m.GLINT_SOURCE_ID),
        "glint_made_from": _made_from(props),
        "fingerprint": fingerprint,
    }


def _batches(items: list, size: int = BATCH) -> Iterable[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _apply_diff(repo_id: int, records: list[ImageRecord], prints: dict[str, str], now) -> bool:
    known = {
        image_id: (pk, fp)
        for pk, image_id, fp in m.Image.objects.filter(repo_id=repo_id).values_list(
            "pk", "image_id", "fingerprint"
        )
    }
    new, changed = [], []
    for record in records:
        fields = _fields(record, prints[record.id])
        if record.id not in known:
            new.append(
                m.Image(
                    repo_id=repo_id, image_id=record.id, first_seen=now, last_seen=now, **fields
                )
            )
        elif known[record.id][1] != prints[record.id]:
            changed.append(m.Image(pk=known[record.id][0], **fields))
    vanished = [pk for image_id, (pk, _fp) in known.items() if image_id not in prints]
    for chunk in _batches(vanished):
        m.Image.objects.filter(pk__in=chunk).delete()
    m.Image.objects.bulk_update(changed, _UPDATED_FIELDS, batch_size=BATCH)
    m.Image.objects.bulk_create(new, batch_size=BATCH)
    return bool(new or changed or vanished)


def claim_poll(repo_id: int, owner: str, seconds: float, *, due_only: bool = True) -> bool:
    """Take the poll of ``repo_id`` for ``seconds``, if it is still due (or ``due_only`` is
    False: a repo of the same cloud project as one being polled) and no other process holds it;
    whether this process may poll it now.

    One compare-and-set on the inventory row, so of several Glint processes on one database
    (web replicas, each with its poller) exactly one polls a due repo; the poll's record releases
    it, and a lease whose process died runs out.
    """
    now = timezone.now()
    m.RepoInventory.objects.bulk_create([m.RepoInventory(repo_id=repo_id)], ignore_conflicts=True)
    free = m.RepoInventory.objects.filter(pk=repo_id).filter(
        Q(poll_lease_expires__isnull=True) | Q(poll_lease_expires__lt=now)
    )
    if due_only:
        free = free.filter(
            Q(next_poll_at__isnull=True)
            | Q(next_poll_at__lte=now)
            | Q(refresh_requested_at__isnull=False)
        )
    return bool(
        free.update(poll_lease_owner=owner, poll_lease_expires=now + dt.timedelta(seconds=seconds))
    )


def project_key(repo: Repo) -> str:
    """The cloud project ``repo`` reaches, as the poll lease names it: its ``cloud_project``
    (auth URL or EC2 region + the project), or the repo alone while that is not confirmed."""
    return repo.cloud_project or f"repo {repo.pk}"


def claim_project_poll(
    repo: Repo, owner: str, seconds: float, *, busy: Iterable[int] = ()
) -> tuple[int, ...]:
    """Take the poll of ``repo``'s cloud project for ``seconds`` if ``repo`` is still due and no
    other process holds the project; the ids of the repos the one listing is then recorded for
    (``repo`` first, then every other enabled repo of the project but ``busy``), or () when this
    process must not poll it.

    The project's lease is one compare-and-set, so of several Glint processes on one database
    that each see a different due repo of the project (two groups' repos), exactly one lists it.
    """
    key = project_key(repo)
    now = timezone.now()
    m.ProjectPollLease.objects.bulk_create(
        [m.ProjectPollLease(cloud_project=key)], ignore_conflicts=True
    )
    taken = (
        m.ProjectPollLease.objects.filter(cloud_project=key)
        .filter(Q(expires__isnull=True) | Q(expires__lt=now))
        .update(owner=owner, expires=now + dt.timedelta(seconds=seconds))
    )
    if not taken:
        return ()
    # Due is checked after the project is ours: a process that just recorded the project's poll
    # released the lease, and its listing must not be repeated by one that saw the repo due.
    if not claim_poll(repo.pk, owner, seconds):
        release_project_poll(key, owner)
        return ()
    alike = (
        Repo.objects.filter(enabled=True, cloud_project=repo.cloud_project)
        .exclude(pk__in=[repo.pk, *busy])
        .values_list("pk", flat=True)
        if repo.cloud_project
        else []
    )
    return (repo.pk, *(pk for pk in alike if claim_poll(pk, owner, seconds, due_only=False)))


def release_project_poll(key: str, owner: str) -> None:
    """Give up ``owner``'s lease of the project ``key`` (its poll is recorded)."""
    m.ProjectPollLease.objects.filter(cloud_project=key, owner=owner).update(owner="", expires=None)


def record_listing(
    repo_id: int,
    records: list[ImageRecord],
    *,
    project_id: str,
    duration: float,
    started_at: dt.datetime,
    interval: int,
) -> bool:
    """Store a successful poll; returns whether the repo's images changed.

    Args:
        repo_id: The repo polled.
        records: Its listing.
        project_id: The project the credentials reach, as the cloud confirmed it.
        duration: Seconds the listing took.
        started_at: When the poll began; a refresh requested after it stays requested.
        interval: Seconds until the next regular poll.
    """
    now = timezone.now()
    prints = {r.id: image_fingerprint(r) for r in records}
    listing_print = hashlib.sha256(
        "\n".join(sorted(f"{k} {v}" for k, v in prints.items())).encode()
    ).hexdigest()
    with transaction.atomic():
        inventory, _ = m.RepoInventory.objects.get_or_create(repo_id=repo_id)
        changed = inventory.fingerprint != listing_print and _apply_diff(
            repo_id, records, prints, now
        )
        m.Image.objects.filter(repo_id=repo_id).update(last_seen=now)
        m.RepoInventory.objects.filter(pk=repo_id).update(
            project_id=project_id or inventory.project_id,
            fingerprint=listing_print,
            version=F("version") + (1 if changed else 0),
            failures=0,
            polls_total=F("polls_total") + 1,
            next_poll_at=now + dt.timedelta(seconds=interval),
            listed_from=started_at,
            **_RELEASED,
        )
        m.RepoInventory.objects.filter(pk=repo_id, refresh_requested_at__lte=started_at).update(
            refresh_requested_at=None
        )
        Repo.objects.filter(pk=repo_id).update(
            last_poll_at=now, last_poll_ok=True, last_poll_error="", last_poll_duration=duration
        )
    return changed


#: The poll lease's fields once the poll is recorded.
_RELEASED = {"poll_lease_owner": "", "poll_lease_expires": None}


def retry_delay(failures: int, interval: int) -> float:
    """Seconds before polling a repo again after ``failures`` failures in a row."""
    return min(BACKOFF_BASE * 2 ** max(failures - 1, 0), BACKOFF_CAP_INTERVALS * interval)


def record_failure(
    repo_id: int, error: str, *, duration: float, started_at: dt.datetime, interval: int
) -> None:
    """Store a failed poll: the reason for people, and the back-off for the poller.

    The images of the last good poll stay as they were: an outage is not a deletion.
    """
    now = timezone.now()
    with transaction.atomic():
        inventory, _ = m.RepoInventory.objects.get_or_create(repo_id=repo_id)
        failures = inventory.failures + 1
        m.RepoInventory.objects.filter(pk=repo_id).update(
            failures=failures,
            errors_total=F("errors_total") + 1,
            polls_total=F("polls_total") + 1,
            next_poll_at=now + dt.timedelta(seconds=retry_delay(failures, interval)),
            **_RELEASED,
        )
        m.RepoInventory.objects.filter(pk=repo_id, refresh_requested_at__lte=started_at).update(
            refresh_requested_at=None
        )
        Repo.objects.filter(pk=repo_id).update(
            last_poll_at=now,
            last_poll_ok=False,
            last_poll_error=error[:2000],
            last_poll_duration=duration,
        )
