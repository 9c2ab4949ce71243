"""Plans as the pages and the API use them: make one from a person's changes, apply it, keep rows.

``create_plan`` gathers the facts the planner needs from a fresh inventory (the database as the
poller last wrote it, never the person's page) and stores the verdicts; ``apply_plan`` turns the
planned items into jobs through ``glint.jobs.services``, once. ``enforce_keep_everywhere`` is the
"Keep on all repos" loop: it plans the missing copies of flagged rows like a person would. The
conflicts page's actions (delete a duplicate, rename a copy) and the image page's "Make properties
equal" live here too.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone

from glint import audit, validators
from glint.accounts.models import Group, User
from glint.inventory.models import Image
from glint.inventory.poller import request_refresh
from glint.jobs.matrix import GroupMatrix, group_matrix
from glint.matrix.conflicts import ConflictKind
from glint.matrix.planning import (
    Change,
    RepoFacts,
    copy_delete_refusal,
    parse_version,
    plan_changes,
)
from glint.matrix.rows import CellState, Row
from glint.plans import job_submissions
from glint.plans.choices import Action, ItemStatus, PlanState
from glint.plans.models import KeepEverywhere, Plan, PlanItem
from glint.replication import CloudError, ImageRecord, copy_fields, rename_image
from glint.repos.drivers import open_driver
from glint.subscriptions.services import listed_copies

__all__ = [
    "PlanError",
    "apply_plan",
    "create_plan",
    "delete_duplicate",
    "enforce_keep_everywhere",
    "kept_rows",
    "property_differences",
    "rename_copy",
    "set_keep_everywhere",
    "sync_row_properties",
]

#: Longest image name Glance (and the inventory) accepts.
MAX_NAME = 255

#: A plan older than this is not applied: the page it came from is too old to trust.
PLAN_LIFETIME = dt.timedelta(hours=1)
#: The reason given to a delete whose repo changed between the plan and its apply.
CHANGED_SINCE_PLAN = "not deleted: it changed since the plan was made"
#: The reason given to a copy whose source image vanished between the plan and its apply.
SOURCE_GONE = "not copied: the image it was to be copied from has gone since the plan was made"


class PlanError(Exception):
    """A plan cannot be made or applied; the message is for the person (a 4xx, not a crash)."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.message = message
        self.status = status


def _project_id(repo) -> str:
    inventory_row = getattr(repo, "inventory", None)
    if inventory_row is not None and inventory_row.project_id:
        return inventory_row.project_id
    return repo.cloud_project.rpartition("#")[2] if repo.cloud_project else ""


def _repo_facts(matrix: GroupMatrix) -> dict[int, RepoFacts]:
    return {
        repo.pk: RepoFacts(
            repo.pk,
            repo.name,
            _project_id(repo),
            repo.last_poll_ok is not False,
            matrix.versions.get(repo.pk, 0),
        )
        for repo in matrix.repos
    }


def _verdicts(group: Group, changes: list[Change], shown: dict[int, int], may_force: bool):
    """The planner's verdicts against the group's inventory as it is now."""
    matrix = group_matrix(group, with_jobs=True)
    repos = _repo_facts(matrix)
    protected = Image.objects.filter(repo__in=list(repos), protected=True).values_list(
        "pk", flat=True
    )
    keepers = listed_copies(group).keepers
    verdicts = plan_changes(
        changes,
        {row.id: row for row in matrix.polled},
        repos,
        shown=shown,
        overlays=matrix.job_cells,
        protected=protected,
        managed={pk: subscription.name for pk, subscription in keepers.items()},
        may_force=may_force,
    )
    return matrix, verdicts


