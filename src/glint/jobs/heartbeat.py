"""Who runs jobs: each job runner writes a heartbeat row (``Worker``) every few seconds, so the
cluster page and ``/api/v1/workers/`` can list the runners, when each was last heard of, and the
jobs it holds.

A runner's name is the prefix of every lease it takes (``claims.worker_owner``). ``glint worker``
names itself in ``GLINT_WORKER_NAME``, and its sites in ``GLINT_WORKER_SITES``, before Celery
forks its pool, so the jobs its pool processes claim carry the name of the worker the heartbeat
is about, and they claim only the jobs of its sites.
"""

from __future__ import annotations

import datetime
import logging
import os
import socket
import threading

from django.db import close_old_connections, connection
from django.utils import timezone

from glint.jobs.models import Worker

__all__ = ["HEARTBEAT_SECONDS", "Heartbeat", "worker_name", "worker_sites"]

log = logging.getLogger(__name__)

#: Seconds between heartbeats; a worker silent for three of them is shown as gone.
HEARTBEAT_SECONDS = 10
NAME_VARIABLE = "GLINT_WORKER_NAME"
SITES_VARIABLE = "GLINT_WORKER_SITES"
#: A runner not heard of for this long (it died, or its machine went away) is dropped from the
#: list by the others' heartbeats.
FORGOTTEN_AFTER = datetime.timedelta(days=1)


def worker_name() -> str:
    """This runner's name: ``GLINT_WORKER_NAME`` (a Celery worker and its pool), else host:pid."""
    return os.environ.get(NAME_VARIABLE) or f"{socket.gethostname()}:{os.getpid()}"


def worker_sites() -> list[str] | None:
    """The sites whose jobs this runner takes besides the jobs of no site (``glint worker
    --site``, comma-separated in ``GLINT_WORKER_SITES``); None when it takes every job (the
    embedded runner of ``glint serve``)."""
    value = os.environ.get(SITES_VARIABLE)
    if value is None:
        return None
    return [site for site in value.split(",") if site]


class Heartbeat(threading.Thread):
    """Writes this runner's ``Worker`` row now and every :data:`HEARTBEAT_SECONDS`; removes it
    when stopped (a runner that dies keeps its row, shown as gone)."""

    def __init__(self, kind: str):
        super().__init__(name="glint-heartbeat", daemon=True)
        self.kind, self.name = kind, worker_name()
        self.stopping = threading.Event()

    def beat(self) -> None:
        Worker.objects.filter(last_seen__lt=timezone.now() - FORGOTTEN_AFTER).delete()
        Worker.objects.update_or_create(
            name=self.name,
            defaults={
                "kind": self.kind,
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "sites": worker_sites() or [],
                "last_seen": timezone.now(),
            },
        )

    def run(self) -> None:
        while True:
            close_old_connections()
            try:
                self.beat()
            except Exception:  # a database hiccup must not end the heartbeat for good
                log.exception("worker heartbeat failed; trying again")
            finally:
                connection.close()  # nothing held open between beats (a fork may follow)
            if self.stopping.wait(HEARTBEAT_SECONDS):
                break
        try:
            Worker.objects.filter(name=self.name).delete()
        finally:
            connection.close()

    def stop(self, timeout: float = 5.0) -> None:
        self.stopping.set()
        self.join(timeout)
