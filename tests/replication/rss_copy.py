"""One streamed copy in a fresh process, measuring how far its peak RSS grows (issue 4).

Run by ``test_streaming``: a fresh interpreter per measurement, so a 200 MiB and an 800 MiB copy
start from the same state and no earlier test's allocations hide or add growth. Reads JSON on
stdin (never argv: the clouds.yaml entries hold passwords): ``{"source": entry, "targets":
[entry, ...], "image": source image id, "cache": dir}``; prints one JSON line: ``growth_kib``,
``seconds``, ``errors`` (per target key, None when done) and ``image_ids`` (per target key).
"""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path

from glint.clouds import RepoConnection, get_driver
from glint.replication import ContentCache, CopySource, CopyTarget, copy_image
from glint.replication.chunk_memory import map_chunks_separately


def rss_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


class PeakRss:
    """Samples this process's RSS in a thread while a ``with`` block runs; ``peak`` is the
    highest."""

    def __init__(self, interval: float = 0.02):
        self.interval, self.peak = interval, rss_kib()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self):
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, rss_kib())

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def main() -> None:
    map_chunks_separately()  # as the glint command does
    request = json.load(sys.stdin)
    source, *targets = (
        get_driver(RepoConnection.from_clouds_yaml(entry))
        for entry in (request["source"], *request["targets"])
    )
    for driver in (source, *targets):
        driver.check()  # sessions and tokens exist before the baseline
    baseline = rss_kib()
    started = time.monotonic()
    with PeakRss() as rss:
        result = copy_image(
            CopySource(source, request["image"], "r1"),
            [CopyTarget(str(i), driver) for i, driver in enumerate(targets)],
            cache=ContentCache(Path(request["cache"]), min_free_bytes=0),
        )
    print(
        json.dumps(
            {
                "growth_kib": rss.peak - baseline,
                "seconds": time.monotonic() - started,
                "errors": {
                    key: str(t.error) if t.error else None for key, t in result.targets.items()
                },
                "image_ids": {key: t.image_id for key, t in result.targets.items()},
            }
        )
    )


if __name__ == "__main__":
    main()