def create_plan(
    group: Group, user: User, changes: list[Change], inventory_version: str, *, force: bool = False
) -> Plan:
    """Decide ``changes`` against a fresh inventory and store the plan.

    Args:
        group: The group (the caller checked that ``user`` may see it).
        user: Who asks; any member or manager of the group may plan.
        changes: The cells changed.
        inventory_version: What the person's page or listing showed (``GroupMatrix.version``).
        force: Delete published images too (admins only).

    Raises:
        PermissionDenied: ``force`` by someone who is not an admin.
        PlanError: No changes, or a malformed version.
    """
    if force and not user.is_admin:
        raise PermissionDenied("Only an admin may force the delete of published images.")
    if not changes:
        raise PlanError("Nothing to plan: no cell was changed.")
    try:
        shown = parse_version(inventory_version)
    except ValueError as exc:
        raise PlanError(f"inventory_version: {exc}") from None
    matrix, verdicts = _verdicts(group, changes, shown, force)
    with transaction.atomic():
        plan = Plan.objects.create(
            group=group,
            created_by=user,
            shown_version=inventory_version,
            planned_version=matrix.version,
            force=force,
        )
        PlanItem.objects.bulk_create(
            [
                PlanItem(
                    plan=plan,
                    position=i,
                    row_id=v.change.row,
                    name=v.name,
                    content_key=v.content_key,
                    repo_id=v.change.repo if v.change.repo in matrix.versions else None,
                    repo_name=v.repo_name,
                    action=v.change.action,
                    status=v.status,
                    reason=v.reason,
                    source_id=v.source.pk if v.source else None,
                    images=[c.pk for c in v.images],
                )
                for i, v in enumerate(verdicts)
            ]
        )
    audit.record(
        "plan.create",
        user=user,
        group=group,
        details={"plan": plan.pk, "planned": sum(v.status == ItemStatus.PLANNED for v in verdicts)},
    )
    return plan


def _refuse_changed_deletes(plan: Plan, items: list[PlanItem]) -> None:
    """Refuse the deletes whose repo's inventory changed between the plan and now."""
    planned = parse_version(plan.planned_version)
    now = group_matrix(plan.group).versions
    for item in items:
        if item.action == Action.DELETE and now.get(item.repo_id) != planned.get(item.repo_id):
            item.status, item.reason, item.images = ItemStatus.REFUSED, CHANGED_SINCE_PLAN, []
            item.save(update_fields=["status", "reason", "images"])


def apply_plan(plan: Plan, user: User) -> list[int]:
    """Create the jobs of a plan's planned items; a plan is applied once.

    Copies of one row from one source become one job with every target (one read, fan-out);
    deletes of one row become one job. A copy already under way is not repeated: its item points
    at the live job. An item the jobs app refuses (a repo disabled since the plan, say) is marked
    refused with its reason.

    Returns:
        The ids of the jobs that carry the plan, each once (empty when nothing was planned).

    Raises:
        PlanError: The plan was applied already, or is too old (409).
    """
    if timezone.now() - plan.created > PLAN_LIFETIME:
        raise PlanError(
            "This plan is too old to apply: load the page again and make a new one.", 409
        )
    claimed = Plan.objects.filter(pk=plan.pk, state=PlanState.OPEN).update(
        state=PlanState.APPLIED, applied_at=timezone.now(), applied_by=user
    )
    if claimed != 1:
        raise PlanError("This plan has been applied already.", 409)
    items = [
        i
        for i in plan.items.select_related("repo", "source__repo")
        if i.status == ItemStatus.PLANNED
    ]
    _refuse_changed_deletes(plan, items)
    batches: dict[tuple, list[PlanItem]] = defaultdict(list)
    for item in items:
        if item.status == ItemStatus.PLANNED:
            batches[(item.action, item.row_id, item.source_id)].append(item)
    job_ids: list[int] = []
    for (action, _row, _source), batch in batches.items():
        first = batch[0]
        if action == Action.COPY and first.source is None:
            PlanItem.objects.filter(pk__in=[i.pk for i in batch]).update(
                status=ItemStatus.REFUSED, reason=SOURCE_GONE
            )
            continue
        try:
            if action == Action.COPY:
                ids = job_submissions.submit_copy(
                    plan.group, user, first.source, [i.repo for i in batch]
                )
            else:
                images = Image.objects.filter(
                    pk__in=[pk for i in batch for pk in i.images]
                ).select_related("repo")
                ids = job_submissions.submit_delete(
                    plan.group, user, list(images), force=plan.force
                )
        except job_submissions.JobRefused as exc:
            PlanItem.objects.filter(pk__in=[i.pk for i in batch]).update(
                status=ItemStatus.REFUSED, reason=exc.message
            )
            continue
        PlanItem.objects.filter(pk__in=[i.pk for i in batch]).update(job_id=ids[0] if ids else None)
        job_ids += [i for i in ids if i not in job_ids]
    Plan.objects.filter(pk=plan.pk).update(job_ids=job_ids)
    plan.refresh_from_db()
    statuses = list(plan.items.values_list("action", "status"))
    audit.record(
        "plan.apply",
        user=user,
        group=plan.group,
        details={
            "plan": plan.pk,
            "jobs": job_ids,
            "copies": statuses.count((Action.COPY, ItemStatus.PLANNED)),
            "deletes": statuses.count((Action.DELETE, ItemStatus.PLANNED)),
            "refused": sum(status == ItemStatus.REFUSED for _action, status in statuses),
        },
    )
    return job_ids


