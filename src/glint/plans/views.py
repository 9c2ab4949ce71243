"""The matrix pages and the plans made on them.

The matrix page (``/images/``), an image row's detail, the conflicts page and their Hide/Show/
Acknowledge actions live here, beside the plans, because the matrix page *is* where plans are
made: its form is a plan, its live cells follow the plan's jobs, and plans is the app that may see
both the inventory and the jobs (``glint.jobs.matrix`` builds what they show). Refresh and the
poll status strip are the inventory's (``glint.inventory.views``).

The matrix form sends every ticked cell (``cell``) and every cell that was ticked when the page
was drawn (``was``), with the inventory version the page showed: the difference is what the
person changed, and only that is planned (``docs/architecture.md``, "Apply sends only the cells
the person changed"). The actions answer htmx with a partial and anything else with a redirect,
so they work without JavaScript too. Every view finds the group through ``glint.accounts.access``:
another group's plan, row or cell is a 404.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from glint.accounts.access import current_group, visible_group
from glint.inventory import services as inventory
from glint.inventory.models import Image
from glint.jobs.matrix import find_conflict, find_row, group_matrix, has_live_jobs
from glint.matrix.planning import Change
from glint.plans import services
from glint.plans.choices import Action, ItemStatus
from glint.plans.filtersets import ORDERS, RowFilterForm
from glint.plans.models import Plan
from glint.plans.templatetags.matrix_cells import LIVE_STATES
from glint.replication import FORMAT_LABELS
from glint.subscriptions.services import listed_copies

#: Rows per matrix page: a page of 20 repos stays a few thousand cells, quick to render and read.
ROWS_PER_PAGE = 100
#: The image page's links to the other formats: (format, label).
OTHER_FORMATS = tuple(FORMAT_LABELS.items())
#: Cell states of a job at work: the page follows these cells live.
#: Polls in a row with nothing busy after which the matrix page reloads itself.
IDLE_POLLS = 2
#: Most cells one apply may change (a full page is 100 rows × a few dozen repos).
MAX_CHANGES = 10_000


def _matrix_url(group) -> str:
    return f"{reverse('images:matrix')}?group={group.pk}"


def _cells(values: list[str]) -> set[tuple[str, int]]:
    """``row:repo`` form values → ``{(row, repo)}``; malformed values raise ValueError."""
    cells = set()
    for value in values:
        row, _, repo = value.rpartition(":")
        if not row or not repo.isdigit():
            raise ValueError(value)
        cells.add((row, int(repo)))
    return cells


def changes_from_form(post) -> list[Change]:
    """The cells a person changed on the matrix: newly ticked → copy, newly unticked → delete."""
    ticked, was = _cells(post.getlist("cell")), _cells(post.getlist("was"))
    changes = [Change(row, repo, Action.COPY) for row, repo in sorted(ticked - was)]
    changes += [Change(row, repo, Action.DELETE) for row, repo in sorted(was - ticked)]
    return changes


def _posted_id(request, field: str) -> int:
    """A posted object id; -1 (matches nothing, so the service says "no such …") when not a
    number."""
    value = request.POST.get(field, "")
    return int(value) if value.isdigit() else -1


@require_POST
def create(request):
    group = visible_group(request.user, request.POST.get("group"))
    try:
        changes = changes_from_form(request.POST)
    except ValueError:
        return HttpResponseBadRequest("Malformed cell in the form.")
    if len(changes) > MAX_CHANGES:
        return HttpResponseBadRequest(f"Too many changes at once (at most {MAX_CHANGES}).")
    if not changes:
        messages.info(
            request,
            "Nothing changed: tick a cell to copy the image there, untick one to delete it.",
        )
        return redirect(_matrix_url(group))
    try:
        plan = services.create_plan(
            group,
            request.user,
            changes,
            request.POST.get("inventory_version", ""),
            force=request.POST.get("force") == "1",
        )
    except services.PlanError as exc:
        messages.error(request, exc.message)
        return redirect(_matrix_url(group))
    return redirect("plans:detail", plan_id=plan.pk)


def _visible_plan(request, plan_id) -> Plan:
    return get_object_or_404(
        Plan.objects.select_related("group", "created_by"),
        pk=plan_id,
        group__in=request.user.visible_groups(),
    )


def detail(request, plan_id):
    plan = _visible_plan(request, plan_id)
    items = list(plan.items.select_related("source__repo"))
    planned = [i for i in items if i.status == ItemStatus.PLANNED]
    return render(
        request,
        "plans/detail.html",
        {
            "plan": plan,
            "group": plan.group,
            "copies": [i for i in planned if i.action == Action.COPY],
            "deletes": [i for i in planned if i.action == Action.DELETE],
            "noops": [i for i in items if i.status == ItemStatus.NOOP],
            "refused": [i for i in items if i.status == ItemStatus.REFUSED],
        },
    )


@require_POST
def apply(request, plan_id):
    plan = _visible_plan(request, plan_id)
    try:
        job_ids = services.apply_plan(plan, request.user)
    except services.PlanError as exc:
        messages.error(request, exc.message)
        return redirect("plans:detail", plan_id=plan.pk)
    refused = plan.items.filter(status=ItemStatus.REFUSED).count()
    if job_ids:
        messages.success(
            request,
            f"Applied: {len(job_ids)} job{'s' if len(job_ids) != 1 else ''} started. "
            "The cells below follow them.",
        )
    else:
        messages.info(request, "Nothing to do: the plan held no copy or delete.")
    if refused:
        messages.warning(
            request,
            f"{refused} change{'s were' if refused != 1 else ' was'} refused; "
            f"see plan {plan.pk} for the reasons.",
        )
    return redirect(_matrix_url(plan.group))


@require_POST
def keep(request, row_id):
    """Flag a row "Keep on all repos" (``keep=1``) or drop the flag (``keep=0``)."""
    matrix, row = find_row(request.user, row_id)
    if row.hidden:
        raise PermissionDenied("A hidden row is never copied: show it first.")
    wanted = request.POST.get("keep") == "1"
    services.set_keep_everywhere(matrix.group, row, wanted, request.user)
    messages.success(
        request,
        f"“{row.name}” {'is kept on all repos' if wanted else 'is no longer kept on all repos'}.",
    )
    return redirect(
        request.POST.get("next")
        if str(request.POST.get("next", "")).startswith("/")
        else _matrix_url(matrix.group)
    )


@require_POST
def delete_duplicate(request, conflict_id):
    """The conflicts page's "Delete this copy" of a duplicate."""
    matrix, conflict = find_conflict(request.user, conflict_id)
    try:
        job_ids = services.delete_duplicate(
            matrix.group,
            conflict,
            _posted_id(request, "image"),
            request.user,
            force=request.POST.get("force") == "1",
        )
        messages.success(request, f"Deleting the copy: job {', '.join(map(str, job_ids))}.")
    except services.PlanError as exc:
        messages.error(request, exc.message)
    return redirect(f"{reverse('images:conflicts')}?group={matrix.group.pk}")


