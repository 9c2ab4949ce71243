"""Figures 1, 2 and 5: the fan-out copy against the limit and the other routes, the copying
process's memory, and an upload through the API — in interleaved rounds."""

from __future__ import annotations

import traceback
from pathlib import Path

from bench import routes
from bench.cpu import CpuMeter, CpuUse, median_use, stack_processes
from bench.profiling import profile_copy
from bench.report import Report, median
from bench.stack import write_random_file

__all__ = ["run_fanout"]

MiB = 2**20


def _size(size: int) -> str:
    return f"{size // 1024**3} GiB" if size >= 1024**3 else f"{size // MiB} MiB"


def run_fanout(
    report: Report,
    stack,
    glint,
    variant,
    figures,
    source: str,
    targets: list[str],
    work: Path,
    profile_dir: Path | None,
    extra: dict,
) -> None:
    say = report.printer
    size, n = variant.size, len(targets)
    data = write_random_file(work / f"image-{size}.raw", size)
    source_name = f"bench-source-{size}"
    source_id = stack.upload(source, data, source_name)
    times: dict[str, list[float]] = {
        k: [] for k in ("glint", "read", "write", "staged", "manual", "upload")
    }
    cpu: dict[str, list[CpuUse]] = {k: [] for k in times}
    processes = stack_processes(stack.dc, glint.pid)
    growth: dict[int, list[int]] = {size: []}
    errors: dict[str, str] = {}
    manual_how = ""

    def attempt(key: str, measure) -> None:
        nonlocal manual_how
        if key in errors:
            return
        meter = CpuMeter(processes)
        try:
            value = measure(meter)
        except Exception as exc:  # noqa: BLE001 - the row says why
            traceback.print_exc()
            errors[key] = f"{type(exc).__name__}: {exc}"[:400]
            return
        if key == "glint":
            seconds, grew = value
            growth[size].append(grew)
            value = seconds
        if key == "manual":
            value, manual_how = value
        times[key].append(value)
        cpu[key].append(meter.use)
        say(f"  {key}: {value:.2f}s ({meter.use.note(per_process=True)})")

    steps = [
        ("glint", lambda m: routes.glint_copy(glint, stack, source, source_name, targets, m)),
        ("read", lambda m: routes.read_source(stack, source, source_id, m)),
        ("write", lambda m: routes.write_targets(stack, data, targets, m)),
        ("staged", lambda m: routes.staged(stack, source, source_id, targets, work, m)),
        ("manual", lambda m: routes.manual(stack, source, source_id, targets, work, m)),
    ]
    if "upload" in figures:
        steps.append(("upload", lambda m: routes.glint_upload(glint, stack, data, targets, m)))
    if "fanout" not in figures:
        steps = [s for s in steps if s[0] in ("glint", "write", "upload")]
    for round_no in range(variant.runs):
        say(f"bench: fan-out round {round_no + 1}/{variant.runs} ({_size(size)} to {n} targets)")
        shift = round_no % len(steps)
        for key, measure in steps[shift:] + steps[:shift]:
            attempt(key, measure)

    what = f"{_size(size)} to {n} targets"
    _cpu_rows(report, cpu, what, extra)
    _serve_cpu_rows(report, cpu, size, n)
    if "fanout" in figures:
        _fanout_rows(report, times, errors, what, manual_how)
    if "upload" in figures:
        if times["upload"] and times["write"]:
            report.info(f"upload via API, {what}", median(times["upload"]), unit="s")
            report.target(
                "upload / fan-out limit",
                median(times["upload"]) / median(times["write"]),
                "<=",
                1.25,
                unit="x",
                note="limit: the same file PUT into the targets at once",
            )
        else:
            report.failed(
                "upload / fan-out limit",
                "<= 1.25x",
                errors.get("upload") or errors.get("write", "?"),
            )
    if "memory" in figures:
        _memory(report, stack, glint, variant, source, targets, growth, errors)
    if profile_dir is not None and "fanout" in figures and "glint" not in errors:
        profile_copy(
            report,
            glint.pid,
            profile_dir / "profile-glint-copy.txt",
            lambda: routes.glint_copy(glint, stack, source, source_name, targets),
            extra,
            "profile",
        )
    if profile_dir is not None and "upload" in figures and "upload" not in errors:
        profile_copy(
            report,
            glint.pid,
            profile_dir / "profile-glint-upload.txt",
            lambda: routes.glint_upload(glint, stack, data, targets, CpuMeter({})),
            extra,
            "profile-upload",
        )
    stack.delete_quietly(source, [source_id])


ROUTE_LABELS = {
    "glint": "Glint copy job",
    "read": "read source alone",
    "write": "PUT local file to targets at once",
    "staged": "staged (disk, then each)",
    "manual": "manual (openstack save/create)",
    "upload": "upload via API",
}


