"""Figure 6, the soak: a crowd of API clients against a real ``glint serve`` on a big matrix.

Clients are threads of the bench, each with its own keep-alive TLS session and its person's
certificate (10 people × 10 clients in the full run), reading in turn the matrix API, jobs, repos,
conflicts and the matrix page of a group of 2,000 images × 20 repos written straight into the
database. Each client asks at its pace (one request every ``pace`` seconds, from a random start) for
``seconds``; a request waits at most 30 s, as a person's script would. Three phases:

- the realistic pace (one request every 3 s), with N workers and with 1;
- the overload pace (one every 0.5 s): far over the per-person limit and over what the server
  answers, so refusals (429, 503) are expected, and slow answers or timeouts are not;
- capacity: every client asks again as soon as it is answered, with the rate limit off, to compare
  what N workers answer with what 1 worker answers.

The clients share the machine's cores with the server, as they did in the issue's measurement; the
``glint serve`` CPU row says how much of the machine the server got.
"""

from __future__ import annotations

import collections
import dataclasses
import os
import random
import threading
import time
from pathlib import Path

import requests

from bench.cpu import CpuMeter
from bench.report import Report

__all__ = ["SoakSettings", "soak_figures"]

TIMEOUT = 30  # seconds a client waits for one answer
REALISTIC_PACE = 3.0
OVERLOAD_PACE = 0.5
DN_PREFIX = "/C=CA/O=Glint Test Grid/CN="


@dataclasses.dataclass(frozen=True)
class SoakSettings:
    people: int
    clients_per_person: int
    seconds: float
    rows: int
    repos: int


@dataclasses.dataclass
class Phase:
    """What one phase's clients saw: each answer's latency and outcome (status or error kind)."""

    wall: float
    latencies: list[float]
    outcomes: collections.Counter

    @property
    def answered(self) -> int:
        return len(self.latencies)

    @property
    def ok(self) -> int:
        return sum(n for kind, n in self.outcomes.items() if kind.startswith("2"))

    def percentile(self, fraction: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]

    def errors(self) -> dict[str, int]:
        return {kind: n for kind, n in sorted(self.outcomes.items()) if not kind.startswith("2")}


def _paths(group_id: int) -> list[str]:
    return [
        f"/api/v1/images/?group={group_id}&limit=50",
        f"/api/v1/jobs/?group={group_id}",
        f"/api/v1/repos/?group={group_id}",
        f"/api/v1/conflicts/?group={group_id}",
        f"/images/?group={group_id}",
    ]


def _client(
    url: str,
    paths: list[str],
    credential: Path,
    ca_file: Path,
    pace: float,
    start,
    end,
    phase,
    lock,
):
    session = requests.Session()
    session.trust_env = False
    session.cert = str(credential)
    session.verify = str(ca_file)
    turn = random.randrange(len(paths))
    next_at = start + random.uniform(0, pace)
    while True:
        now = time.monotonic()
        if next_at > now:
            time.sleep(next_at - now)
        if time.monotonic() >= end:
            break
        asked = time.monotonic()
        try:
            response = session.get(url + paths[turn % len(paths)], timeout=TIMEOUT)
            response.content  # noqa: B018 - read the whole answer, as a client would
            kind = str(response.status_code)
        except requests.exceptions.RequestException as exc:
            kind = type(exc).__name__
        took = time.monotonic() - asked
        with lock:
            phase.latencies.append(took)
            phase.outcomes[kind] += 1
        turn += 1
        next_at = max(next_at + pace, time.monotonic()) if pace else time.monotonic()
    session.close()


def _run_phase(
    server, people, settings: SoakSettings, group_id: int, pace: float
) -> tuple[Phase, float]:
    """Run the crowd for ``settings.seconds``; the phase and ``glint serve``'s CPU-seconds."""
    url = f"https://127.0.0.1:{server.port}"
    paths = _paths(group_id)
    phase = Phase(0.0, [], collections.Counter())
    lock = threading.Lock()
    start = time.monotonic() + 1.0  # every thread started before the clock runs
    end = start + settings.seconds
    threads = [
        threading.Thread(
            target=_client,
            args=(url, paths, credential, server.ca_file, pace, start, end, phase, lock),
            daemon=True,
        )
        for credential in people
        for _ in range(settings.clients_per_person)
    ]
    with CpuMeter({"glint serve": server.pids()}) as meter:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(TIMEOUT + settings.seconds + 10)
    phase.wall = time.monotonic() - start
    return phase, meter.use.seconds["glint serve"]


def _report_phase(report: Report, label: str, phase: Phase, cpu_seconds: float) -> None:
    errors = phase.errors()
    report.info(
        f"{label}: answered/s",
        phase.answered / phase.wall,
        note=f"{phase.answered} answers in {phase.wall:.0f} s, {phase.ok} of them 2xx; "
        f"glint serve {cpu_seconds / phase.wall:.2f} cores busy",
    )
    for name, fraction in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99)):
        report.info(f"{label}: {name}", phase.percentile(fraction) * 1000, unit=" ms")
    report.info(
        f"{label}: errors",
        sum(errors.values()),
        note=", ".join(f"{kind} × {n}" for kind, n in errors.items()) or "none",
    )