@require_POST
def rename_copy(request, conflict_id):
    """The conflicts page's "Rename" of one copy."""
    matrix, conflict = find_conflict(request.user, conflict_id)
    try:
        renamed = services.rename_copy(
            matrix.group,
            conflict,
            _posted_id(request, "image"),
            request.POST.get("name", ""),
            request.user,
        )
        messages.success(
            request,
            f"Renamed in {renamed.repo.name}; the page shows the new name after the next poll.",
        )
    except services.PlanError as exc:
        messages.error(request, exc.message)
    return redirect(f"{reverse('images:conflicts')}?group={matrix.group.pk}")


@require_POST
def sync_properties(request, row_id):
    """The image page's "Make properties equal (from <repo>)"."""
    matrix, row = find_row(request.user, row_id)
    try:
        job_ids = services.sync_row_properties(
            matrix.group, row, _posted_id(request, "source_repo"), request.user
        )
        messages.success(
            request, f"Making the properties equal: job {', '.join(map(str, job_ids))}."
        )
    except services.PlanError as exc:
        messages.error(request, exc.message)
    return redirect("images:detail", row_id=row.id)


# The matrix pages


def _is_htmx(request) -> bool:
    return request.headers.get("HX-Request") == "true"


def matrix(request):
    group = current_group(request)
    if group is None:
        return render(request, "web/no_group.html")
    data = group_matrix(group, with_jobs=True)
    hidden_view = request.GET.get("view") == "hidden"
    text, order = request.GET.get("q", ""), request.GET.get("sort", "name")
    filters = RowFilterForm({"q": text, "sort": order, "hidden": str(hidden_view).lower()})
    valid = filters.is_valid()
    rows = filters.rows(data.rows) if valid else []
    page = Paginator(rows, ROWS_PER_PAGE).get_page(request.GET.get("page"))
    kept = services.kept_rows(group, page.object_list)
    listed = listed_copies(group)
    return render(
        request,
        "plans/matrix.html",
        {
            "matrix": data,
            "group": group,
            "page": page,
            "lines": [
                (
                    row,
                    [(repo, row.cells[repo.pk]) for repo in data.repos],
                    kept.get(row.id),
                    listed.subscription_of(row.copies),
                )
                for row in page
            ],
            "keepers": listed.keepers,
            "editable": not hidden_view,  # hidden rows are never changed by an apply
            "watching": any(
                cell.state.value in LIVE_STATES for row in page for cell in row.cells.values()
            ),
            "hidden_view": hidden_view,
            "hidden_count": sum(1 for r in data.rows if r.hidden),
            "shown_count": sum(1 for r in data.rows if not r.hidden),
            "text": text,
            "order": order,
            "orders": ORDERS,
            "errors": filters.errors,
            "pending": inventory.refresh_pending(data.repos),
        },
        status=200 if valid else 400,
    )


