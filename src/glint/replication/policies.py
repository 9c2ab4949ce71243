"""What a copy does when the target already has an image of the same name with other content.

docs/architecture.md "Conflicts", type 1. Whatever the policy, nothing at the target is deleted or
renamed before the new copy is written and verified, so a copy that fails midway leaves the
target as it was.
"""

from __future__ import annotations

import enum

__all__ = ["ConflictPolicy"]


class ConflictPolicy(str, enum.Enum):
    """Per-group policy for a name clash at a target (the value is what the database stores).

    Members:
        REPORT: Write nothing; the target fails with :class:`~glint.replication.NameConflict`
            (the default: a person decides).
        SKIP: Write nothing; the target ends ``skipped``.
        REPLACE: Copy, verify, then delete the old image(s) of that name.
        RENAME_OLD: Copy, verify, then rename the old image(s) to ``<name>.old-<date>`` and make
            them private.
    """

    REPORT = "report"
    SKIP = "skip"
    REPLACE = "replace"
    RENAME_OLD = "rename-old"
