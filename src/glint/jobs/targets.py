"""Kept only so that ``glint.transfers.runner`` (being rewritten on another branch) imports as it
did: these names live in ``glint.jobs.runners`` now. Delete this module once nothing imports it.
"""

from glint.jobs.runners import (  # noqa: F401 - re-exported for glint.transfers.runner
    TargetWriter,
    content_cache,
    fail_targets,
    open_copy_targets,
    record_outcomes,
)
