"""How the plans app submits jobs: one door into ``glint.jobs.services``.

Kept in one module so the planner's services and the keep-on-all-repos loop ask the jobs app the
same way, and the jobs app's ``Submission`` meets the plans' job ids here.
"""

from __future__ import annotations

from glint.jobs import services as jobs

__all__ = ["JobRefused", "submit_copy", "submit_delete", "submit_property_sync"]

JobRefused = jobs.JobRefused


def submit_copy(group, user, source, repos) -> list[int]:
    """Queue one copy of ``source`` (an ``inventory.Image``) to ``repos``.

    Returns:
        The ids of the jobs that carry it: the new one, and live ones already copying to some
        of the repos (a copy is never repeated).
    """
    return [
        job.pk for job in jobs.submit_copy(group, source=source, targets=repos, requester=user).jobs
    ]


def submit_delete(group, user, images, *, force: bool = False) -> list[int]:
    """Queue one delete job of ``images`` (``inventory.Image`` rows of one row); the ids that carry
    it."""
    return [
        job.pk for job in jobs.submit_delete(group, images=images, requester=user, force=force).jobs
    ]


def submit_property_sync(group, user, source, copies) -> list[int]:
    """Queue one property-sync job making ``copies`` equal to ``source``; the ids that carry it."""
    return [
        job.pk
        for job in jobs.submit_property_sync(
            group, source=source, copies=copies, requester=user
        ).jobs
    ]
