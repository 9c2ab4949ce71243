"""Poll pages of the inventory: the Refresh action and the per-repo poll status strip.

Refresh answers htmx with a partial and anything else with a redirect, so it works without
JavaScript too. The matrix pages themselves are ``glint.plans.views``'s. Every view resolves the
group through ``glint.accounts.access``: another group's repos are a 404.
"""

from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from glint.accounts.access import current_group, visible_group
from glint.inventory import services
from glint.inventory.poller import request_refresh
from glint.repos.models import Repo


def _is_htmx(request) -> bool:
    return request.headers.get("HX-Request") == "true"


def _matrix_url(group) -> str:
    return f"{reverse('images:matrix')}?group={group.pk}"


def _refresh_target(request):
    """The group and repos a refresh is for: ``repo=`` one repo, else ``group=`` all of them."""
    if request.POST.get("repo"):
        repo = (
            Repo.objects.filter(
                pk__in=[request.POST["repo"]] if request.POST["repo"].isdigit() else [],
                group__in=request.user.visible_groups(),
            )
            .select_related("group")
            .first()
        )
        if repo is None:
            raise Http404("No such repo.")
        return repo.group, [repo.pk]
    group = visible_group(request.user, request.POST.get("group"))
    return group, [repo.pk for repo in services.group_repos(group)]


@require_POST
def refresh(request):
    group, repo_ids = _refresh_target(request)
    request_refresh(repo_ids)
    if _is_htmx(request):
        return _poll_status_response(request, group)
    messages.info(
        request, "Refresh requested: the matrix shows the new listings once the polls end."
    )
    return redirect(_matrix_url(group))


def _poll_status_response(request, group):
    repos = services.group_repos(group)
    pending = services.refresh_pending(repos)
    response = render(
        request, "inventory/_poll_status.html", {"repos": repos, "group": group, "pending": pending}
    )
    if not pending and request.GET.get("was_pending"):
        response["HX-Refresh"] = "true"  # the polls ended: reload the page to show their results
    return response


def poll_status(request):
    """The per-repo poll status strip (an htmx partial that re-polls itself while refreshing)."""
    group = current_group(request)
    if group is None:
        return HttpResponse("")
    return _poll_status_response(request, group)
