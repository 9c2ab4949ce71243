"""Raw job values with no Django import: the engine, the models and the CLI share these.

Target states are the engine's own (:class:`glint.replication.TargetState`), so a target's row
and the engine that drives it cannot disagree. Job states and kinds live here (the engine knows
nothing of jobs). The Django choices in ``glint.jobs.choices`` are built from these tuples.

Job state machine (docs/architecture.md "Jobs")::

    queued ──claim──▶ running ──▶ done        every target done
      ▲                  │   ├──▶ partial     some targets done, some failed
      │   lease expired  │   ├──▶ failed      no target done
      └──────(sweeper)───┘   └──▶ cancelled   cancel requested
      ▲                          │
      └── retry (a person), or automatic retry of partial/failed when ``next_attempt_at``
          is set (a transient cloud error with attempts left); retry redoes only the targets
          that are not done.

Target state machine (per repo)::

    pending ─▶ writing ─▶ verifying ─▶ done
       │          │           │
       └──────────┴───────────┴─────▶ failed | cancelled   (failed → pending on retry)

For a delete job "writing" is the delete call and "verifying" checks the image is gone; for a
property-sync job "writing" is the property update.
"""

from __future__ import annotations

from glint.replication import TargetState

__all__ = [
    "KINDS",
    "COPY",
    "DELETE",
    "UPLOAD",
    "PROPERTY_SYNC",
    "QUEUED",
    "RUNNING",
    "DONE",
    "PARTIAL",
    "FAILED",
    "CANCELLED",
    "JOB_STATES",
    "JOB_FINAL_STATES",
    "JOB_ACTIVE_STATES",
    "TargetState",
    "TARGET_STATES",
    "TARGET_FINAL_STATES",
    "TARGET_ACTIVE_STATES",
    "CLI_EXIT_CODES",
]

COPY, DELETE, UPLOAD, PROPERTY_SYNC = "copy", "delete", "upload", "property-sync"
#: A download in another disk format, prepared in the content cache (no cloud is written).
CONVERT = "convert"
KINDS = (COPY, DELETE, UPLOAD, PROPERTY_SYNC, CONVERT)

QUEUED, RUNNING, DONE, PARTIAL, FAILED, CANCELLED = (
    "queued",
    "running",
    "done",
    "partial",
    "failed",
    "cancelled",
)
JOB_STATES = (QUEUED, RUNNING, DONE, PARTIAL, FAILED, CANCELLED)
#: States a job rests in. partial and failed are final unless ``next_attempt_at`` is set.
JOB_FINAL_STATES = (DONE, PARTIAL, FAILED, CANCELLED)
JOB_ACTIVE_STATES = (QUEUED, RUNNING)

TARGET_STATES = tuple(state.value for state in TargetState)
TARGET_FINAL_STATES = (
    TargetState.DONE.value,
    TargetState.FAILED.value,
    TargetState.CANCELLED.value,
)
TARGET_ACTIVE_STATES = (
    TargetState.PENDING.value,
    TargetState.WRITING.value,
    TargetState.VERIFYING.value,
)

#: ``glint copy --wait`` and friends exit with these (issue 4: "exit codes that tell done /
#: partial / failed apart").
CLI_EXIT_CODES = {DONE: 0, PARTIAL: 2, FAILED: 1, CANCELLED: 1}
