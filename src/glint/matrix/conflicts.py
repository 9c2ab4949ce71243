"""Conflicts of a group's matrix: one name with two contents, duplicates, one content under two
names, each within a repo or across the group's repos (pure Python, like ``glint.matrix.rows``).

A conflict is reported once per group of images, not per pair, and only when one of the group's
own projects owns an image in it. People acknowledge a conflict by its key; the acknowledgement
holds while the group's members (its signature) stay the same.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from glint.matrix.rows import Copy, RepoColumn, Row, owned_by

__all__ = ["Conflict", "ConflictKind", "apply_acknowledgements", "find_conflicts"]


class ConflictKind(str, enum.Enum):
    """The conflict table (``docs/architecture.md``), one value per (type, scope) that is a
    problem."""

    NAME_CONFLICT = "name_conflict"  # type 1 within a repo: one name, two contents
    DRIFT = "drift"  # type 1 across repos: the copies of a name differ
    DUPLICATE = "duplicate"  # type 2 within a repo: a second copy in one project
    SAME_CONTENT = "same_content"  # type 3 within a repo: the same bytes under two names
    SAME_CONTENT_ACROSS = "same_content_across"  # type 3 across repos

    @property
    def type(self) -> int:
        return {"name_conflict": 1, "drift": 1, "duplicate": 2}.get(self.value, 3)

    @property
    def label(self) -> str:
        return {
            "name_conflict": "same name, different content in one repo",
            "drift": "drift: the copies of a name differ across repos",
            "duplicate": "duplicate: the same image twice in one repo",
            "same_content": "same content under different names in one repo",
            "same_content_across": "same content under different names across repos",
        }[self.value]


@dataclass
class Conflict:
    """One conflict group: every image involved, not n² pairs.

    Attributes:
        key: Stable identity of the group (kind, repo, name or content), for acknowledgements.
        signature: Digest of the member images; an acknowledgement holds only while it matches,
            so a new copy joining the group brings the conflict back.
        repo_id: The repo, for within-repo kinds; None across the group's repos.
        subject: The shared name (types 1 and 2) or content key (type 3).
    """

    kind: ConflictKind
    key: str
    repo_id: int | None
    subject: str
    rows: list[Row]
    copies: list[Copy]
    signature: str
    acknowledged: bool = False

    @property
    def type(self) -> int:
        return self.kind.type


def _signature(copies: Iterable[Copy]) -> str:
    ids = sorted(f"{c.repo_id}/{c.image_id}" for c in copies)
    return hashlib.sha256("\n".join(ids).encode()).hexdigest()[:16]


def _variant_groups(rows: list[Row], subject_of, variant_of, within, across, columns):
    """Conflicts where one subject (a name, or a content) appears in several variants.

    Within a repo: the repo holds two variants. Across repos: the variants are spread so that no
    single repo holds them all (otherwise the within-repo groups already say everything).
    """
    by_subject: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        by_subject[subject_of(row)].append(row)
    found = []
    for subject, subject_rows in by_subject.items():
        if len({variant_of(r) for r in subject_rows}) < 2:
            continue
        per_repo: dict[int, set[str]] = defaultdict(set)
        for r in subject_rows:
            for repo_id, cell in r.cells.items():
                if cell.copies:
                    per_repo[repo_id].add(variant_of(r))
        all_variants = {variant_of(r) for r in subject_rows}
        for repo_id in columns:
            if len(per_repo.get(repo_id, ())) >= 2:
                members = [r for r in subject_rows if r.cells[repo_id].copies]
                copies = [c for r in members for c in r.cells[repo_id].copies]
                found.append((within, repo_id, subject, members, copies))
        if not any(v == all_variants for v in per_repo.values()):
            found.append(
                (across, None, subject, subject_rows, [c for r in subject_rows for c in r.copies])
            )
    return found


def find_conflicts(rows: list[Row], columns: Iterable[RepoColumn]) -> list[Conflict]:
    """Conflict groups of a group's matrix, and mark the rows that take part.

    Unverifiable rows take part in none (their content is unknown). A group is reported only when
    at least one image in it is owned by one of the group's projects: clashes among other
    projects' public images are not the group's to resolve.

    Args:
        rows: From :func:`build_rows` (their ``conflict_types`` are filled in).
        columns: The group's repos.

    Returns:
        The conflicts, ordered by type, then subject.
    """
    columns = list(columns)
    by_repo = {col.id: col for col in columns}
    group_projects = {col.project_id for col in columns if col.project_id}
    rows = [r for r in rows if r.verifiable]

    found = _variant_groups(
        rows,
        lambda r: r.name,
        lambda r: r.content_key,
        ConflictKind.NAME_CONFLICT,
        ConflictKind.DRIFT,
        by_repo,
    )
    found += _variant_groups(
        rows,
        lambda r: r.content_key,
        lambda r: r.name,
        ConflictKind.SAME_CONTENT,
        ConflictKind.SAME_CONTENT_ACROSS,
        by_repo,
    )
    for row in rows:
        for repo_id, cell in row.cells.items():
            if len(cell.copies) >= 2:
                found.append((ConflictKind.DUPLICATE, repo_id, row.name, [row], list(cell.copies)))

    conflicts = []
    for kind, repo_id, subject, members, copies in found:
        if not any(
            c.owner in group_projects or owned_by(c, by_repo[c.repo_id].project_id) for c in copies
        ):
            continue
        if kind == ConflictKind.DUPLICATE:
            subject_key = f"{subject}\0{members[0].content_key}"
        else:
            subject_key = subject
        digest = hashlib.sha256(subject_key.encode()).hexdigest()[:16]
        key = f"{kind.value}-{repo_id or 'all'}-{digest}"  # URL-safe: the API's conflict id
        signature = _signature(copies)
        for row in members:
            row.conflict_types.add(kind.type)
        conflicts.append(Conflict(kind, key, repo_id, subject, members, copies, signature))
    conflicts.sort(key=lambda c: (c.type, c.subject, c.repo_id or 0))
    return conflicts


def apply_acknowledgements(
    conflicts: Iterable[Conflict], acknowledged: Mapping[str, str]
) -> list[Conflict]:
    """Copies of ``conflicts`` marked acknowledged where ``{key: signature}`` still matches."""
    return [
        dataclasses.replace(c, acknowledged=acknowledged.get(c.key) == c.signature)
        for c in conflicts
    ]