def detail_of_row(request, row_id):
    data, row = find_row(request.user, row_id)
    images = list(
        Image.objects.filter(pk__in=[c.pk for c in row.copies])
        .select_related("repo__inventory")
        .order_by("repo__name", "image_id")
    )
    return render(
        request,
        "plans/image_detail.html",
        {
            "matrix": data,
            "group": data.group,
            "row": row,
            "images": images,
            "conflicts": [c for c in data.conflicts if any(r.id == row.id for r in c.rows)],
            "absent": [repo for repo in data.repos if not row.cells[repo.pk].copies],
            "differences": services.property_differences(images),
            "other_formats": OTHER_FORMATS,
        },
    )


def conflicts(request):
    group = current_group(request)
    if group is None:
        return render(request, "web/no_group.html")
    data = group_matrix(group)
    items = [_conflict_item(group, data, c) for c in data.conflicts]
    return render(
        request,
        "plans/conflicts.html",
        {
            "matrix": data,
            "group": group,
            "open": [i for i in items if not i["conflict"].acknowledged],
            "acknowledged": [i for i in items if i["conflict"].acknowledged],
        },
    )


def _conflict_item(group, data, conflict) -> dict:
    """What the conflicts page shows of one group: where, and each image with its row."""
    names = {repo.pk: repo.name for repo in data.repos}
    row_of = {copy.pk: row for row in conflict.rows for copy in row.copies}
    return {
        "conflict": conflict,
        "id": f"{group.pk}-{conflict.key}",
        "where": names.get(conflict.repo_id, "") if conflict.repo_id else "across repos",
        "entries": [
            (names[c.repo_id], c, row_of[c.pk])
            for c in sorted(conflict.copies, key=lambda c: (names[c.repo_id], c.name))
        ],
    }


def _set_hidden(request, row_id, hidden: bool):
    data, row = find_row(request.user, row_id)
    inventory.set_hidden(data.group, row, hidden, request.user)
    if _is_htmx(request):
        return render(
            request,
            "plans/_row_moved.html",
            {"row": row, "hidden": hidden, "colspan": len(data.repos) + 2, "group": data.group},
        )
    messages.success(request, f"“{row.name}” {'hidden' if hidden else 'shown'}.")
    return redirect(request.POST.get("next") or _matrix_url(data.group))


@require_POST
def hide(request, row_id):
    return _set_hidden(request, row_id, True)


@require_POST
def show(request, row_id):
    return _set_hidden(request, row_id, False)


@require_POST
def acknowledge_conflict(request, conflict_id):
    data, conflict = find_conflict(request.user, conflict_id)
    group = data.group
    inventory.acknowledge(group, conflict, request.user)
    messages.success(request, "Conflict acknowledged; it comes back if its images change.")
    return redirect(f"{reverse('images:conflicts')}?group={group.pk}")


# Live cells


def _watched(request) -> list[tuple[str, int]]:
    try:
        if not request.GET.get("idle", "0").isdigit():
            raise ValueError("idle")
        return sorted(_cells(request.GET.getlist("watch")))[:MAX_CHANGES]
    except ValueError:
        raise Http404("Malformed cell.") from None


def live_cells(request):
    """The watched cells of the matrix page, swapped in out of band every few seconds.

    Cells are watched from the page load that showed them at work until the page reloads. The
    page reloads itself once :data:`IDLE_POLLS` polls in a row found nothing busy (no watched
    cell at work, no poll pending for their repos, no live job in the group): then it shows the
    new inventory and version, so the next Apply is judged against what the person sees. Counting
    idle polls (carried by the poller element) bridges the moment between a job's end and the
    poll it asks for.
    """
    group = visible_group(request.user, request.GET.get("group"))
    watched = _watched(request)
    matrix = group_matrix(group, with_jobs=True)
    repos = {repo.pk: repo for repo in matrix.repos}
    cells = []
    for row_id, repo_id in watched:
        row, repo = matrix.row(row_id), repos.get(repo_id)
        if row is None or repo is None:  # the row's identity changed (a stronger hash joined)
            return _reload(request)
        cell = row.cells[repo_id]
        refreshing = (row.id, repo_id) not in matrix.job_cells and inventory.refresh_pending([repo])
        cells.append(
            {
                "row": row,
                "repo": repo,
                "cell": cell,
                "refreshing": refreshing,
                "busy": refreshing or cell.state.value in LIVE_STATES,
            }
        )
    busy = any(c["busy"] for c in cells) or has_live_jobs(group)
    idle = 0 if busy else int(request.GET.get("idle", "0") or 0) + 1
    if idle >= IDLE_POLLS:
        return _reload(request)
    return render(
        request,
        "plans/_live_cells.html",
        {
            "group": group,
            "cells": cells,
            "watching": True,
            "idle": idle,
            "editable": True,
            "keepers": listed_copies(group).keepers,
        },
    )


def _reload(request):
    response = HttpResponse("")
    response["HX-Refresh"] = "true"
    return response
