"""RSS of a process, sampled from ``/proc/<pid>/status`` while something runs."""

from __future__ import annotations

import threading
from pathlib import Path

__all__ = ["RssSampler", "rss_bytes"]

INTERVAL = 0.05


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


class RssSampler:
    """``with RssSampler(pid) as rss: ...`` then ``rss.growth``: peak minus the RSS at the start."""

    def __init__(self, pid: int):
        self.pid = pid
        self.idle = self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> RssSampler:  # noqa: PYI034 - never subclassed
        self.idle = self.peak = rss_bytes(self.pid)
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        while not self._stop.wait(INTERVAL):
            self.peak = max(self.peak, rss_bytes(self.pid))

    @property
    def growth(self) -> int:
        return self.peak - self.idle
