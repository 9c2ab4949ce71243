"""``py-spy record`` on a running process (``glint serve``) for as long as a block runs."""

from __future__ import annotations

import contextlib
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

from bench.tools import tool

__all__ = ["profile_copy", "py_spy", "summarize"]


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
        copy()
    if collapsed.exists():
        top = summarize(collapsed)
        extra[key] = {
            "file": collapsed.name,
            "top_leaf_frames": [[f, round(s, 3)] for f, s in top],
        }
        report.printer(f"bench: where glint serve spent its CPU ({key}; py-spy, leaf frames):")
        for frame, share in top[:10]:
            report.printer(f"  {share:6.1%}  {frame}")
