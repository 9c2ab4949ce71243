"""Streaming behaviour on the real devcloud: a slow target, and bounded memory."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest

from glint.replication import (
    ContentCache,
    CopyOptions,
    CopySource,
    CopyTarget,
    copy_image,
)
from tests.live import glint_env
from tests.replication.helpers import SOURCE, TARGETS, DoneClock
from tests.replication.throttle import throttle_writes

pytestmark = pytest.mark.devcloud

MIB = 1024 * 1024
REPO_ROOT = Path(__file__).resolve().parents[2]


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
        options=CopyOptions(lag_limit_bytes=4 * MIB),
        observer=clock,
    )
    assert result.ok, {k: t.error for k, t in result.targets.items()}
    fast_time = clock.ended["fast"] - started
    slow_time = clock.ended["slow"] - started
    assert slow_time >= size / (4 * MIB) * 0.9
    assert fast_time < slow_time / 2, (fast_time, slow_time)
    # A real Glance takes bytes slower than the source gives them, so the fast one may read
    # the spool too; the slow one must.
    assert result.targets["slow"].spooled


def copy_in_fresh_process(clouds, source_id: str, cache_dir) -> dict:
    """Copy ``source_id`` from SOURCE to TARGETS in a new interpreter (see rss_copy.py); its
    report."""
    request = {
        "source": clouds.devcloud.cloud_config(SOURCE),
        "image": source_id,
        "cache": str(cache_dir),
        "targets": [clouds.devcloud.cloud_config(cloud) for cloud in TARGETS],
    }
    done = subprocess.run(
        [sys.executable, "-m", "tests.replication.rss_copy"],
        input=json.dumps(request),
        env=glint_env(cache_dir),
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_copies_to_two_targets_keep_memory_bounded_whatever_the_size(clouds, tmp_path):
    """Issue 4: a 200 MiB copy to two clouds grows the copying process's peak RSS by under 32 MiB,
    and an 800 MiB copy by no more. Each copy runs in a fresh process (rss_copy.py), so every
    measurement starts from the same state whatever ran before in this one. One copy's peak comes
    in steps of ~6 MiB, with how many 1 MiB chunks happen to be in flight at once (measured here:
    6.2, 11.3 or 12.3 MiB at either size; a short copy often ends before it reaches the top step,
    and three small copies in a row have all stopped at 6.2), so each size is copied three times,
    interleaved, and the large copies' median is compared with the highest small one, with two
    steps (12 MiB) of slack: memory that grew with the image by even 2% of the bytes copied would
    add more (16 MiB more over the 600 MiB between the sizes), and a leak adds hundreds of MiB.
    Sources are uploaded from a generator, never held in memory. (The large copies of this
    package.)"""
    sizes_mib = (200, 800)
    sources = {
        size: clouds.make_image(SOURCE, size * MIB, name=clouds.name(f"{size}mib"))
        for size in sizes_mib
    }
    growth_mib = {size: [] for size in sizes_mib}
    for attempt in range(3):
        for size_mib, source_id in sources.items():
            report = copy_in_fresh_process(
                clouds, source_id, tmp_path / f"copy-{size_mib}-{attempt}"
            )
            assert not any(report["errors"].values()), report["errors"]
            growth_mib[size_mib].append(report["growth_kib"] / 1024)
            print(
                f"{size_mib} MiB to 2 targets: {report['seconds']:.1f} s, "
                f"{size_mib / report['seconds']:.0f} MiB/s, "
                f"peak RSS growth {growth_mib[size_mib][-1]:.1f} MiB"
            )
            # Keep the disk for the next copy.
            for cloud, image_id in zip(TARGETS, report["image_ids"].values()):
                with clouds.driver(cloud) as driver:
                    driver.delete(image_id)
    assert max(growth_mib[200]) < 32 and max(growth_mib[800]) < 32, growth_mib
    assert statistics.median(growth_mib[800]) <= max(growth_mib[200]) + 12, growth_mib
