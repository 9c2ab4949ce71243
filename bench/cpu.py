"""CPU-seconds each process of the stack spends while a route runs, from ``/proc/<pid>/stat``.

On a 2-core machine every Keystone, Glance, ``glint serve`` and the bench itself share the same
cores. When their CPU-seconds over a route's wall time come close to the number of cores, the
route is bound by CPU, and comparing two routes compares how much CPU each needs, not how well
either overlaps its waits. These figures say which case each measurement is.
"""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path

from devcloud.processes import group_members

__all__ = ["TICKS", "CpuMeter", "CpuUse", "median_use", "stack_processes", "stat_fields"]

TICKS = os.sysconf("SC_CLK_TCK")


def stat_fields(stat: str) -> list[str]:
    """The fields of a ``/proc/.../stat`` line after the command name, which may hold spaces."""
    return stat[stat.rindex(")") + 2 :].split()


def _process_seconds(pid: int) -> float:
    """User + system time of ``pid`` and of its children it has waited for (0 once it is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat_fields(stat)
    utime, stime, cutime, cstime = (int(v) for v in fields[11:15])
    return (utime + stime + cutime + cstime) / TICKS


def _machine_seconds() -> float:
    """CPU-seconds every process of the machine has spent (all cores), from ``/proc/stat``."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[:8])
    return (user + nice + system + irq + softirq + steal) / TICKS


def stack_processes(dc, glint_pid: int | None = None) -> dict[str, list[int]]:
    """Every process to account for, by name: each Keystone and Glance (gunicorn's master and
    workers, found by process group), ``glint serve`` when it runs, and this bench process."""
    groups = {svc.name: group_members(svc.pid) for svc in dc.state.services if svc.pid}
    if glint_pid:
        groups["glint serve"] = [glint_pid]
    groups["bench"] = [os.getpid()]
    return groups


@dataclasses.dataclass
class CpuUse:
    """What a block of work cost: CPU-seconds by process name, over its wall time."""

    wall: float
    seconds: dict[str, float]
    machine: float  # CPU-seconds of every process on the machine, ours and other people's

    @property
    def total(self) -> float:
        return sum(self.seconds.values())

    @property
    def cores_busy(self) -> float:
        """Average number of cores kept busy: ``os.cpu_count()`` means CPU-bound."""
        return self.total / self.wall if self.wall else 0.0

    @property
    def machine_busy(self) -> float:
        """Cores the whole machine kept busy: near ``os.cpu_count()`` while ``cores_busy`` is
        lower means other work on the machine took the rest."""
        return self.machine / self.wall if self.wall else 0.0

    def by_kind(self) -> dict[str, float]:
        """Seconds summed per kind: ``keystone``, ``glance`` (``devcloud-N``), and the others."""
        kinds: dict[str, float] = {}
        for name, seconds in self.seconds.items():
            kind = (
                "keystone"
                if name.startswith("keystone-")
                else "glance"
                if name.startswith("devcloud-")
                else name
            )
            kinds[kind] = kinds.get(kind, 0.0) + seconds
        return kinds

    def note(self, *, per_process: bool = False) -> str:
        """The CPU-seconds, largest first: per kind, or per process (each Glance on its own)."""
        seconds = self.seconds if per_process else self.by_kind()
        parts = ", ".join(f"{k} {v:.1f}" for k, v in sorted(seconds.items(), key=lambda kv: -kv[1]))
        return (
            f"CPU-s: {parts}; total {self.total:.1f} over {self.wall:.1f} s wall; whole machine "
            f"{self.machine_busy:.2f} of {os.cpu_count()} cores busy"
        )

    def as_dict(self) -> dict:
        return {
            "wall": round(self.wall, 3),
            "cores_busy": round(self.cores_busy, 3),
            "machine_cores_busy": round(self.machine_busy, 3),
            "seconds": {k: round(v, 3) for k, v in self.seconds.items()},
        }


class CpuMeter:
    """``with CpuMeter(groups) as meter: ...`` then ``meter.use``: the CPU each group spent."""

    def __init__(self, groups: dict[str, list[int]]):
        self.groups = groups
        self.use: CpuUse | None = None

    def _sample(self) -> dict[int, float]:
        return {pid: _process_seconds(pid) for pids in self.groups.values() for pid in pids}

    def __enter__(self) -> CpuMeter:  # noqa: PYI034 - never subclassed
        self._before = self._sample()
        self._machine = _machine_seconds()
        self._started = time.perf_counter()
        return self

    def __exit__(self, *exc_info) -> None:
        wall = time.perf_counter() - self._started
        machine = _machine_seconds() - self._machine
        after = self._sample()
        # A process that ended meanwhile reads 0: count nothing for it rather than less than
        # nothing.
        spent = {pid: max(0.0, after[pid] - self._before[pid]) for pid in after}
        self.use = CpuUse(
            wall,
            {name: sum(spent[pid] for pid in pids) for name, pids in self.groups.items()},
            machine,
        )


def median_use(uses: list[CpuUse]) -> CpuUse:
    """The run whose cores-busy figure is the median one (a real run, not a mix of several)."""
    return sorted(uses, key=lambda u: u.cores_busy)[(len(uses) - 1) // 2]