# Conflicts page


def delete_duplicate(
    group: Group, conflict, image_pk: int, user: User, *, force: bool = False
) -> list[int]:
    """Delete one copy of a duplicate (the same image twice in one repo), as a job.

    The other copy stays, so the last-copy rule cannot apply; the copy's own rules do (owned by
    the repo's project, not protected, not published unless an admin forces it).

    Returns:
        The ids of the jobs that carry the delete.

    Raises:
        PlanError: Not a duplicate's copy, or a rule refuses it (the reason is the planner's).
        PermissionDenied: ``force`` by someone who is not an admin.
    """
    if force and not user.is_admin:
        raise PermissionDenied("Only an admin may force the delete of published images.")
    if conflict.kind != ConflictKind.DUPLICATE or image_pk not in {c.pk for c in conflict.copies}:
        raise PlanError("Only one of the copies of a duplicate can be deleted here.")
    copy = next(c for c in conflict.copies if c.pk == image_pk)
    matrix = group_matrix(group)
    protected = set(Image.objects.filter(pk=image_pk, protected=True).values_list("pk", flat=True))
    refusal = copy_delete_refusal(copy, _repo_facts(matrix)[copy.repo_id], protected, force)
    if refusal:
        raise PlanError(refusal)
    try:
        return job_submissions.submit_delete(
            group, user, [Image.objects.select_related("repo").get(pk=image_pk)], force=force
        )
    except job_submissions.JobRefused as exc:
        raise PlanError(exc.message) from None


def _conflict_copy(conflict, image_pk: int) -> Image:
    if image_pk not in {c.pk for c in conflict.copies}:
        raise PlanError("That image is not one of this conflict's copies: reload the page.")
    return Image.objects.select_related("repo__inventory", "repo__group").get(pk=image_pk)


def _name_refusal(image: Image, name: str) -> str:
    if not name:
        return "Type the new name."
    if len(name) > MAX_NAME:
        return f"A name has at most {MAX_NAME} characters; this one has {len(name)}."
    problem = validators.text_problem(name)
    if problem:
        return problem + "."
    if name == image.name:
        return f"The image is already called “{name}”."
    if Image.objects.filter(repo_id=image.repo_id, name=name).exists():
        return f"Repo {image.repo.name} already has an image called “{name}”: choose another name."
    if image.owner != _project_id(image.repo):
        return (
            f"This copy belongs to another project, not {image.repo.name}'s: "
            "only its owner can rename it."
        )
    return ""


