"""The monotonic counters of ``/metrics`` (bytes copied, copy rates, verification failures),
raised in the transaction that records a target's end (``runners.save_target``).

Prometheus takes a counter that goes down for a restart and loses the difference; counted from
job rows, these would go down whenever jobs are deleted or pruned. So each series is a
``Counter`` row, raised with ``value = value + n`` (no lost update between two workers).
"""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.db.models import F

from glint.jobs import states
from glint.jobs.models import Counter, Job, JobTarget

__all__ = [
    "COPIED_BYTES",
    "THROUGHPUT",
    "THROUGHPUT_BUCKETS",
    "VERIFICATION_CODES",
    "VERIFICATION_FAILURES",
    "count_target_end",
    "values",
]

MiB = 2**20
COPIED_BYTES = "glint_copied_bytes_total"
VERIFICATION_FAILURES = "glint_verification_failures_total"
THROUGHPUT = "glint_copy_throughput_bytes_per_second"
#: Upper bounds (bytes/s) of the copy-throughput histogram's buckets.
THROUGHPUT_BUCKETS = tuple(n * MiB for n in (1, 10, 50, 100, 200, 500, 1000))
#: Error codes of a copy whose bytes were checked and found wrong.
VERIFICATION_CODES = ("source_verification_failed", "target_verification_failed")
#: Kinds whose targets receive an image's bytes.
WRITING_KINDS = (states.COPY, states.UPLOAD)


def bucket(bound: float | None) -> str:
    """The series of the throughput bucket up to ``bound`` bytes/s (None: ``+Inf``)."""
    return f'{THROUGHPUT}_bucket{{le="{"+Inf" if bound is None else bound}"}}'


def count_target_end(target: JobTarget, values: dict) -> None:
    """Raise the counters for ``values`` about to be saved on ``target`` (call inside the
    transaction that saves them): a verified copy's bytes and rate, or a verification failure."""
    if values.get("error_code") in VERIFICATION_CODES:
        _add(VERIFICATION_FAILURES, 1)
    if values.get("state") != states.TargetState.DONE.value or values.get("outcome") != "copied":
        return
    if not Job.objects.filter(pk=target.job_id, kind__in=WRITING_KINDS).exists():
        return
    _add(COPIED_BYTES, values.get("bytes_done", target.bytes_done) or 0)
    # The engine's progress writes the rate to the row only, not to the object in memory.
    if "rate" in values:
        rate = values["rate"]
    else:
        rate = JobTarget.objects.filter(pk=target.pk).values_list("rate", flat=True).first()
    if rate is None:
        return
    for bound in THROUGHPUT_BUCKETS:
        if rate <= bound:
            _add(bucket(bound), 1)
    _add(bucket(None), 1)
    _add(f"{THROUGHPUT}_sum", rate)
    _add(f"{THROUGHPUT}_count", 1)


def _add(name: str, amount: float) -> None:
    if not amount:
        return
    if Counter.objects.filter(name=name).update(value=F("value") + amount):
        return
    try:
        with transaction.atomic():  # a savepoint: another process may create it first
            Counter.objects.create(name=name, value=amount)
    except IntegrityError:
        Counter.objects.filter(name=name).update(value=F("value") + amount)


def values() -> dict[str, float]:
    """Every counter's value (a series never raised is absent: read it as 0)."""
    return dict(Counter.objects.values_list("name", "value"))
