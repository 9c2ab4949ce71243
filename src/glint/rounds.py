"""Daemon threads of ``glint serve`` that do one round of work every few seconds.

The keep-on-all-repos keeper and the subscriptions refresher are the same loop with different
rounds: sleep, take fresh database connections, run the round, log what failed and go on (a
database hiccup must not end the loop for good), and close the connection so an idle thread holds
none. This module is that loop, once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from django.db import close_old_connections, connection

__all__ = ["RoundThread"]

log = logging.getLogger(__name__)


class RoundThread:
    """One daemon thread per process that calls ``work`` every ``seconds``; :meth:`start` is
    idempotent."""

    def __init__(self, name: str, work: Callable[[], object], seconds: float):
        self.name, self._work, self._seconds = name, work, seconds
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def _run(self) -> None:
        while True:
            time.sleep(self._seconds)
            close_old_connections()
            try:
                self._work()
            except Exception:
                log.exception("%s: round failed", self.name)
            finally:
                connection.close()

    def start(self) -> threading.Thread:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
                self._thread.start()
            return self._thread
