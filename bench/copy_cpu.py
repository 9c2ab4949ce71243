"""The copy engine's own CPU per GiB, without ``glint serve`` around it (issue 13).

``python -m bench.copy_cpu --devcloud DIR [--size MiB] [--rounds N] [--profile FILE]``

Runs :func:`glint.replication.copy_image` in this process from cloud ``devcloud-1`` to every
other cloud of a running devcloud (``python -m devcloud up --dir DIR --clouds 4 --keystones 2``),
each round with an empty content cache, and prints the CPU-seconds of this process
(``getrusage``: every thread, user + system) per GiB fanned out, with the spool bytes written.
The job's API, rows and polling are left out, so the figure is what the engine spends per byte.
``--profile`` runs one more copy under cProfile (every thread) and writes its top entries by
own CPU time (``time.thread_time``, so a thread waiting on a socket or a lock counts
nothing); cProfile slows Python code, so that copy's CPU is not counted in the rounds.

The source is a random image made once per size and kept in the devcloud (named
``copy-cpu-<MiB>``); the targets' copies are deleted after each round.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import resource
import statistics
import tempfile
import threading
import time
from pathlib import Path

import devcloud
from glint.clouds import CHUNK_SIZE, RepoConnection, get_driver
from glint.replication import ContentCache, CopySource, CopyTarget, TargetOutcome, copy_image
from glint.replication.chunk_memory import map_chunks_separately

MIB = 1024 * 1024
SOURCE = "devcloud-1"


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _driver(dc: devcloud.Devcloud, cloud: str):
    return get_driver(RepoConnection.from_clouds_yaml(dc.cloud_config(cloud)))


def _source_image(dc: devcloud.Devcloud, size: int) -> str:
    name = f"copy-cpu-{size // MIB}"
    with _driver(dc, SOURCE) as driver:
        for image in driver.list_images():
            if image.name == name and image.status == "active":
                return image.id
        block = os.urandom(16 * CHUNK_SIZE)

        def chunks():
            left = size
            while left:
                piece = block[: min(len(block), left)]
                left -= len(piece)
                yield piece

        return driver.create_and_write(
            {"name": name, "disk_format": "raw", "container_format": "bare"}, chunks(), size=size
        ).id


def _spool_bytes(cache_dir: Path) -> int:
    return sum(p.stat().st_size for p in cache_dir.rglob("*") if p.is_file())


def copy_once(dc: devcloud.Devcloud, image_id: str, targets: list[str]) -> tuple[float, int]:
    """One copy to ``targets``: (CPU-seconds of this process, bytes left in the cache)."""
    with tempfile.TemporaryDirectory(prefix="copy-cpu-") as tmp:
        cache_dir = Path(tmp)
        source = _driver(dc, SOURCE)
        drivers = {cloud: _driver(dc, cloud) for cloud in targets}
        try:
            before = _cpu()
            result = copy_image(
                CopySource(source, image_id, "bench"),
                [CopyTarget(cloud, driver) for cloud, driver in drivers.items()],
                cache=ContentCache(cache_dir, min_free_bytes=0),
            )
            spent = _cpu() - before
            cached = _spool_bytes(cache_dir)
            lagged = [k for k, t in result.targets.items() if t.spooled]
            # spooled_bytes: None for the engine before issue 13 (run against an older tree).
            spooled = getattr(result, "spooled_bytes", None)
            print(f"  spooled {spooled} bytes; targets that lagged: {lagged}", flush=True)
            errors = {k: t.error for k, t in result.targets.items() if t.error is not None}
            outcomes = {t.outcome for t in result.targets.values()}
            if not result.ok or outcomes != {TargetOutcome.COPIED}:
                raise SystemExit(f"copy failed or found a copy: {errors}")
            for cloud, target in result.targets.items():
                drivers[cloud].delete(target.image_id)
        finally:
            source.close()
            for driver in drivers.values():
                driver.close()
    return spent, cached


def profile_once(dc, image_id: str, targets: list[str], output: Path, top: int) -> None:
    """One more copy under cProfile in every thread; the top entries by own time to ``output``."""
    profiles: list[cProfile.Profile] = []
    original_run = threading.Thread.run

    def run(self):
        profile = cProfile.Profile(time.thread_time)
        profiles.append(profile)
        profile.enable()
        try:
            original_run(self)
        finally:
            profile.disable()

    threading.Thread.run = run
    main = cProfile.Profile(time.thread_time)
    main.enable()
    try:
        copy_once(dc, image_id, targets)
    finally:
        main.disable()
        threading.Thread.run = original_run
    text = io.StringIO()
    stats = pstats.Stats(main, *profiles, stream=text)
    stats.sort_stats("tottime").print_stats(top)
    output.write_text(text.getvalue())


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.copy_cpu", description=__doc__)
    parser.add_argument("--devcloud", required=True, type=Path)
    parser.add_argument("--size", type=int, default=256, help="MiB (default 256)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", type=Path, help="write a cProfile of one more copy here")
    parser.add_argument("--top", type=int, default=30)
    args = parser.parse_args()
    map_chunks_separately()  # as glint serve does (glint.cli.main)
    dc = devcloud.Devcloud.load(args.devcloud)
    targets = [name for name in dc.cloud_names() if name != SOURCE and "-" in name]
    targets = [name for name in targets if name.count("-") == 1]  # one project per cloud
    size = args.size * MIB
    image_id = _source_image(dc, size)
    gib = size * len(targets) / 3 / 1024**3  # per GiB fanned out to 3 targets, as the bench
    rows = []
    for n in range(args.rounds):
        started = time.monotonic()
        spent, cached = copy_once(dc, image_id, targets)
        rows.append(spent / gib)
        print(
            f"round {n + 1}: {spent:.2f} CPU-s, {spent / gib:.2f} CPU-s per GiB to "
            f"{len(targets)} targets, {time.monotonic() - started:.1f} s wall, "
            f"{cached // MIB} MiB left in the cache, load {os.getloadavg()[0]:.1f}",
            flush=True,
        )
    print(
        f"median {statistics.median(rows):.2f} CPU-s per GiB "
        f"(range {min(rows):.2f}-{max(rows):.2f})"
    )
    if args.profile:
        profile_once(dc, image_id, targets, args.profile, args.top)
        print(f"profile: {args.profile}")


if __name__ == "__main__":
    main()
