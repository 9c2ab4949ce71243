"""The benchmark still works: its small variant (64 MiB, 2 targets, one round) runs end to end.

No timing assertions: this machine's speed is not the point here (bench/README.md is). The bench
boots its own devcloud; it may not install tools here (no test reaches beyond the machine), so
the manual route makes openstackclient's SDK calls itself and no profile is taken.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ROWS = [
    "fan-out: Glint / limit",
    "fan-out: staged / Glint",
    "fan-out: manual / Glint",
    "memory: growth at 64 MiB / at 16 MiB",
    "inventory: concurrent speed-up over sequential",
    "inventory: others' poll with a silent repo / without",
    "matrix page: SQL queries at 200 rows minus at 50",
    "matrix API: SQL queries at 200 rows minus at 50",
    "upload / fan-out limit",
    "fan-out: glint serve CPU-s per GiB",
    "fan-out: glint serve CPU / the limit's sender CPU",
    "hashing sha256+sha512+md5: a thread each vs one thread",
    "soak realistic pace: errors",
    "soak realistic pace: p95",
    "soak overload pace: longest wait",
    "soak overload pace: answers other than 2xx, 429, 503",
    "soak capacity: every core / 1 worker",
    "ec2: Glance -> EC2 Glint / EBS direct limit",
]


def run_bench(module: str, *args: str, timeout: int) -> subprocess.CompletedProcess:
    """``python -m module args`` from the checkout; it must succeed."""
    result = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


@pytest.mark.timeout(420)
def test_small_bench_prints_every_row_and_writes_the_report(tmp_path):
    result = run_bench(
        "bench", "--small", "--no-install", "--no-profile", "--results", str(tmp_path), timeout=400
    )
    (path,) = tmp_path.glob("bench-small-*.json")
    report = json.loads(path.read_text())
    assert report["machine"]["cores"] >= 1 and report["machine"]["memory_bytes"] > 0
    rows = {row["name"]: row for row in report["rows"]}
    for name in ROWS:
        assert name in rows, f"{name!r} missing from {sorted(rows)}"
    for row in report["rows"]:
        assert isinstance(row["value"], (int, float)), row
        assert row["status"] in ("PASS", "FAIL", "INFO"), row
        assert f"{row['name']}: " in result.stdout


def test_the_request_body_bench_prints_both_routes_and_their_ratio():
    result = run_bench("bench.request_body", "--size", "8", "--rounds", "1", timeout=120)
    for route in ("readinto", "read"):
        assert f"request body via {route}: " in result.stdout
    assert "request body: read / readinto: " in result.stdout
