"""Glint's log lines: plain text by default, or one JSON object a line (``GLINT_LOG_FORMAT=json``)
for a log collector.

A JSON line holds the time, level, logger and message, and what Glint knows of the work under
way: the request id and the person's DN (in a request), the job, its requester's DN and its
``repos`` (while a worker runs one), and a ``repo`` given by the code that logs. The same
formatter serves ``glint worker``: Celery is told not to replace the logging configuration
(``glint.jobs.celery``). Nothing else is added, and messages are written never to
hold a secret (repo credentials, tokens, the broker's password), so neither do the lines.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import logging
from collections.abc import Iterable, Iterator
from contextvars import ContextVar

from glint.current_request import current_request, current_request_id

__all__ = ["JsonFormatter", "job_context"]

_job = ContextVar("glint_job", default=None)


@contextlib.contextmanager
def job_context(job_id: int, dn: str = "", repos: Iterable[int | None] = ()) -> Iterator[None]:
    """Lines logged inside carry ``"job": job_id``, the requester's ``dn`` and the ids of the
    job's ``repos`` (a worker thread runs one job at a time)."""
    token = _job.set({"job": job_id, "dn": dn, "repos": sorted({r for r in repos if r})})
    try:
        yield
    finally:
        _job.reset(token)


class JsonFormatter(logging.Formatter):
    """One JSON object per record (see the module docstring)."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.datetime.fromtimestamp(record.created, datetime.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if request_id := current_request_id():
            entry["request_id"] = request_id
        user = getattr(current_request(), "user", None)
        if getattr(user, "is_authenticated", False) and getattr(user, "dn", ""):
            entry["dn"] = user.dn
        if (job := _job.get()) is not None:
            entry["job"] = job["job"]
            if job["dn"] and "dn" not in entry:
                entry["dn"] = job["dn"]
            if job["repos"]:
                entry["repos"] = job["repos"]
        if (repo := getattr(record, "repo", None)) is not None:
            entry["repo"] = repo
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)
