"""The plans app's one door into the jobs app (``glint.jobs.services``).

Kept in one module so the planner, the keeper and the pages ask the jobs app the same way, and
the jobs app's ``Submission`` meets the plans' job ids here.
"""

from __future__ import annotations

from glint.inventory import services as inventory
from glint.jobs import services as jobs
from glint.jobs import states
from glint.jobs.models import Job, JobTarget

__all__ = ["JobRefused", "cell_overlays", "failed_job_of_cell", "has_live_jobs", "matrix_with_jobs", "retry",
           "submit_copy", "submit_delete", "submit_property_sync"]

JobRefused = jobs.JobRefused
cell_overlays = jobs.cell_overlays
retry = jobs.retry


def matrix_with_jobs(group) -> inventory.GroupMatrix:
    """The group's matrix as people see it, on pages and in the API alike: the polled cells, with
    the cells that jobs speak for (queued, copying n%, verifying, failed, deleting) laid over them."""
    return inventory.group_matrix(group, overlays=cell_overlays(group) or None)


def submit_copy(group, user, source, repos) -> list[int]:
    """Queue one copy of ``source`` (an ``inventory.Image``) to ``repos``.

    Returns:
        The ids of the jobs that carry it: the new one, and live ones already copying to some
        of the repos (a copy is never repeated).
    """
    return [job.pk for job in jobs.submit_copy(group, source=source, targets=repos, requester=user).jobs]


def submit_delete(group, user, images, *, force: bool = False) -> list[int]:
    """Queue one delete job of ``images`` (``inventory.Image`` rows of one row); the ids that carry it."""
    return [job.pk for job in jobs.submit_delete(group, images=images, requester=user, force=force).jobs]


def submit_property_sync(group, user, source, copies) -> list[int]:
    """Queue one property-sync job making ``copies`` equal to ``source``; the ids that carry it."""
    return [job.pk for job in jobs.submit_property_sync(group, source=source, copies=copies, requester=user).jobs]


def failed_job_of_cell(group, row_id: str, repo_id: int) -> Job | None:
    """The job whose failed target the matrix shows in this cell (what its Retry retries).

    Jobs carry the row's content key of when they were planned; the row may answer to a stronger
    one since (a copy's sha256), so the job is looked for under every key the row answers to.
    """
    row = inventory.group_matrix(group).row(row_id)
    if row is None:
        return None
    target = (JobTarget.objects.filter(job__group=group, repo_id=repo_id, state=states.TargetState.FAILED.value,
                                       job__image_name=row.name, job__content_key__in=row.keys)
              .select_related("job").order_by("-job__created", "-job_id").first())
    return target.job if target else None


def has_live_jobs(group) -> bool:
    """Some job of the group is queued, running or waiting for an automatic retry."""
    return Job.objects.filter(group=group).live().exists()