class _Server:
    """One ``glint serve`` on the soak's data directory, with its workers' pids for the CPU."""

    def __init__(self, data_dir: Path, pki, workers: int, rate_limit: str):
        from tests.live import start_server

        self.ca_file = pki.ca_file
        self.running = start_server(
            data_dir,
            *pki.serve_args,
            log_name=f"serve-{workers}w-{rate_limit.replace('/', '-')}.log",
            GLINT_WORKERS=str(workers),
            GLINT_API_RATE_LIMIT=rate_limit,
            GLINT_POLL_INTERVAL="86400",  # the repos are rows in the database, not clouds
        )
        self.port = self.running.port

    def pids(self) -> list[int]:
        pid = self.running.process.pid
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        return [pid, *(int(child) for child in children)]

    def stop(self) -> None:
        self.running.stop()


def _prepare(data_dir: Path, settings: SoakSettings, pki):
    """The soak's group, its people (a certificate each) and the big matrix, in the database the
    servers will open; the group id and the people's credential files."""
    from django.db import connections

    from bench.inventory import big_inventory
    from glint.accounts.services import add_group, add_user

    group = add_group("bench-soak")
    big_inventory(group, settings.rows, settings.repos)
    credentials = []
    for number in range(settings.people):
        name = f"Soak Person {number}"
        add_user(DN_PREFIX + name, group_name=group.name, role="member")
        credentials.append(pki.person(name)[2])
    connections.close_all()  # the servers write this SQLite database now
    return group.pk, credentials


def soak_figures(report: Report, data_dir: Path, work: Path, settings: SoakSettings) -> None:
    """The soak rows: each pace with N workers and with 1, then capacity, N against 1."""
    from tests.live import make_pki

    (work / "soak-pki").mkdir(parents=True, exist_ok=True)
    pki = make_pki(work / "soak-pki")
    group_id, people = _prepare(data_dir, settings, pki)
    cores = os.cpu_count() or 1
    clients = settings.people * settings.clients_per_person
    report.info(
        "soak: clients",
        clients,
        note=f"{settings.people} people × {settings.clients_per_person}, keep-alive TLS; "
        f"{settings.rows} images × {settings.repos} repos; {settings.seconds:g} s a phase",
    )
    phases: dict[tuple[str, int], Phase] = {}
    worker_counts = sorted({cores, 1}, reverse=True)
    for workers in worker_counts:
        server = _Server(data_dir, pki, workers, "300/minute")
        try:
            for pace_name, pace in (("realistic", REALISTIC_PACE), ("overload", OVERLOAD_PACE)):
                phase, cpu = _run_phase(server, people, settings, group_id, pace)
                phases[(pace_name, workers)] = phase
                label = f"soak {pace_name} (1 per {pace:g} s), {workers} worker(s)"
                _report_phase(report, label, phase, cpu)
        finally:
            server.stop()
    served = {}
    for workers in worker_counts:
        server = _Server(data_dir, pki, workers, "off")
        try:
            phase, cpu = _run_phase(server, people, settings, group_id, 0)
        finally:
            server.stop()
        served[workers] = phase.ok / phase.wall
        _report_phase(
            report, f"soak capacity (no pause, no limit), {workers} worker(s)", phase, cpu
        )
    _targets(report, phases, served, cores)


def _targets(report: Report, phases, served: dict[int, float], cores: int) -> None:
    """The issue's bars, on the default server (a worker per core)."""
    realistic, overload = phases[("realistic", cores)], phases[("overload", cores)]
    every_core = f"{cores} worker(s), one per core"
    report.target("soak realistic pace: errors", sum(realistic.errors().values()), "<=", 0)
    report.target(
        "soak realistic pace: p95",
        realistic.percentile(0.95) * 1000,
        "<",
        500,
        unit=" ms",
        note=every_core,
    )
    report.target(
        "soak overload pace: longest wait",
        max(overload.latencies),
        "<=",
        5,
        unit=" s",
        note=every_core,
    )
    others = {kind: n for kind, n in overload.errors().items() if kind not in ("429", "503")}
    report.target(
        "soak overload pace: answers other than 2xx, 429, 503",
        sum(others.values()),
        "<=",
        0,
        note=", ".join(f"{kind} × {n}" for kind, n in others.items()) or "none",
    )
    report.target(
        "soak capacity: every core / 1 worker",
        served[cores] / served[1] if served[1] else None,
        ">=",
        1.7,
        unit="x",
        note=f"2xx per second with {cores} worker(s): {served[cores]:.1f}, with 1: {served[1]:.1f}",
    )
