"""Engine behaviour under faults a real cloud cannot be made to show on demand.

Every test here uses the in-memory fake cloud of ``fakes.py`` on purpose, and says why; what a
real cloud can show is tested against the devcloud in the other modules.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time

import pytest

from glint.clouds import ServiceUnavailable
from glint.replication import (
    ContentCache,
    CopyCancelled,
    CopyObserver,
    CopyOptions,
    CopySource,
    CopyTarget,
    TargetOutcome,
    TargetState,
    TargetVerificationFailed,
    cache_image,
    copy_image,
)
from tests.replication.fakes import FakeCloud, FakeDriver
from tests.replication.helpers import DoneClock

MIB = 1024 * 1024


def _source(size: int) -> tuple[FakeCloud, str, bytes]:
    cloud = FakeCloud()
    data = os.urandom(size)
    return cloud, cloud.add(data, name="img"), data


def test_source_stream_cut_midway_is_resumed_at_the_byte_it_stopped():
    """Fake: a download cut at byte N on demand. The copy resumes at N, and the digests prove
    no byte was lost or repeated."""
    cloud, image_id, data = _source(3 * MIB + 11)
    cloud.break_read_at = MIB + 5
    target = FakeCloud()
    result = copy_image(
        CopySource(cloud.driver(), image_id, "r"), [CopyTarget("t", target.driver())]
    )
    assert result.ok
    assert result.sha256 == hashlib.sha256(data).hexdigest()
    assert target.data[result.targets["t"].image_id] == data


def copy_fast_and_slow(cloud, image_id, fast, slow, cache_dir):
    """Copy to targets "fast" and "slow" with a cache and a 1 MiB lag limit; the result and
    when each target ended."""
    clock = DoneClock()
    result = copy_image(
        CopySource(cloud.driver(), image_id, "r"),
        [CopyTarget("fast", fast.driver()), CopyTarget("slow", slow.driver())],
        cache=ContentCache(cache_dir, min_free_bytes=0),
        options=CopyOptions(lag_limit_bytes=MIB),
        observer=clock,
    )
    return result, clock


def test_stalled_target_continues_from_the_spool_and_does_not_hold_back_the_other(tmp_path):
    """Fake: a target that writes at a fixed slow rate. The fast one ends long before; the slow
    one falls behind the lag limit, reads the rest from the cache spool, and is still right."""
    cloud, image_id, data = _source(8 * MIB)
    fast, slow = FakeCloud(), FakeCloud()
    slow.write_rate = 3 * MIB
    result, clock = copy_fast_and_slow(cloud, image_id, fast, slow, tmp_path)
    assert result.ok
    assert result.targets["slow"].spooled and not result.targets["fast"].spooled
    assert clock.ended["slow"] - clock.ended["fast"] > 1.0
    assert slow.data[result.targets["slow"].image_id] == data
    # Only what the slow one skipped was spooled, and a spool of part of a stream is not kept.
    assert 0 < result.spooled_bytes < len(data)
    assert ContentCache(tmp_path, min_free_bytes=0).entries() == []


def test_a_target_that_catches_up_takes_chunks_from_memory_again(tmp_path):
    """Fake: a source that gives 8 MiB/s, one target that writes as fast as it can and one that
    stalls for 2.5 s at its start, then does the same. The stalled one is detached once it has
    held the reader back for a second, reads what it skipped from the spool, and once it has
    caught up takes chunks from memory again: the spool holds only the stretch it missed, not
    the rest of the stream, and both copies are right."""
    cloud, image_id, data = _source(24 * MIB)
    cloud.read_rate = 8 * MIB
    steady, late = FakeCloud(), FakeCloud()
    late.write_delay = 2.5
    result = copy_image(
        CopySource(cloud.driver(), image_id, "r"),
        [CopyTarget("steady", steady.driver()), CopyTarget("late", late.driver())],
        cache=ContentCache(tmp_path, min_free_bytes=0),
    )  # the default lag limit
    assert result.ok
    assert result.targets["late"].spooled and not result.targets["steady"].spooled
    assert 0 < result.spooled_bytes <= len(data) // 2, result.spooled_bytes
    assert late.data[result.targets["late"].image_id] == data
    assert steady.data[result.targets["steady"].image_id] == data


def test_targets_of_one_speed_stay_off_the_spool(tmp_path):
    """Fake: two targets that write at the same fixed rate, far slower than the source reads.
    The reader keeps their pace instead of racing ahead, so both take every chunk from memory,
    neither reads the spool (each spool read is one more copy of every byte) and the spool is
    never written."""
    cloud, image_id, data = _source(16 * MIB)
    targets = {key: FakeCloud() for key in ("a", "b")}
    for target in targets.values():
        target.write_rate = 32 * MIB
    cache = ContentCache(tmp_path, min_free_bytes=0)
    result = copy_image(
        CopySource(cloud.driver(), image_id, "r"),
        [CopyTarget(key, target.driver()) for key, target in targets.items()],
        cache=cache,
    )  # the default lag limit
    assert result.ok
    assert not any(t.spooled for t in result.targets.values()), result.targets
    assert all(targets[key].data[t.image_id] == data for key, t in result.targets.items())
    # Nobody fell behind, so not a byte went to disk (issue 13), and nothing is kept: a retry
    # reads the source again.
    assert result.spooled_bytes == 0
    assert cache.usage() == 0 and cache.entries() == []


def test_a_target_that_starts_late_is_not_held_to_a_slow_ones_pace(tmp_path):
    """Fake: the fast target's upload starts half a second late, so it falls behind first and
    continues from the spool, while the slow target (2 MiB/s) is still taking chunks from
    memory. The reader must keep the pace of the fastest target wherever it reads from: the
    fast one ends seconds before the slow one, not with it."""
    cloud, image_id, data = _source(8 * MIB)
    fast, slow = FakeCloud(), FakeCloud()
    fast.write_delay, slow.write_rate = 0.5, 2 * MIB
    result, clock = copy_fast_and_slow(cloud, image_id, fast, slow, tmp_path)
    assert result.ok
    assert clock.ended["slow"] - clock.ended["fast"] > 2.0, clock.ended
    assert fast.data[result.targets["fast"].image_id] == data


def test_without_a_cache_a_slow_target_applies_back_pressure():
    """Fake: a slow target and no spool. The reader waits for it (bounded memory) and both
    copies are complete."""
    cloud, image_id, data = _source(2 * MIB)
    fast, slow = FakeCloud(), FakeCloud()
    slow.write_rate = 20 * MIB
    result = copy_image(
        CopySource(cloud.driver(), image_id, "r"),
        [CopyTarget("fast", fast.driver()), CopyTarget("slow", slow.driver())],
        options=CopyOptions(lag_limit_bytes=256 * 1024),
    )
    assert result.ok and not result.targets["slow"].spooled
    assert fast.data[result.targets["fast"].image_id] == data
    assert slow.data[result.targets["slow"].image_id] == data


def test_one_target_failing_midstream_leaves_the_other_done():
    """Fake: a target whose upload fails after some bytes. Its image is deleted and its error
    is retryable; the other target is done."""
    cloud, image_id, data = _source(2 * MIB)
    good, bad = FakeCloud(), FakeCloud()

    class Breaking(FakeDriver):
        def write_data(self, image_id, chunks, size=None):
            for n, _ in enumerate(chunks):
                if n == 3:
                    raise ServiceUnavailable("HTTP 503 in the middle of the upload")
            raise AssertionError("not reached")

    result = copy_image(
        CopySource(cloud.driver(), image_id, "r"),
        [CopyTarget("good", good.driver()), CopyTarget("bad", Breaking(bad))],
    )
    assert result.targets["good"].state is TargetState.DONE
    failed = result.targets["bad"]
    assert failed.state is TargetState.FAILED and failed.error.retryable
    assert bad.images == {}


def test_cancel_during_the_write_stops_and_deletes_every_target_copy(tmp_path):
    """Fake: cancel at a chosen moment (both targets mid-write). Every target ends cancelled,
    nothing is left in either cloud, and nothing lands in the cache."""
    cloud, image_id, _ = _source(8 * MIB)
    one, two = FakeCloud(), FakeCloud()
    one.write_rate = two.write_rate = 4 * MIB
    cancel = threading.Event()
    threading.Thread(
        target=lambda: (two.write_started.wait(), time.sleep(0.1), cancel.set()), daemon=True
    ).start()
    started = time.monotonic()
    cache = ContentCache(tmp_path, min_free_bytes=0)
    result = copy_image(
        CopySource(cloud.driver(), image_id, "r"),
        [CopyTarget("one", one.driver()), CopyTarget("two", two.driver())],
        cache=cache,
        cancel=cancel,
    )
    assert time.monotonic() - started < 3
    for target in result.targets.values():
        assert target.state is TargetState.CANCELLED
        assert isinstance(target.error, CopyCancelled)
    assert one.images == {} and two.images == {}
    assert cache.entries() == []


def test_observer_runs_in_the_calling_thread_and_can_veto_a_target():
    """Fake (for speed; the hooks are the same for any cloud): hooks run in the thread that
    called copy_image (so the jobs app can use its database connection), and a failing
    image_created hook fails that target before a byte is written, deleting the image."""
    cloud, image_id, _ = _source(MIB)
    one, two = FakeCloud(), FakeCloud()
    caller = threading.get_ident()
    threads = set()

    class Observer(CopyObserver):
        def image_created(self, key, new_id):
            threads.add(threading.get_ident())
            if key == "two":
                raise RuntimeError("could not record the image id")

        def progress(self, key, code, done, total):
            threads.add(threading.get_ident())

    result = copy_image(
        CopySource(cloud.driver(), image_id, "r"),
        [CopyTarget("one", one.driver()), CopyTarget("two", two.driver())],
        observer=Observer(),
    )
    assert threads == {caller}
    assert result.targets["one"].outcome is TargetOutcome.COPIED
    assert result.targets["two"].state is TargetState.FAILED
    assert result.targets["two"].error.code == "internal_error"
    assert two.images == {}


def test_engine_imports_no_django():
    """The engine stays plain Python (docs/architecture.md "The layers"): no module of it
    imports Django."""
    import pathlib

    import glint.replication

    root = pathlib.Path(glint.replication.__file__).parent
    for path in root.glob("*.py"):
        text = path.read_text()
        assert "import django" not in text and "from django" not in text, path
        assert "glint.jobs" not in text and "glint.inventory" not in text, path


@pytest.mark.parametrize("attempts", [1])
def test_source_that_keeps_breaking_fails_every_target_retryably(attempts):
    """Fake: a source stream that breaks and may not be resumed. Every target fails with the
    transfer error (retryable) and keeps nothing."""
    cloud, image_id, _ = _source(2 * MIB)
    cloud.break_read_at = MIB
    target = FakeCloud()
    result = copy_image(
        CopySource(cloud.driver(), image_id, "r"),
        [CopyTarget("t", target.driver())],
        options=CopyOptions(read_attempts=attempts),
    )
    failed = result.targets["t"]
    assert failed.state is TargetState.FAILED and failed.error.retryable
    assert target.images == {}


@pytest.mark.parametrize("failures, kept", [(2, True), (9, False)])
def test_a_passing_5xx_after_verification_does_not_throw_the_copy_away(failures, kept):
    """Fake: the property update after a verified write answers 503 on demand (a real cloud
    cannot be made to fail exactly that request). A few are waited out and the copy is kept;
    a cloud that keeps failing fails the target, and its unfinished image is deleted."""
    cloud, image_id, data = _source(MIB)
    target = FakeCloud()
    target.failing_updates = failures

    result = copy_image(
        CopySource(cloud.driver(), image_id, "r"), [CopyTarget("t", target.driver())]
    )

    outcome = result.targets["t"]
    if kept:
        assert outcome.state is TargetState.DONE and outcome.outcome is TargetOutcome.COPIED
        assert target.data[outcome.image_id] == data
        assert target.images[outcome.image_id]["glint_sha256"] == hashlib.sha256(data).hexdigest()
    else:
        assert outcome.state is TargetState.FAILED and outcome.error.retryable
        assert target.images == {}, "nothing half-finished is left"


@pytest.mark.parametrize("damaged", [False, True])
def test_a_copy_the_target_cloud_made_itself_is_checked_against_the_source_sha256(damaged):
    """A server-side copy (EC2 CopyImage) is read back and compared with the source's
    ``glint_sha256``; a damaged one is refused and deleted. The fake: no real cloud can be made
    to damage its own copy."""
    data = os.urandom(3 * MIB)
    source = FakeCloud()
    image_id = source.add(data, name="img", glint_sha256=hashlib.sha256(data).hexdigest())
    target = FakeCloud()
    target.copies_from, target.damages_copies = source, damaged
    result = copy_image(
        CopySource(source.driver(), image_id, "r1"), [CopyTarget("t", target.driver())]
    )
    outcome = result.targets["t"]
    if damaged:
        assert isinstance(outcome.error, TargetVerificationFailed), outcome.error
        assert target.images == {}, "the damaged copy was deleted"
    else:
        assert (outcome.outcome, outcome.bytes_written) == (TargetOutcome.PULLED, 0)
        assert target.data[outcome.image_id] == data
        assert target.images[outcome.image_id]["glint_sha256"] == hashlib.sha256(data).hexdigest()


def test_reading_an_image_into_the_cache_alone_ends(tmp_path):
    """A read with no target to keep pace with (a download's conversion reads into the cache
    only) runs to its end and keeps the verified bytes."""
    cloud, image_id, data = _source(3 * 1024 * 1024 + 17)
    outcome: list = []
    reader = threading.Thread(
        target=lambda: outcome.append(
            cache_image(cloud.driver(), image_id, ContentCache(tmp_path, min_free_bytes=0))
        ),
        daemon=True,
    )
    reader.start()
    reader.join(timeout=30)
    assert outcome, "the read into the cache never ended"
    _record, entry = outcome[0]
    assert entry.path.read_bytes() == data
    assert entry.sha256 == hashlib.sha256(data).hexdigest()
