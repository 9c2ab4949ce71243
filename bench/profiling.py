"""Where ``glint serve`` spends its CPU during one copy: ``py-spy record`` for the hottest
frames, and each thread's own CPU-seconds (``/proc/<pid>/task``) summed by the part of the copy
the thread does, so that a profile says in CPU-seconds what receiving, hashing and sending cost
and what is left beyond them (issue 13)."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path

from bench.cpu import TICKS, stat_fields
from bench.tools import tool

__all__ = ["ThreadCpu", "cpu_by_part", "profile_copy", "py_spy", "summarize"]

#: The engine's threads by name (``glint.replication``), and the part of a copy each does.
PARTS = (
    (re.compile(r"glint-copy-read$"), "receiving (the source's reader)"),
    (re.compile(r"glint-copy-hash$|glint-hash_\d+$"), "hashing (the sink)"),
    (re.compile(r"glint-copy-\d+$"), "sending (a writer per target)"),
    (re.compile(r"CP Server Thread-\d+$"), "web requests (an upload's request, the job polls)"),
)
OTHER = "the rest (jobs, leases, poller, unnamed)"
#: Samples in the spool's methods (``glint.replication.cache.Spool``) are counted apart.
SPOOL_FRAME = "Spool."
SPOOL = "spool (writes for a target that fell behind, and its reads)"


@contextlib.contextmanager
def py_spy(pid: int, output: Path, fmt: str = "speedscope", rate: int = 50):
    """Record ``pid``'s on-CPU Python stacks (per thread) into ``output`` while the block runs;
    does nothing when py-spy is not installed."""
    exe = tool("py-spy")
    if exe is None:
        yield None
        return
    process = subprocess.Popen(
        [
            str(exe),
            "record",
            "--pid",
            str(pid),
            "--output",
            str(output),
            "--format",
            fmt,
            "--rate",
            str(rate),
            "--threads",
            "--nonblocking",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        yield output
    finally:
        process.send_signal(signal.SIGINT)  # py-spy writes its file on Ctrl-C
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()


class ThreadCpu:
    """``with ThreadCpu(pid) as cpu: ...`` then ``cpu.spent``: CPU-seconds of each thread of
    ``pid`` (by native thread id) during the block. Threads are sampled every ``every`` seconds,
    since a copy's threads end with it and take their counters along: a thread that ended is
    counted up to its last sample."""

    def __init__(self, pid: int, every: float = 0.1):
        self._pid = pid
        self._every = every
        self._first: dict[int, float] = {}
        self._last: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-thread-cpu", daemon=True)
        self.spent: dict[int, float] = {}

    def _sample(self, baseline: bool) -> None:
        try:
            tids = os.listdir(f"/proc/{self._pid}/task")
        except OSError:
            return
        for name in tids:
            try:
                stat = Path(f"/proc/{self._pid}/task/{name}/stat").read_text()
            except OSError:
                continue  # ended between the listing and the read
            fields = stat_fields(stat)
            seconds = (int(fields[11]) + int(fields[12])) / TICKS
            tid = int(name)
            # A thread started during the block spent nothing before it.
            self._first.setdefault(tid, seconds if baseline else 0.0)
            self._last[tid] = seconds

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            self._sample(baseline=False)

    def __enter__(self) -> ThreadCpu:  # noqa: PYI034 - never subclassed
        self._sample(baseline=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join()
        self._sample(baseline=False)
        self.spent = {tid: self._last[tid] - self._first[tid] for tid in self._last}


def _threads_sampled(collapsed: Path) -> dict[int, tuple[str, float]]:
    """Native thread id -> (Python thread name, share of its samples inside the spool), from
    py-spy's raw lines (``thread (TID): NAME;frames... COUNT``)."""
    names: dict[int, str] = {}
    samples: dict[int, list[int]] = {}
    for line in collapsed.read_text().splitlines():
        match = re.match(r"thread \((\d+)\): ([^;]+);(.*) (\d+)$", line)
        if not match:
            continue
        tid, count = int(match[1]), int(match[4])
        names[tid] = match[2]
        counts = samples.setdefault(tid, [0, 0])
        counts[0] += count
        if SPOOL_FRAME in match[3]:
            counts[1] += count
    return {tid: (names[tid], spooled / total) for tid, (total, spooled) in samples.items()}


def cpu_by_part(spent: dict[int, float], collapsed: Path) -> dict[str, float]:
    """CPU-seconds summed by the part of the copy each thread does (:data:`PARTS`); the share of
    a thread's samples spent in the spool is counted apart (:data:`SPOOL`)."""
    sampled = _threads_sampled(collapsed)
    parts: dict[str, float] = {}
    for tid, seconds in spent.items():
        name, spooled = sampled.get(tid, ("", 0.0))
        part = next((label for pattern, label in PARTS if pattern.match(name)), OTHER)
        parts[part] = parts.get(part, 0.0) + seconds * (1 - spooled)
        if spooled:
            parts[SPOOL] = parts.get(SPOOL, 0.0) + seconds * spooled
    return parts


def summarize(collapsed: Path, top: int = 15) -> list[tuple[str, float]]:
    """The leaf functions that used the most CPU, as (frame, share of samples), from py-spy's
    ``raw`` (collapsed stacks) output."""
    leaves: dict[str, int] = {}
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        leaf = stack.rsplit(";", 1)[-1]
        leaves[leaf] = leaves.get(leaf, 0) + int(count)
        total += int(count)
    ranked = sorted(leaves.items(), key=lambda item: -item[1])[:top]
    return [(frame, count / total) for frame, count in ranked] if total else []


def profile_copy(
    report, pid: int, collapsed: Path, copy: Callable[[], None], extra: dict, key: str
) -> None:
    """``copy()`` once more (not timed) with ``pid`` (``glint serve``) under py-spy: the collapsed
    stacks go to ``collapsed``, the hottest leaf functions into the report's ``extra[key]`` and
    its printout."""
    collapsed.parent.mkdir(parents=True, exist_ok=True)
    with py_spy(pid, collapsed, fmt="raw") as recording:
        if recording is None:
            return
        with ThreadCpu(pid) as threads:
            copy()
    if collapsed.exists():
        top = summarize(collapsed)
        parts = cpu_by_part(threads.spent, collapsed)
        extra[key] = {
            "file": collapsed.name,
            "top_leaf_frames": [[f, round(s, 3)] for f, s in top],
            "cpu_seconds_by_part": {part: round(s, 3) for part, s in parts.items()},
        }
        report.printer(f"bench: where glint serve spent its CPU ({key}; py-spy, leaf frames):")
        for frame, share in top[:10]:
            report.printer(f"  {share:6.1%}  {frame}")
        report.printer(f"bench: glint serve CPU-s by part of the copy ({key}; per thread):")
        for part, seconds in sorted(parts.items(), key=lambda kv: -kv[1]):
            report.printer(f"  {seconds:6.2f}  {part}")
