"""Streaming behaviour on the real devcloud: a slow target, and bounded memory."""

from __future__ import annotations

import threading
import time

import pytest

from glint.replication import (
    ContentCache,
    CopyObserver,
    CopyOptions,
    CopySource,
    CopyTarget,
    TargetState,
    copy_image,
)
from tests.replication.conftest import SOURCE, TARGETS
from tests.replication.throttle import throttle_writes

pytestmark = pytest.mark.devcloud

MIB = 1024 * 1024


class DoneClock(CopyObserver):
    def __init__(self):
        self.ended = {}

    def state_changed(self, key, state):
        if state is TargetState.DONE:
            self.ended[key] = time.monotonic()


def test_slow_target_does_not_hold_back_the_fast_one(clouds, tmp_path):
    """A target fed at 4 MiB/s (its upload body paced at the driver; see throttle.py) next to
    an unthrottled one: the fast one is done long before, the slow one continues from the cache
    spool once it lags past the limit, and both are verified by their real Glance."""
    size = 24 * MIB
    source_id = clouds.make_image(SOURCE, size)
    clock = DoneClock()
    started = time.monotonic()
    slow = throttle_writes(clouds.driver(TARGETS[1]), 4 * MIB)
    result = copy_image(
        CopySource(clouds.driver(SOURCE), source_id, "r1"),
        [CopyTarget("fast", clouds.driver(TARGETS[0])), CopyTarget("slow", slow)],
        cache=ContentCache(tmp_path, min_free_bytes=0),
        options=CopyOptions(lag_limit_bytes=4 * MIB), observer=clock)
    assert result.ok, {k: t.error for k, t in result.targets.items()}
    fast_time = clock.ended["fast"] - started
    slow_time = clock.ended["slow"] - started
    assert slow_time >= size / (4 * MIB) * 0.9
    assert fast_time < slow_time / 2, (fast_time, slow_time)
    # A real Glance takes bytes slower than the source gives them, so the fast one may read
    # the spool too; the slow one must.
    assert result.targets["slow"].spooled


def _rss_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_200_mib_copy_to_two_targets_keeps_memory_bounded(clouds, tmp_path):
    """Issue 4: a 200 MiB copy to two clouds grows the process's peak RSS by under 32 MiB.
    The source is uploaded from a generator, never held in memory; RSS is sampled in a thread.
    (The one large copy of this package: it runs once.)"""
    size = 200 * MIB
    source_id = clouds.make_image(SOURCE, size)
    drivers = [clouds.driver(SOURCE), *(clouds.driver(c) for c in TARGETS)]
    for driver in drivers:
        driver.check()  # sessions and tokens exist before the baseline
    baseline = _rss_kib()
    peak = [baseline]
    stop = threading.Event()

    def sample():
        while not stop.wait(0.02):
            peak[0] = max(peak[0], _rss_kib())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.monotonic()
    try:
        result = copy_image(
            CopySource(drivers[0], source_id, "r1"),
            [CopyTarget("a", drivers[1]), CopyTarget("b", drivers[2])],
            cache=ContentCache(tmp_path, min_free_bytes=0))
    finally:
        stop.set()
        sampler.join()
    elapsed = time.monotonic() - started
    assert result.ok, {k: t.error for k, t in result.targets.items()}
    growth_mib = (peak[0] - baseline) / 1024
    print(f"200 MiB to 2 targets: {elapsed:.1f} s, {size / MIB / elapsed:.0f} MiB/s, "
          f"peak RSS growth {growth_mib:.1f} MiB")
    assert growth_mib < 32