def _cpu_rows(report: Report, cpu: dict[str, list[CpuUse]], what: str, extra: dict) -> None:
    """Per route, the cores its processes kept busy (the round with the median figure), with the
    CPU-seconds of each process in the note; every round goes into the JSON."""
    for key, uses in cpu.items():
        if not uses:
            continue
        use = median_use(uses)
        report.info(
            f"fan-out CPU, {what}: {ROUTE_LABELS[key]}: cores kept busy (CPU-s / wall-s)",
            use.cores_busy,
            note=use.note(per_process=True),
        )
    extra.setdefault("cpu", {})["fanout"] = {
        key: [u.as_dict() for u in uses] for key, uses in cpu.items() if uses
    }


def _serve_cpu_rows(report: Report, cpu: dict[str, list[CpuUse]], size: int, n: int) -> None:
    """What ``glint serve`` spends per GiB it fans out (median of the rounds), and that over what
    the limit's sender (this bench process PUTting the local file) spends for the same bytes."""
    gib = size / 1024**3

    def per_gib(key: str, process: str) -> float | None:
        uses = cpu.get(key) or []
        return median([u.seconds.get(process, 0.0) / gib for u in uses]) if uses else None

    serve, sender = per_gib("glint", "glint serve"), per_gib("write", "bench")
    upload = per_gib("upload", "glint serve")
    note = f"to {n} targets; limit's sender " + (f"{sender:.2f}" if sender is not None else "?")
    if upload is not None:
        note += f"; upload route {upload:.2f}"
    if serve is None:
        report.failed("fan-out: glint serve CPU-s per GiB", "<= 3", "no Glint copy was measured")
        return
    report.target("fan-out: glint serve CPU-s per GiB", serve, "<=", 3, unit=" CPU-s", note=note)
    if sender:
        report.info("fan-out: glint serve CPU / the limit's sender CPU", serve / sender, unit="x")


def _fanout_rows(report: Report, times, errors, what: str, manual_how: str) -> None:
    for key in ("glint", "read", "write", "staged", "manual"):
        label = ROUTE_LABELS[key]
        if times[key]:
            report.info(
                f"fan-out {what}: {label}",
                median(times[key]),
                unit="s",
                note=manual_how if key == "manual" else "",
            )
    if not times["glint"]:
        for name, target in (
            ("Glint / limit", "<= 1.15x"),
            ("staged / Glint", ">= 2x"),
            ("manual / Glint", ">= 2.5x"),
        ):
            report.failed(f"fan-out: {name}", target, errors.get("glint", "?"))
        return
    glint = median(times["glint"])
    if times["read"] and times["write"]:
        limit = max(median(times["read"]), median(times["write"]))
        report.target("fan-out: Glint / limit", glint / limit, "<=", 1.15, unit="x")
        # What even a perfect fan-out could gain here: on one small machine every Glance shares
        # the same cores, so N writes at once are not N times faster than one after another.
        for key in ("staged", "manual"):
            if times[key]:
                report.info(
                    f"fan-out: {key} / limit (the best any fan-out could reach here)",
                    median(times[key]) / limit,
                    unit="x",
                )
    else:
        report.failed(
            "fan-out: Glint / limit", "<= 1.15x", errors.get("read") or errors.get("write", "?")
        )
    for key, name, bound in (("staged", "staged / Glint", 2), ("manual", "manual / Glint", 2.5)):
        if times[key]:
            report.target(f"fan-out: {name}", median(times[key]) / glint, ">=", bound, unit="x")
        else:
            report.failed(f"fan-out: {name}", f">= {bound}x", errors.get(key, "?"))


def _memory(report: Report, stack, glint, variant, source, targets, growth, errors) -> None:
    """RSS growth of ``glint serve`` while it copies each size (the fan-out size: from its
    rounds)."""
    for size in variant.memory_sizes:
        if size in growth:
            continue
        name = f"bench-memory-{size}"
        image_id = stack.plant_zeros(source, size, name)
        runs = variant.big_memory_runs if size == max(variant.memory_sizes) else variant.runs
        growth[size] = []
        for _ in range(runs):
            try:
                seconds, grew = routes.glint_copy(glint, stack, source, name, targets)
            except Exception as exc:  # noqa: BLE001 - the row says why
                errors[f"memory-{size}"] = f"{type(exc).__name__}: {exc}"[:400]
                break
            growth[size].append(grew)
            report.printer(f"  memory {_size(size)}: {seconds:.1f}s, RSS +{grew / MiB:.1f} MiB")
        stack.delete_quietly(source, [image_id])
    for size in variant.memory_sizes:
        name = f"memory: RSS growth copying {_size(size)} to {len(targets)} targets"
        if growth.get(size):
            report.target(
                name,
                median(growth[size]) / MiB,
                "<",
                64,
                unit=" MiB",
                note=f"{len(growth[size])} run(s)",
            )
        else:
            report.failed(
                name, "< 64 MiB", errors.get(f"memory-{size}") or errors.get("glint", "?")
            )
    small, big = min(variant.memory_sizes), max(variant.memory_sizes)
    if growth.get(small) and growth.get(big):
        ratio = median(growth[big]) / max(1, median(growth[small]))
        report.target(
            f"memory: growth at {_size(big)} / at {_size(small)}", ratio, "<=", 1.10, unit="x"
        )
    else:
        report.failed(
            f"memory: growth at {_size(big)} / at {_size(small)}",
            "<= 1.1x",
            "a size was not measured",
        )
