"""The jobs' part of ``/metrics`` (Prometheus text format 0.0.4): jobs by kind, state and site,
bytes copied, copy throughput, and verification failures.

Sites are the operator's names of places (validated like queue names), so they may be labels.

Like the inventory's part it names nothing (no image names, repos by id only, no DNs or error
texts), and costs a few aggregate queries whatever the number of jobs.
"""

from __future__ import annotations

from django.db.models import Count, Sum

from glint.jobs import states
from glint.jobs.models import Job, JobTarget
from glint.repos.models import Repo

__all__ = ["THROUGHPUT_BUCKETS", "render_job_metrics"]

MiB = 2**20
#: Upper bounds (bytes/s) of the copy-throughput histogram's buckets.
THROUGHPUT_BUCKETS = tuple(n * MiB for n in (1, 10, 50, 100, 200, 500, 1000))
#: Error codes of a copy whose bytes were checked and found wrong.
VERIFICATION_CODES = ("source_verification_failed", "target_verification_failed")
#: Kinds whose targets receive an image's bytes.
WRITING_KINDS = (states.COPY, states.UPLOAD)


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
    copied = JobTarget.objects.filter(
        job__kind__in=WRITING_KINDS, state=states.TargetState.DONE.value, outcome="copied"
    )
    total = copied.aggregate(total=Sum("bytes_done"))["total"] or 0
    lines += [
        "# HELP glint_copied_bytes_total Bytes of copies and uploads verified at their targets.",
        "# TYPE glint_copied_bytes_total counter",
        f"glint_copied_bytes_total {total}",
    ]
    lines += _throughput(copied)
    failures = JobTarget.objects.filter(error_code__in=VERIFICATION_CODES).count()
    lines += [
        "# HELP glint_verification_failures_total Copies whose bytes did not match their source.",
        "# TYPE glint_verification_failures_total counter",
        f"glint_verification_failures_total {failures}",
    ]
    return lines


def _throughput(copied) -> list[str]:
    """A histogram of the verified copies' rates (bytes/s), cumulative as Prometheus wants."""
    rates = copied.exclude(rate__isnull=True)
    name = "glint_copy_throughput_bytes_per_second"
    lines = [
        f"# HELP {name} Rate of each verified copy to its target.",
        f"# TYPE {name} histogram",
    ]
    for bound in THROUGHPUT_BUCKETS:
        lines.append(f'{name}_bucket{{le="{bound}"}} {rates.filter(rate__lte=bound).count()}')
    summary = rates.aggregate(n=Count("pk"), total=Sum("rate"))
    lines += [
        f'{name}_bucket{{le="+Inf"}} {summary["n"]}',
        f"{name}_sum {summary['total'] or 0:g}",
        f"{name}_count {summary['n']}",
    ]
    return lines
