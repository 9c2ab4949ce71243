"""Deliver the engine threads' events to the observer in the caller's thread.

The jobs app records progress in a database, and a Django connection belongs to the thread that
opened it; so instead of calling the observer from the reader and writer threads, they post
calls here, and the thread that called :func:`~glint.replication.copy_image` runs them.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from typing import Any

from glint.replication.threads import engine_thread

__all__ = ["EventPump", "Throttle", "stopped_on"]


class EventPump:
    """A queue of observer calls, drained by the owning thread in :meth:`run_until`."""

    def __init__(self) -> None:
        self._queue: queue.Queue[tuple[Callable[..., Any], tuple, Future | None]] = queue.Queue()
        self._owner = threading.get_ident()

    def post(self, func: Callable[..., Any], *args: Any) -> None:
        """Run ``func(*args)`` in the owning thread later; its errors are ignored (an observer
        failing to record progress must not fail a copy)."""
        if threading.get_ident() == self._owner:
            _quietly(func, args)
        else:
            self._queue.put((func, args, None))

    def call(self, func: Callable[..., Any], *args: Any) -> Any:
        """Run ``func(*args)`` in the owning thread and wait for its result or exception."""
        if threading.get_ident() == self._owner:
            return func(*args)
        future: Future = Future()
        self._queue.put((func, args, future))
        return future.result()

    def wake(self) -> None:
        """Have :meth:`run_until` look at ``done()`` now: another thread changed what it
        waits for without posting a call (otherwise it would notice only at the next tick)."""
        self._queue.put((_nothing, (), None))

    def run_until(
        self, done: Callable[[], bool], on_tick: Callable[[], None] | None = None, tick: float = 0.1
    ) -> None:
        """Run posted calls until ``done()`` is true and nothing is left to run.

        Args:
            done: Polled between calls and at least every ``tick`` seconds.
            on_tick: Also called then (the copier checks for a cancel).
            tick: Seconds.
        """
        while True:
            if on_tick is not None:
                on_tick()
            if self._queue.empty() and done():
                return
            try:
                func, args, future = self._queue.get(timeout=tick)
            except queue.Empty:
                if done():
                    return
                continue
            if future is None:
                _quietly(func, args)
            else:
                try:
                    future.set_result(func(*args))
                except BaseException as exc:  # noqa: BLE001 - handed back to the caller
                    future.set_exception(exc)


def _nothing() -> None:
    pass


def _quietly(func: Callable[..., Any], args: tuple) -> None:
    try:
        func(*args)
    except Exception:  # noqa: BLE001 - see EventPump.post
        pass


class Throttle:
    """True at most every ``interval`` seconds, so progress events stay few."""

    def __init__(self, interval: float = 0.5):
        self._interval = interval
        self._next = 0.0

    def ready(self) -> bool:
        now = time.monotonic()
        if now >= self._next:
            self._next = now + self._interval
            return True
        return False


#: Seconds between a cancel and the call that stops the work it watches (at most).
CANCEL_WATCH_SECONDS = 0.2


@contextlib.contextmanager
def stopped_on(cancel: threading.Event | None, stop: Callable[[], None]) -> Iterator[None]:
    """Call ``stop()`` (once, from a watcher thread) if ``cancel`` is set while the block runs:
    for work that blocks its thread and has no cancel check of its own (a child process, a
    read). The watcher ends with the block, within :data:`CANCEL_WATCH_SECONDS`."""
    if cancel is None:
        yield
        return
    finished = threading.Event()

    def watch() -> None:
        while not finished.is_set():
            if cancel.wait(CANCEL_WATCH_SECONDS):
                if not finished.is_set():
                    stop()
                return

    engine_thread(watch, name="glint-cancel-watch").start()
    try:
        yield
    finally:
        finished.set()