def rename_copy(group: Group, conflict, image_pk: int, name: str, user: User | None) -> Image:
    """Rename one copy of a conflict group in its cloud (the conflicts page's "Rename").

    A rename is a name change in place (no job: one request to the cloud, no bytes move). The
    name is checked against the repo's inventory as last polled, then the repo is polled again so
    the matrix and the conflict show the new name.

    Returns:
        The inventory row of the copy (still under its old name until the poll).

    Raises:
        PlanError: Not a copy of the conflict, a name that is empty, too long, unchanged or
            already used in that repo, a copy of another project, or the cloud refused (the
            cloud's message).
    """
    image = _conflict_copy(conflict, image_pk)
    name = name.strip()
    details = {
        "conflict": conflict.key,
        "image_id": image.image_id,
        "from": image.name,
        "to": name[:MAX_NAME],
    }
    refusal = _name_refusal(image, name)
    if refusal:
        audit.record(
            "image.rename",
            outcome=audit.REFUSED,
            user=user,
            repo=image.repo,
            image=image.name,
            details={**details, "reason": refusal},
        )
        raise PlanError(refusal)
    try:
        with open_driver(image.repo) as cloud:
            rename_image(cloud, image.image_id, name)
    except CloudError as exc:
        audit.record(
            "image.rename",
            outcome=audit.FAILED,
            user=user,
            repo=image.repo,
            image=image.name,
            details={**details, "reason": exc.message},
        )
        raise PlanError(f"{image.repo.name} did not rename the image: {exc.message}") from None
    audit.record("image.rename", user=user, repo=image.repo, image=image.name, details=details)
    request_refresh([image.repo_id])
    return image


# Property sync


def _record(image: Image) -> ImageRecord:
    return ImageRecord(
        id=image.image_id,
        name=image.name,
        min_disk=image.min_disk,
        min_ram=image.min_ram,
        tags=tuple(image.tags or ()),
        os_hidden=image.os_hidden,
        properties=image.properties or {},
        disk_format=image.disk_format or None,
        container_format=image.container_format or None,
    )


def _synced_fields(image: Image) -> dict:
    """What a property sync makes equal on a copy, by the engine's own rules (``copy_fields``).

    Name and formats are left out (a sync never changes them), and so are ``kernel_id`` /
    ``ramdisk_id`` (ids of images in each copy's own cloud: ``copy_fields`` without an image map
    drops them), provenance and Glance's bookkeeping (the engine's deny list).
    """
    fields, _dropped = copy_fields(_record(image))
    for key in ("name", "disk_format", "container_format"):
        fields.pop(key, None)
    fields["tags"] = sorted(fields.get("tags") or ())
    fields.setdefault("os_hidden", False)
    return fields


def property_differences(images: list[Image]) -> list[tuple[str, list]]:
    """The properties that differ between the copies of one row, for the image page.

    Returns:
        ``[(key, [value in each of images, None where absent])]``, by key; empty when the copies
        agree (or there is only one).
    """
    synced = [_synced_fields(image) for image in images]
    differing = []
    for key in sorted({key for fields in synced for key in fields}):
        values = [fields.get(key) for fields in synced]
        if any(value != values[0] for value in values):
            differing.append((key, values))
    return differing


def sync_row_properties(
    group: Group, row: Row, source_repo_id: int, user: User | None
) -> list[int]:
    """Make the properties of a row's copies equal to the copy in ``source_repo_id``, as a job.

    Only copies that differ and that the repo's project owns are changed (another project's image
    is not ours to edit); no byte is copied.

    Returns:
        The ids of the jobs that carry the sync (a live sync of the same row is not repeated).

    Raises:
        PlanError: A hidden row, a repo with no copy (or two) of the row, or nothing to change.
    """
    if row.hidden:
        raise PlanError("A hidden row is never changed: show it first.")
    images = list(
        Image.objects.filter(pk__in=[c.pk for c in row.copies]).select_related("repo__inventory")
    )
    sources = [image for image in images if image.repo_id == source_repo_id]
    if len(sources) != 1:
        raise PlanError(
            "That repo holds no copy of this image."
            if not sources
            else "That repo holds two copies of this image: delete the duplicate first."
        )
    source = sources[0]
    wanted = _synced_fields(source)
    copies = [
        image
        for image in images
        if image.pk != source.pk
        and image.owner == _project_id(image.repo)
        and _synced_fields(image) != wanted
    ]
    if not copies:
        raise PlanError(
            "Nothing to change: the copies this group owns already have these properties."
        )
    try:
        return job_submissions.submit_property_sync(group, user, source, copies)
    except job_submissions.JobRefused as exc:
        raise PlanError(exc.message) from None


