"""Rows of the benchmark table: printed as ``name: value (target) PASS|FAIL``, saved as JSON.

A row compares one measured number with its target. Ratios are measured within one run of the
bench, so they hold across machines; absolute times are printed for context only.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

__all__ = ["Report", "Row", "machine", "median", "p95"]


@dataclasses.dataclass
class Row:
    """One line of the table.

    Fields:
        name: What was measured (stable: the smoke test and readers look rows up by it).
        value: The number, or None when it could not be measured (then ``note`` says why).
        target: The target as people read it (``<= 1.15``); empty for context rows.
        status: PASS, FAIL, or INFO for a number shown for context.
        unit: Printed after the value.
        note: Why a row failed to measure, or what it is made of.
    """

    name: str
    value: float | None
    target: str = ""
    status: str = "INFO"
    unit: str = ""
    note: str = ""

    def line(self) -> str:
        value = "n/a" if self.value is None else f"{self.value:.3g}{self.unit}"
        target = f" ({self.target})" if self.target else ""
        note = f"  [{self.note}]" if self.note else ""
        return f"{self.name}: {value}{target} {self.status}{note}"


def _check(value: float | None, op: str, bound: float) -> str:
    if value is None:
        return "FAIL"
    passed = {"<=": value <= bound, "<": value < bound, ">=": value >= bound}[op]
    return "PASS" if passed else "FAIL"


class Report:
    """The rows of one bench run, printed as they come and written to ``bench/results/``."""

    def __init__(self, variant: str, printer: Callable[[str], None] = print):
        self.variant = variant
        self.rows: list[Row] = []
        self.started = time.time()
        self.printer = printer

    def add(self, row: Row) -> Row:
        self.rows.append(row)
        self.printer(row.line())
        return row

    def target(
        self,
        name: str,
        value: float | None,
        op: str,
        bound: float,
        *,
        unit: str = "",
        note: str = "",
    ) -> Row:
        """A row with a target: ``value op bound`` passes."""
        return self.add(
            Row(name, value, f"{op} {bound:g}{unit}", _check(value, op, bound), unit, note)
        )

    def info(self, name: str, value: float | None, *, unit: str = "", note: str = "") -> Row:
        return self.add(Row(name, value, "", "INFO", unit, note))

    def failed(self, name: str, target: str, reason: str) -> Row:
        """A row that could not be measured at all: FAIL with the reason."""
        return self.add(Row(name, None, target, "FAIL", "", reason))

    def write(self, directory: Path, extra: dict | None = None) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(self.started))
        path = directory / f"bench-{self.variant}-{stamp}.json"
        body = {
            "variant": self.variant,
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(self.started)),
            "seconds": round(time.time() - self.started, 1),
            "machine": machine(),
            "rows": [dataclasses.asdict(r) for r in self.rows],
            **(extra or {}),
        }
        path.write_text(json.dumps(body, indent=2) + "\n")
        return path


def median(values: list[float]) -> float:
    return statistics.median(values)


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def machine() -> dict:
    """Cores, memory, Python and load: what a reader needs to compare two reports."""
    memory = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = int(line.split()[1]) * 1024
    except OSError:
        pass
    return {
        "cores": os.cpu_count(),
        "memory_bytes": memory,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "load_average_at_end": list(os.getloadavg()),
    }
