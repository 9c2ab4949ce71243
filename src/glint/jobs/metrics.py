"""The jobs' part of ``/metrics`` (Prometheus text format 0.0.4): jobs by kind, state and site,
bytes copied, copy throughput, and verification failures.

Sites are the operator's names of places (validated like queue names), so they may be labels.

Bytes copied, the throughput histogram and verification failures are counters kept in their own
table (``glint.jobs.counters``), so deleting or pruning jobs never makes them go down.

Like the inventory's part it names nothing (no image names, repos by id only, no DNs or error
texts), and costs a few aggregate queries whatever the number of jobs.
"""

from __future__ import annotations

from django.db.models import Count

from glint.jobs import counters, states
from glint.jobs.models import Job
from glint.repos.models import Repo

__all__ = ["render_job_metrics"]


def render_job_metrics() -> list[str]:
    lines = [
        "# HELP glint_jobs Jobs by kind, state and site (the site whose workers run them; "
        "empty: any worker).",
        "# TYPE glint_jobs gauge",
    ]
    counts = {
        (kind, state, site): n
        for kind, state, site, n in Job.objects.order_by()
        .values_list("kind", "state", "site")
        .annotate(n=Count("pk"))
    }
    # Every site a repo or a job names gets every series, so a series never comes and goes.
    sites = {""} | {site for _kind, _state, site in counts}
    sites |= set(Repo.objects.exclude(site="").values_list("site", flat=True).distinct())
    for site in sorted(sites):
        for kind in states.KINDS:
            for state in states.JOB_STATES:
                n = counts.get((kind, state, site), 0)
                lines.append(f'glint_jobs{{kind="{kind}",state="{state}",site="{site}"}} {n}')
    totals = counters.values()
    lines += [
        "# HELP glint_copied_bytes_total Bytes of copies and uploads verified at their targets.",
        "# TYPE glint_copied_bytes_total counter",
        f"glint_copied_bytes_total {_number(totals, counters.COPIED_BYTES)}",
    ]
    lines += _throughput(totals)
    lines += [
        "# HELP glint_verification_failures_total Copies whose bytes did not match their source.",
        "# TYPE glint_verification_failures_total counter",
        f"glint_verification_failures_total {_number(totals, counters.VERIFICATION_FAILURES)}",
    ]
    return lines


def _throughput(totals: dict[str, float]) -> list[str]:
    """A histogram of the verified copies' rates (bytes/s), cumulative as Prometheus wants."""
    name = counters.THROUGHPUT
    lines = [
        f"# HELP {name} Rate of each verified copy to its target.",
        f"# TYPE {name} histogram",
    ]
    for bound in (*counters.THROUGHPUT_BUCKETS, None):
        lines.append(f"{counters.bucket(bound)} {_number(totals, counters.bucket(bound))}")
    lines += [
        f"{name}_sum {_number(totals, f'{name}_sum')}",
        f"{name}_count {_number(totals, f'{name}_count')}",
    ]
    return lines


def _number(totals: dict[str, float], name: str) -> str:
    """A counter's value as Prometheus reads it (whole numbers without a fraction or exponent)."""
    value = totals.get(name, 0.0)
    return str(int(value)) if float(value).is_integer() else repr(value)
