"""Jobs pages: the list (filters: ``glint.jobs.filtersets``) and a job's detail with Cancel and
Retry.

Served at ``/jobs/`` (url names ``jobs:list``, ``jobs:detail``, ...). Acting on jobs goes through
``glint.jobs.services``. Members see and act on their group's jobs; another group's job is a 404.
A live job's detail re-draws its targets every few seconds.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from glint.accounts.access import current_group, visible_group
from glint.jobs.choices import JobState
from glint.jobs.filtersets import JobFilterSet
from glint.jobs.matrix import failed_job_of_cell
from glint.jobs.models import Job
from glint.jobs.services import JobRefused, no_site_worker, workers_with_jobs
from glint.jobs.services import cancel as cancel_job
from glint.jobs.services import retry as retry_job
from glint.repos.models import Repo

#: Jobs per list page.
PAGE_SIZE = 50


def job_list(request):
    group = current_group(request)
    if group is None:
        return render(request, "web/no_group.html")
    jobs = Job.objects.filter(group=group).select_related("source_repo").prefetch_related("targets")
    filters = JobFilterSet(request.GET, queryset=jobs)
    valid = filters.is_valid()
    page = Paginator(filters.qs if valid else jobs.none(), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    values = {name: request.GET.get(name, "").strip() for name in ("state", "requester", "repo")}
    query = "&".join(f"{k}={v}" for k, v in {"group": group.pk, **values}.items() if v)
    return render(
        request,
        "jobs/list.html",
        {
            "group": group,
            "page": page,
            "filters": values,
            "errors": filters.errors,
            "states": JobState.choices,
            "query": query,
            "repos": Repo.objects.filter(group=group).order_by("name"),
        },
        status=200 if valid else 400,
    )


def worker_list(request):
    """The cluster: every job runner, when it was last heard of, and the jobs it runs (admins)."""
    if not request.user.is_admin:
        raise PermissionDenied("The cluster page is for Glint admins.")
    return render(request, "jobs/workers.html", {"workers": workers_with_jobs()})


def _visible_job(request, job_id) -> Job:
    return get_object_or_404(
        Job.objects.visible_to(request.user).select_related("group", "source_repo"), pk=job_id
    )


def job_detail(request, job_id):
    job = _visible_job(request, job_id)
    context = {
        "job": job,
        "group": job.group,
        "targets": list(job.targets.all()),
        "no_site_worker": no_site_worker(job),
    }
    if request.headers.get("HX-Request") == "true":
        return render(request, "jobs/_job_live.html", context)
    return render(request, "jobs/detail.html", context)


@require_POST
def cancel(request, job_id):
    job = _visible_job(request, job_id)
    try:
        cancel_job(job, request.user)
        messages.success(
            request,
            f"Job {job.pk} is being cancelled; what it wrote and did not finish is removed.",
        )
    except JobRefused as exc:
        messages.error(request, exc.message)
    return redirect("jobs:detail", job_id=job.pk)


@require_POST
def retry(request, job_id):
    job = _visible_job(request, job_id)
    _retry(request, job)
    return redirect("jobs:detail", job_id=job.pk)


def _retry(request, job: Job) -> None:
    try:
        retry_job(job, request.user)
        messages.success(
            request, f"Job {job.pk} queued again: only the targets that are not done are redone."
        )
    except JobRefused as exc:
        messages.error(request, exc.message)


@require_POST
def retry_cell(request):
    """The Retry of a failed matrix cell: retries the job whose target failed there."""
    group = visible_group(request.user, request.POST.get("group"))
    row_id, _, repo_id = request.POST.get("cell", "").rpartition(":")
    job = failed_job_of_cell(group, row_id, int(repo_id)) if repo_id.isdigit() else None
    if job is None:
        messages.info(request, "Nothing to retry there any more.")
    else:
        _retry(request, job)
    return redirect(f"{reverse('images:matrix')}?group={group.pk}")
