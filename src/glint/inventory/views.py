"""Image pages: the matrix, an image row's detail, conflicts, and the Hide/Show/Refresh actions.

The actions answer htmx with a partial and anything else with a redirect, so they work without
JavaScript too. Every view resolves the group through ``glint.accounts.access``: another group's
rows are a 404.
"""

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from glint.accounts.access import current_group, visible_group
from glint.inventory import services
from glint.inventory.matrix import SORT_KEYS, filter_rows, sort_rows
from glint.inventory.models import Image
from glint.inventory.poller import request_refresh
from glint.plans import jobs_bridge
from glint.plans.services import kept_rows, property_differences
from glint.plans.views import LIVE_STATES
from glint.repos.models import Repo

#: Rows per matrix page: a page of 20 repos stays a few thousand cells, quick to render and read.
ROWS_PER_PAGE = 100


def _is_htmx(request) -> bool:
    return request.headers.get("HX-Request") == "true"


def _matrix_url(group, **params) -> str:
    query = "&".join(f"{k}={v}" for k, v in {"group": group.pk, **params}.items())
    return f"{reverse('inventory:matrix')}?{query}"


def matrix(request):
    group = current_group(request)
    if group is None:
        return render(request, "inventory/no_group.html")
    data = jobs_bridge.matrix_with_jobs(group)
    hidden_view = request.GET.get("view") == "hidden"
    text = request.GET.get("q", "")
    order = request.GET.get("sort", "name")
    rows = sort_rows(filter_rows(data.rows, text=text, hidden=hidden_view), order)
    page = Paginator(rows, ROWS_PER_PAGE).get_page(request.GET.get("page"))
    kept = kept_rows(group, page.object_list)
    return render(request, "inventory/matrix.html", {
        "matrix": data,
        "group": group,
        "page": page,
        "lines": [(row, [(repo, row.cells[repo.pk]) for repo in data.repos], kept.get(row.id)) for row in page],
        "editable": not hidden_view,  # hidden rows are never changed by an apply
        "live_states": LIVE_STATES,
        "watching": any(cell.state.value in LIVE_STATES for row in page for cell in row.cells.values()),
        "hidden_view": hidden_view,
        "hidden_count": sum(1 for r in data.rows if r.hidden),
        "shown_count": sum(1 for r in data.rows if not r.hidden),
        "text": text,
        "order": order,
        "orders": sorted(SORT_KEYS) + [f"-{k}" for k in sorted(SORT_KEYS)],
        "pending": _pending(data.repos),
    })


def detail(request, row_id):
    data, row = services.find_row(request.user, row_id)
    images = list(Image.objects.filter(pk__in=[c.pk for c in row.copies]).select_related("repo__inventory").order_by("repo__name", "image_id"))
    return render(request, "inventory/detail.html", {
        "matrix": data,
        "group": data.group,
        "row": row,
        "images": images,
        "conflicts": [c for c in data.conflicts if any(r.id == row.id for r in c.rows)],
        "absent": [repo for repo in data.repos if not row.cells[repo.pk].copies],
        "differences": property_differences(images),
    })


def conflicts(request):
    group = current_group(request)
    if group is None:
        return render(request, "inventory/no_group.html")
    data = services.group_matrix(group)
    items = [_conflict_item(group, data, c) for c in data.conflicts]
    return render(request, "inventory/conflicts.html", {
        "matrix": data,
        "group": group,
        "open": [i for i in items if not i["conflict"].acknowledged],
        "acknowledged": [i for i in items if i["conflict"].acknowledged],
    })


def _conflict_item(group, data, conflict) -> dict:
    """What the conflicts page shows of one group: where, and each image with its row."""
    names = {repo.pk: repo.name for repo in data.repos}
    row_of = {copy.pk: row for row in conflict.rows for copy in row.copies}
    return {
        "conflict": conflict,
        "id": f"{group.pk}-{conflict.key}",
        "where": names.get(conflict.repo_id, "") if conflict.repo_id else "across repos",
        "entries": [(names[c.repo_id], c, row_of[c.pk]) for c in sorted(conflict.copies, key=lambda c: (names[c.repo_id], c.name))],
    }


def _set_hidden(request, row_id, hidden: bool):
    data, row = services.find_row(request.user, row_id)
    services.set_hidden(data.group, row, hidden, request.user)
    if _is_htmx(request):
        return render(request, "inventory/_row_moved.html", {
            "row": row, "hidden": hidden, "colspan": len(data.repos) + 2, "group": data.group})
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
    data, conflict = services.find_conflict(request.user, conflict_id)
    group = data.group
    services.acknowledge(group, conflict, request.user)
    messages.success(request, "Conflict acknowledged; it comes back if its images change.")
    return redirect(f"{reverse('inventory:conflicts')}?group={group.pk}")


def _refresh_target(request):
    """The group and repos a refresh is for: ``repo=`` one repo, else ``group=`` all of them."""
    if request.POST.get("repo"):
        repo = Repo.objects.filter(pk__in=[request.POST["repo"]] if request.POST["repo"].isdigit() else [],
                                   group__in=request.user.visible_groups()).select_related("group").first()
        if repo is None:
            raise Http404("No such repo.")
        return repo.group, [repo.pk]
    group = visible_group(request.user, request.POST.get("group"))
    return group, [repo.pk for repo in services.group_repos(group)]


def _pending(repos) -> bool:
    return any(getattr(getattr(r, "inventory", None), "refresh_requested_at", None) for r in repos)


@require_POST
def refresh(request):
    group, repo_ids = _refresh_target(request)
    request_refresh(repo_ids)
    if _is_htmx(request):
        return _poll_status_response(request, group)
    messages.info(request, "Refresh requested: the matrix shows the new listings once the polls end.")
    return redirect(_matrix_url(group))


def _poll_status_response(request, group):
    repos = services.group_repos(group)
    pending = _pending(repos)
    response = render(request, "inventory/_poll_status.html", {"repos": repos, "group": group, "pending": pending})
    if not pending and request.GET.get("was_pending"):
        response["HX-Refresh"] = "true"  # the polls ended: reload the page to show their results
    return response


def poll_status(request):
    """The per-repo poll status strip (an htmx partial that re-polls itself while refreshing)."""
    group = current_group(request)
    if group is None:
        return HttpResponse("")
    return _poll_status_response(request, group)
