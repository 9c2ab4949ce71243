"""The subscriptions loop of ``glint serve``: a daemon thread that refreshes the lists that are due.

Every :data:`CHECK_SECONDS` it calls ``refresh.refresh_due``; a subscription is leased for its
refresh, so several ``glint serve`` processes on one database refresh each list once. The uploads
a refresh starts are ordinary jobs, run by whatever runs jobs (``GLINT_JOB_RUNNER``).
"""

from __future__ import annotations

import threading

from glint.rounds import RoundThread
from glint.subscriptions.refresh import refresh_due

__all__ = ["CHECK_SECONDS", "start_refresher"]

#: Seconds between two looks for due subscriptions.
CHECK_SECONDS = 30.0

_refresher = RoundThread("glint-subscriptions", refresh_due, CHECK_SECONDS)


def start_refresher() -> threading.Thread:
    """Start this process's refresher thread (idempotent); ``glint serve`` calls it."""
    return _refresher.start()
