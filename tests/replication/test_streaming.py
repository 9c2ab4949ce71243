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


class PeakRss:
    """Samples this process's RSS in a thread while a ``with`` block runs; ``peak`` is the highest."""

    def __init__(self, interval: float = 0.02):
        self.interval, self.peak = interval, _rss_kib()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self):
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, _rss_kib())

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def test_copies_to_two_targets_keep_memory_bounded_whatever_the_size(clouds, tmp_path):
    """Issue 4: a 200 MiB copy to two clouds grows the process's peak RSS by under 32 MiB, and an
    800 MiB copy by no more (4 MiB of slack for sampling noise). Both are measured from the same
    baseline, taken before the first copy, so memory the first copy kept counts against the
    second. Sources are uploaded from a generator, never held in memory. (The large copies of this
    package: they run once.)"""
    drivers = [clouds.driver(SOURCE), *(clouds.driver(c) for c in TARGETS)]
    for driver in drivers:
        driver.check()  # sessions and tokens exist before the baseline
    baseline = _rss_kib()
    growth_mib = {}
    for size_mib in (200, 800):
        source_id = clouds.make_image(SOURCE, size_mib * MIB, name=clouds.name(f"{size_mib}mib"))
        started = time.monotonic()
        with PeakRss() as rss:
            result = copy_image(
                CopySource(drivers[0], source_id, "r1"),
                [CopyTarget("a", drivers[1]), CopyTarget("b", drivers[2])],
                cache=ContentCache(tmp_path / f"cache-{size_mib}", min_free_bytes=0))
        elapsed = time.monotonic() - started
        assert result.ok, {k: t.error for k, t in result.targets.items()}
        growth_mib[size_mib] = (rss.peak - baseline) / 1024
        print(f"{size_mib} MiB to 2 targets: {elapsed:.1f} s, {size_mib / elapsed:.0f} MiB/s, "
              f"peak RSS growth {growth_mib[size_mib]:.1f} MiB")
        drivers[0].delete(source_id)  # the next, larger copy needs the disk more than these images
        for key, driver in zip("ab", drivers[1:]):
            driver.delete(result.targets[key].image_id)
    assert growth_mib[200] < 32
    assert growth_mib[800] < 32 and growth_mib[800] <= growth_mib[200] + 4, growth_mib
