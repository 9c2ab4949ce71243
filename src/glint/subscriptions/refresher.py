"""The subscriptions loop of ``glint serve``: a daemon thread that refreshes the lists that are due.

Every :data:`CHECK_SECONDS` it calls ``refresh.refresh_due``; a subscription is leased for its
refresh, so several ``glint serve`` processes on one database refresh each list once. The uploads
a refresh starts are ordinary jobs, run by whatever runs jobs (``GLINT_JOB_RUNNER``).
"""

from __future__ import annotations

import logging
import threading
import time

from django.db import close_old_connections, connection

from glint.subscriptions.refresh import refresh_due

__all__ = ["CHECK_SECONDS", "start_refresher"]

log = logging.getLogger(__name__)

#: Seconds between two looks for due subscriptions.
CHECK_SECONDS = 30.0

_thread: threading.Thread | None = None
_lock = threading.Lock()


def _run() -> None:
    while True:
        time.sleep(CHECK_SECONDS)
        close_old_connections()
        try:
            refresh_due()
        except Exception:  # a database hiccup must not end the loop for good
            log.exception("subscription refresh round failed")
        finally:
            connection.close()


def start_refresher() -> threading.Thread:
    """Start this process's refresher thread (idempotent); ``glint serve`` calls it."""
    global _thread
    with _lock:
        if _thread is None or not _thread.is_alive():
            _thread = threading.Thread(target=_run, name="glint-subscriptions", daemon=True)
            _thread.start()
        return _thread
