"""``python -m bench``: boot a devcloud, measure every figure, print the table, save the report.

Figures are measured in rounds: each round runs every route once, in a rotated order, so a
burst of load from other work on the machine falls on all routes alike; each figure is the
median over rounds, and each ratio is taken between medians of the same run.
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path

from bench.report import Report
from bench.soak import SoakSettings

RESULTS = Path(__file__).resolve().parent / "results"
MiB = 2**20


@dataclasses.dataclass(frozen=True)
class Variant:
    name: str
    size: int  # the fan-out image
    targets: int
    projects_per_cloud: int
    memory_sizes: tuple[
        int, ...
    ]  # the fan-out size is one of them (measured in the fan-out rounds)
    big_memory_runs: int  # runs of the largest memory size (the slowest thing the bench does)
    inventory_images: int
    matrix_rows: tuple[int, int]
    matrix_repos: int
    runs: int
    slow_timeout: (
        float  # the silent repo's deadline: well above a healthy listing on a busy machine
    )
    soak: SoakSettings


FULL = Variant(
    "full",
    1024 * MiB,
    3,
    5,
    (256 * MiB, 1024 * MiB, 4096 * MiB),
    1,
    300,
    (200, 2000),
    20,
    3,
    20,
    SoakSettings(people=10, clients_per_person=10, seconds=60, rows=2000, repos=20),
)
SMALL = Variant(
    "small",
    64 * MiB,
    2,
    2,
    (16 * MiB, 64 * MiB),
    1,
    10,
    (50, 200),
    5,
    1,
    5,
    SoakSettings(people=2, clients_per_person=3, seconds=3, rows=50, repos=5),
)
FIGURES = ("hashing", "fanout", "memory", "inventory", "matrix", "upload", "soak", "ec2")
CLOUD_FIGURES = {"fanout", "memory", "upload", "inventory"}  # the others need no devcloud


def _mib(size: int) -> str:
    return f"{size // 1024**3} GiB" if size >= 1024**3 else f"{size // MiB} MiB"


def parse(argv):
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--small", action="store_true", help="the CI smoke variant: 64 MiB, 2 targets, 1 round"
    )
    parser.add_argument(
        "--size", type=int, help="MiB of the fan-out image (default: 1024; --small: 64)"
    )
    parser.add_argument("--runs", type=int, help="rounds per figure (default: 3; --small: 1)")
    parser.add_argument(
        "--only",
        default=",".join(FIGURES),
        help=f"figures to run, comma-separated ({', '.join(FIGURES)})",
    )
    parser.add_argument(
        "--no-install",
        action="store_true",
        help="never pip-install the tools (openstackclient, py-spy); without the CLI the manual "
        "route makes the same openstacksdk calls, and no profile is taken",
    )
    parser.add_argument(
        "--no-profile", action="store_true", help="skip the py-spy profile of a copy"
    )
    parser.add_argument(
        "--work", type=Path, help="scratch directory (default: a temporary one, removed after)"
    )
    parser.add_argument("--results", type=Path, default=RESULTS, help="where the JSON report goes")
    args = parser.parse_args(argv)
    unknown = set(args.only.split(",")) - set(FIGURES)
    if unknown:
        parser.error(f"unknown figures: {', '.join(sorted(unknown))}")
    return args


def main(argv=None) -> None:
    args = parse(argv)
    variant = SMALL if args.small else FULL
    if args.runs:
        variant = dataclasses.replace(variant, runs=args.runs)
    if args.size:
        variant = dataclasses.replace(variant, size=args.size * MiB)
    figures = args.only.split(",")
    work = args.work or Path(tempfile.mkdtemp(prefix="glint-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    report = Report(variant.name)
    say = report.printer
    extra = {
        "variant_settings": {k: v for k, v in dataclasses.asdict(variant).items()},
        "note": "shared 2-core machine: absolute times are noisy; ratios come from the same run",
    }
    started = time.perf_counter()
    if "hashing" in figures:  # first, while nothing else runs: it needs no cloud
        from bench.hashing import hashing_figures

        _guard(report, "hashing", lambda: hashing_figures(report, variant.size // 2, variant.runs))
    if CLOUD_FIGURES & set(figures):
        _cloud_figures(report, variant, figures, work, args, extra)
    if {"matrix", "soak"} & set(figures):
        _django_figures(report, variant, figures, work)
    if "ec2" in figures:
        _guard(report, "ec2", lambda: _ec2_figure(report, variant, work, args, extra))
    report.info("bench: total time", time.perf_counter() - started, unit="s")
    path = report.write(args.results, extra)
    say(f"bench: report written to {path}")
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)


def _cloud_figures(report: Report, variant: Variant, figures, work: Path, args, extra) -> None:
    """The figures that need clouds: fan-out, memory and upload through a real ``glint serve``,
    and the inventory poll, on one devcloud booted for them."""
    from bench import tools

    say = report.printer
    tools.tools_venv(install=not args.no_install, log=say)
    # Imported here: the tools' check above needs no Django, these do (and tests.live needs pytest).
    from bench.stack import Glint, Stack, boot_devcloud

    clouds_per_variant = variant.targets + 1
    say(
        f"bench: {variant.name} variant in {work}; booting a devcloud of "
        f"{clouds_per_variant} clouds × {variant.projects_per_cloud} projects"
    )
    dc = boot_devcloud(work / "devcloud", clouds_per_variant, variant.projects_per_cloud)
    glint = None
    try:
        stack = Stack(dc)
        glances = dc.glance_names()
        source, targets = glances[0], glances[1 : 1 + variant.targets]
        if {"fanout", "memory", "upload"} & set(figures):
            glint = Glint(dc, work / "glint", [source, *targets])
            from bench.fanout import run_fanout

            run_fanout(
                report,
                stack,
                glint,
                variant,
                figures,
                source,
                targets,
                work,
                profile_dir=None if args.no_profile else args.results,
                extra=extra,
            )
        if "inventory" in figures:
            _django(work)
            from bench.inventory import poll_figures

            _guard(
                report,
                "inventory",
                lambda: poll_figures(
                    report,
                    stack,
                    [c for c in dc.cloud_names() if not c.endswith("-appcred")],
                    variant.inventory_images,
                    variant.runs,
                    variant.slow_timeout,
                ),
            )
    finally:
        if glint is not None:
            glint.stop()
        dc.down()


def _ec2_figure(report: Report, variant: Variant, work: Path, args, extra: dict) -> None:
    """Glance -> EC2 against the EBS direct limit, on a devcloud of its own: one Glance and the
    EC2 peer (moto, patched like EC2)."""
    import devcloud
    from bench import tools
    from bench.ec2 import ec2_figures

    tools.tools_venv(install=not args.no_install, log=report.printer)
    report.printer(f"bench: booting a devcloud of 1 Glance and the EC2 peer in {work}")
    dc = devcloud.up(work / "devcloud-ec2", clouds=1, keystones=1, with_ec2=True)
    try:
        ec2_figures(
            report,
            dc,
            work,
            variant.size,
            variant.runs,
            extra,
            profile_dir=None if args.no_profile else args.results,
        )
    finally:
        dc.down()


def _django_figures(report: Report, variant: Variant, figures, work: Path) -> None:
    """The figures on rows written straight into Glint's database: the matrix views in Django's
    handler, and the soak against real ``glint serve`` processes on that database."""
    data_dir = _django(work)
    if "matrix" in figures:
        from bench.inventory import matrix_figures

        _guard(
            report,
            "matrix",
            lambda: matrix_figures(
                report, variant.matrix_rows, variant.matrix_repos, 15 if variant.runs > 1 else 5
            ),
        )
    if "soak" in figures:
        from bench.soak import soak_figures

        _guard(report, "soak", lambda: soak_figures(report, data_dir, work, variant.soak))


def _django(work: Path) -> Path:
    """Django in this process on the bench's own data directory, set up on first use."""
    data_dir = work / "django"
    from django.apps import apps

    if not apps.ready:
        from bench.django_side import setup_django

        setup_django(data_dir)
    return data_dir


def _guard(report: Report, figure: str, run) -> None:
    """Run one figure; a crash becomes a FAIL row with the reason, and the other figures go on."""
    try:
        run()
    except Exception as exc:  # noqa: BLE001 - reported as a row
        traceback.print_exc(file=sys.stderr)
        report.failed(f"{figure}: could not be measured", "", f"{type(exc).__name__}: {exc}")
