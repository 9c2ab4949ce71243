"""The engine's threads run in a copy of the context of the thread that starts them.

A new thread starts with an empty ``contextvars`` context (before Python 3.14), so what the
caller set there would be lost in the copy's readers, hashers and target threads: the job a log
line is about (``glint.logs.job_context``), for one. Each thread gets its own copy, since one
context cannot be entered by two threads at once.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable

__all__ = ["engine_thread"]


def engine_thread(target: Callable[..., object], *args, name: str) -> threading.Thread:
    """A daemon thread (not started) that runs ``target(*args)`` in a copy of this context."""
    context = contextvars.copy_context()
    return threading.Thread(target=context.run, args=(target, *args), name=name, daemon=True)
