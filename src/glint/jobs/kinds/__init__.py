"""The kinds of job, one module each, and the table that tells which module runs which kind.

Each kind is a function ``run(job, todo, cancel)``, called by ``glint.jobs.execution`` with the
lease held, for the targets to (re)do: it records each target through ``glint.jobs.runners``,
and everything else (claim, lease, cancel, retries, the job's final state, the audit) stays in
``execution``. The table names the functions by dotted path, as a task queue names its tasks:
the upload and convert kinds belong to the transfers app, which is built on this one (its rows
point at jobs), so this app names them instead of importing them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from django.utils.module_loading import import_string

from glint.jobs import states
from glint.jobs.models import Job, JobTarget

__all__ = ["KINDS", "run_kind"]

#: Job kind → the dotted path of the function that carries it out.
KINDS: dict[str, str] = {
    states.COPY: "glint.jobs.kinds.copy.run",
    states.DELETE: "glint.jobs.kinds.delete.run",
    states.PROPERTY_SYNC: "glint.jobs.kinds.property_sync.run",
    states.UPLOAD: "glint.transfers.upload_job.run_upload",
    states.CONVERT: "glint.transfers.conversion_job.run_conversion",
}


def run_kind(job: Job, todo: list[JobTarget], cancel: threading.Event, stream=None) -> None:
    """Carry out ``job`` for the targets ``todo`` with the function its kind names.

    ``stream`` (an upload's arriving bytes, only in the process that receives them) is passed on
    as the kind's ``stream`` argument, and only when given: the other kinds take none.
    """
    run: Callable[..., None] = import_string(KINDS[job.kind])
    extra = {} if stream is None else {"stream": stream}
    run(job, todo, cancel, **extra)
