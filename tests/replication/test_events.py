"""The event pump: the copier's thread runs the observer's calls and notices its threads' news."""

from __future__ import annotations

import threading

from glint.replication.events import EventPump

#: Far longer than any test may take: a pump that waited for its tick would hang the test.
NEVER = 3600.0


def _run_in_thread(pump: EventPump, done) -> threading.Thread:
    thread = threading.Thread(
        target=pump.run_until, args=(done,), kwargs={"tick": NEVER}, daemon=True
    )
    thread.start()
    return thread


def test_a_wake_ends_the_wait_for_a_condition_another_thread_made_true():
    # How the copier learns that every target is prepared, or has ended: those threads set an
    # event and post no call. Without wake() it would notice only at its next tick.
    pump = EventPump()
    ready = threading.Event()
    thread = _run_in_thread(pump, ready.is_set)
    ready.set()
    pump.wake()
    thread.join(10)
    assert not thread.is_alive(), "run_until kept waiting after wake()"


def test_calls_posted_from_other_threads_run_in_the_pumping_thread_before_it_returns():
    ran_in = []
    finished = threading.Event()
    pump = None

    def pumping():
        nonlocal pump
        pump = EventPump()
        started.set()
        pump.run_until(finished.is_set, tick=NEVER)

    started = threading.Event()
    owner = threading.Thread(target=pumping, daemon=True)
    owner.start()
    started.wait(10)
    for n in range(3):
        pump.post(lambda n=n: ran_in.append((n, threading.current_thread())))
    finished.set()
    pump.wake()
    owner.join(10)
    assert not owner.is_alive()
    assert ran_in == [(n, owner) for n in range(3)]