# Keep on all repos


def _flag_of(row: Row, flags: dict[tuple[str, str], KeepEverywhere]) -> KeepEverywhere | None:
    return next(
        (
            flags[(row.name, k)]
            for k in (row.content_key, *sorted(row.keys))
            if (row.name, k) in flags
        ),
        None,
    )


def kept_rows(group: Group, rows: list[Row]) -> dict[str, KeepEverywhere]:
    """``{row_id: flag}`` for the rows of ``rows`` kept on all repos."""
    flags = {(f.name, f.content_key): f for f in KeepEverywhere.objects.filter(group=group)}
    if not flags:
        return {}
    return {row.id: flag for row in rows if (flag := _flag_of(row, flags)) is not None}


def set_keep_everywhere(group: Group, row: Row, keep: bool, user: User | None) -> None:
    """Flag (or unflag) a row "Keep on all repos"; a new flag is enforced at once."""
    KeepEverywhere.objects.filter(
        group=group, name=row.name, content_key__in=list(row.keys)
    ).delete()
    if keep:
        KeepEverywhere.objects.create(
            group=group, name=row.name, content_key=row.content_key, created_by=user
        )
    audit.record(
        "image.keep" if keep else "image.unkeep",
        user=user,
        group=group,
        image=row.name,
        details={"row": row.id},
    )
    if keep:
        enforce_keep_everywhere(group)


def enforce_keep_everywhere(group: Group) -> list[int]:
    """Submit a copy of every kept row to each of the group's repos that lacks it.

    Runs as the flag's author would (their plan, their name on the jobs). A repo whose last poll
    failed, or whose copy failed, is not tried again here (the job's own retries and the person's
    Retry are for that): it is written on the flag as unreachable, with the reason, for the page.

    Returns:
        The ids of the jobs submitted.
    """
    flags = {
        (f.name, f.content_key): f
        for f in KeepEverywhere.objects.filter(group=group).select_related("created_by")
    }
    if not flags:
        return []
    matrix = group_matrix(group, with_jobs=True)
    overlays = matrix.job_cells
    job_ids = []
    for row in matrix.polled:
        flag = _flag_of(row, flags)
        if flag is None:
            continue
        unreachable, targets = [], []
        for repo in matrix.repos:
            overlay = overlays.get((row.id, repo.pk))
            if row.cells[repo.pk].copies or (
                overlay is not None and overlay.state != CellState.FAILED
            ):
                continue
            if repo.last_poll_ok is False:
                unreachable.append(
                    {"repo": repo.pk, "name": repo.name, "reason": repo.last_poll_error}
                )
            elif overlay is not None:
                unreachable.append({"repo": repo.pk, "name": repo.name, "reason": overlay.reason})
            else:
                targets.append(Change(row.id, repo.pk, Action.COPY))
        if targets and flag.created_by is not None:
            job_ids += _keep_copies(group, flag.created_by, targets, matrix.version, unreachable)
        KeepEverywhere.objects.filter(pk=flag.pk).update(
            unreachable=unreachable, checked_at=timezone.now()
        )
    return job_ids


def _keep_copies(
    group: Group, user: User, changes: list[Change], version: str, unreachable: list
) -> list[int]:
    """Plan and apply ``changes`` for a kept row; refusals are added to ``unreachable``.

    A plan is stored only when something will be copied, so a row that cannot be copied for a
    while does not leave a plan behind at every check.
    """
    _matrix, verdicts = _verdicts(group, changes, parse_version(version), False)
    unreachable += [
        {"repo": v.change.repo, "name": v.repo_name, "reason": v.reason}
        for v in verdicts
        if v.status == ItemStatus.REFUSED
    ]
    planned = [v.change for v in verdicts if v.status == ItemStatus.PLANNED]
    if not planned:
        return []
    return apply_plan(create_plan(group, user, planned, version), user)
