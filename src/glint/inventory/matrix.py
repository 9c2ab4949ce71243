"""The image matrix and its conflicts, computed from plain records (no Django, no database).

ARCHITECTURE.md "Identity of an image, and the matrix" is the specification; this module is its
only implementation, so the pages, the API and the replication planner cannot disagree.

Content identity. An image's bytes are known by the hashes its cloud computed (md5 ``checksum``
always; ``os_hash_algo``/``os_hash_value``, sha512 by default, sha256 on some clouds) and by the
sha256 that Glint or openstacksdk recorded in its properties (provenance). No single hash is shared
by every copy: a sha512 cloud and a sha256 cloud publish different ``os_hash`` algorithms. So
copies are clustered: two copies hold the same bytes when they agree on a hash of some algorithm,
strongest first (sha256, then the other ``os_hash`` algorithms, then md5), and a cluster never
absorbs a copy that contradicts it on an algorithm both know (an md5 collision does not merge two
sha256s). The md5 every Glance publishes ties a sha512 copy to a sha256 copy; Glint's
``glint_sha256`` ties its own copies even when nothing else is shared.

A cluster's *content key* is its best-known hash, ``sha256:<hex>`` when any member knows the
sha256, else the ``os_hash`` (``sha512:<hex>``), else ``md5:<hex>``. Because the key can grow
stronger when a new copy joins, :attr:`Row.keys` lists every key the cluster answers to; flags
stored under an older key (hidden rows) are found through them.

A copy the cloud has computed no hash for (``queued``, ``saving``, killed uploads) has no content
identity: it is a row of its own, unverifiable, never a copy source, and takes part in no content
conflict.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

__all__ = [
    "CellState",
    "Copy",
    "RepoColumn",
    "Cell",
    "Row",
    "Conflict",
    "ConflictKind",
    "content_keys",
    "build_rows",
    "apply_hidden",
    "find_conflicts",
    "apply_acknowledgements",
    "row_id",
    "filter_rows",
    "sort_rows",
]

#: Hash algorithms in the order they are trusted to identify content; others sort after these.
ALGORITHM_STRENGTH = ("sha256", "sha512", "sha384", "sha3_512", "sha3_256")
UNVERIFIABLE_PREFIX = "unverifiable:"


class CellState(str, enum.Enum):
    """What one repo holds of one row. The last five come from jobs (``overlays``)."""

    ABSENT = "absent"
    PRESENT = "present"  # a copy owned by the repo's own project
    FOREIGN = "foreign"  # only copies owned by another project (public, shared, community)
    QUEUED = "queued"
    COPYING = "copying"
    VERIFYING = "verifying"
    FAILED = "failed"
    DELETING = "deleting"


class Copy(NamedTuple):
    """One image in one repo, reduced to what the matrix needs (see ``models.Image``)."""

    pk: int
    repo_id: int
    image_id: str
    name: str
    status: str
    size: int | None
    disk_format: str
    container_format: str
    checksum: str
    os_hash_algo: str
    os_hash_value: str
    glint_sha256: str
    sdk_sha256: str
    owner: str
    visibility: str
    member_status: str
    created_at: object = None
    updated_at: object = None


@dataclass(frozen=True)
class RepoColumn:
    """A column of the matrix. ``project_id`` is the cloud project the repo's credentials reach,
    which decides whether a copy is the repo's own; empty while unknown."""

    id: int
    name: str
    project_id: str = ""


@dataclass(frozen=True)
class Cell:
    """One repo's copies of one row. ``progress`` and ``reason`` are set by job overlays.

    Frozen, so one cell object can be shared by every absent cell and by cached matrices.
    """

    state: CellState
    copies: tuple[Copy, ...] = ()
    progress: int | None = None
    reason: str = ""

    @property
    def statuses(self) -> list[str]:
        """Cloud statuses other than ``active``, worth showing beside the cell."""
        return sorted({c.status for c in self.copies if c.status != "active"})


@dataclass(eq=False)
class Row:
    """One (name, content) pair of a group's matrix.

    Attributes:
        id: Stable id for URLs and the API (:func:`row_id`).
        content_key: ``sha256:…``, ``sha512:…``, ``md5:…`` or ``unverifiable:<repo>:<image>``.
        keys: Every content key the row's cluster answers to (for flags stored earlier).
        owned: Some copy is owned by a project of the group's repos.
        hidden: Glint's per-group flag: the stored choice (:func:`apply_hidden`), else
            ``not owned``.
        conflict_types: Conflict types (1, 2, 3) this row takes part in.
    """

    id: str
    name: str
    content_key: str
    keys: frozenset[str]
    cells: dict[int, Cell]
    owned: bool = False
    hidden: bool = False
    conflict_types: set[int] = field(default_factory=set)

    @property
    def verifiable(self) -> bool:
        return not self.content_key.startswith(UNVERIFIABLE_PREFIX)

    def answers_to(self, group_id: int, rid: str) -> bool:
        """Whether ``rid`` is this row's id, now or under another key its cluster answers to.

        The id digests the content key, which grows stronger when a copy with a better hash
        joins (Glint's sha256 after a copy): a link or API id taken before that still finds
        the row.
        """
        return rid == self.id or any(row_id(group_id, self.name, key) == rid for key in self.keys)

    @property
    def copies(self) -> list[Copy]:
        return [c for cell in self.cells.values() for c in cell.copies]

    @property
    def size(self) -> int | None:
        return next((c.size for c in self.copies if c.size is not None), None)

    @property
    def formats(self) -> str:
        first = self.copies[0] if self.copies else None
        return f"{first.disk_format or '?'}/{first.container_format or '?'}" if first else ""

    @property
    def short_hash(self) -> str:
        if not self.verifiable:
            return ""
        algo, _, value = self.content_key.partition(":")
        return f"{algo}:{value[:12]}"

    @property
    def created_at(self):
        """When the oldest copy was created: the row's age."""
        dates = [c.created_at for c in self.copies if c.created_at]
        return min(dates) if dates else None


class ConflictKind(str, enum.Enum):
    """The conflict table of ARCHITECTURE.md, one value per (type, scope) that is a problem."""

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


# Content identity


def _claimed_sha256(copy: Copy) -> str:
    return (copy.glint_sha256 or copy.sdk_sha256 or "").lower()


def _evidence(copy: Copy) -> dict[str, str]:
    """Hashes known for a copy, by algorithm. The cloud's own hashes win over claims."""
    known: dict[str, str] = {}
    if not (copy.checksum or copy.os_hash_value):
        return known  # no data hashed by the cloud: a claim alone proves nothing
    claim = _claimed_sha256(copy)
    if claim:
        known["sha256"] = claim
    if copy.os_hash_algo and copy.os_hash_value:
        known[copy.os_hash_algo.lower()] = copy.os_hash_value.lower()
    if copy.checksum:
        known["md5"] = copy.checksum.lower()
    return known


def _algo_rank(algo: str) -> tuple[int, str]:
    if algo in ALGORITHM_STRENGTH:
        return (ALGORITHM_STRENGTH.index(algo), algo)
    if algo == "md5":
        return (len(ALGORITHM_STRENGTH) + 1, algo)
    return (len(ALGORITHM_STRENGTH), algo)


class _Clusters:
    """Union-find over copies that keeps, per cluster, one hash value per algorithm."""

    def __init__(self, evidence: dict[int, dict[str, str]]):
        self.parent = {pk: pk for pk in evidence}
        self.known = {pk: dict(ev) for pk, ev in evidence.items()}

    def find(self, pk: int) -> int:
        while self.parent[pk] != pk:
            self.parent[pk] = self.parent[self.parent[pk]]
            pk = self.parent[pk]
        return pk

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return
        ka, kb = self.known[ra], self.known[rb]
        if any(ka[algo] != kb[algo] for algo in ka.keys() & kb.keys()):
            return  # they agree on one hash and disagree on another: not the same bytes
        self.parent[rb] = ra
        ka.update(kb)
        del self.known[rb]


def _key_of(known: Mapping[str, str]) -> str:
    algo = min(known, key=_algo_rank)
    return f"{algo}:{known[algo]}"


def content_keys(copies: Iterable[Copy]) -> dict[int, tuple[str, frozenset[str]]]:
    """The content key of every copy, and all the keys its cluster answers to.

    Returns:
        ``{copy.pk: (content_key, keys)}``; an unverifiable copy gets
        ``unverifiable:<repo_id>:<image_id>`` and only that key.
    """
    copies = list(copies)
    evidence = {c.pk: _evidence(c) for c in copies}
    clusters = _Clusters({pk: ev for pk, ev in evidence.items() if ev})
    algorithms = sorted({algo for ev in evidence.values() for algo in ev}, key=_algo_rank)
    for algo in algorithms:  # strongest first, so md5 only joins what nothing stronger separates
        buckets: dict[str, list[int]] = defaultdict(list)
        for pk, ev in evidence.items():
            if algo in ev:
                buckets[ev[algo]].append(pk)
        for members in buckets.values():
            for other in members[1:]:
                clusters.union(members[0], other)
    result: dict[int, tuple[str, frozenset[str]]] = {}
    for c in copies:
        if not evidence[c.pk]:
            key = f"{UNVERIFIABLE_PREFIX}{c.repo_id}:{c.image_id}"
            result[c.pk] = (key, frozenset([key]))
            continue
        known = clusters.known[clusters.find(c.pk)]
        result[c.pk] = (_key_of(known), frozenset(f"{a}:{v}" for a, v in known.items()))
    return result


def row_id(group_id: int, name: str, content_key: str) -> str:
    """``<group>-<16 hex>``: readable group prefix (for access checks) plus a digest of the row."""
    digest = hashlib.sha256(f"{group_id}\0{name}\0{content_key}".encode()).hexdigest()[:16]
    return f"{group_id}-{digest}"


# Rows and cells


def _owned_by(copy: Copy, project_id: str) -> bool:
    if project_id:
        return copy.owner == project_id
    return copy.visibility == "private"  # project not learned yet: only an owner sees private


_ABSENT = Cell(CellState.ABSENT)


def build_rows(
    group_id: int,
    columns: Iterable[RepoColumn],
    copies: Iterable[Copy],
    overlays: Mapping[tuple[str, int], Cell] | None = None,
) -> list[Row]:
    """Build the matrix rows of one group, sorted by name then content key.

    Each row starts hidden when no copy is owned by one of the group's projects; stored choices
    are laid over that by :func:`apply_hidden`.

    Args:
        group_id: The group (part of every row id).
        columns: The group's repos.
        copies: Every image of those repos.
        overlays: Cells from jobs in flight, ``{(row_id, repo_id): Cell}``, which replace the
            polled cell (queued, copying n%, verifying, failed, deleting).

    Returns:
        The rows, each with a cell for every column.
    """
    columns = list(columns)
    by_repo = {col.id: col for col in columns}
    group_projects = {col.project_id for col in columns if col.project_id}
    overlays = overlays or {}
    copies = [c for c in copies if c.repo_id in by_repo]
    keys = content_keys(copies)

    grouped: dict[tuple[str, str], list[Copy]] = defaultdict(list)
    for c in copies:
        grouped[(c.name, keys[c.pk][0])].append(c)

    rows = []
    for (name, content_key), members in sorted(grouped.items()):
        rid = row_id(group_id, name, content_key)
        held_by: dict[int, list[Copy]] = defaultdict(list)
        for c in members:
            held_by[c.repo_id].append(c)
        cells = {}
        for col in columns:
            held = held_by.get(col.id)
            if not held:
                cell = _ABSENT
            elif any(_owned_by(c, col.project_id) for c in held):
                cell = Cell(CellState.PRESENT, tuple(held))
            else:
                cell = Cell(CellState.FOREIGN, tuple(held))
            cells[col.id] = overlays.get((rid, col.id), cell) if overlays else cell
        owned = any(c.owner in group_projects or _owned_by(c, by_repo[c.repo_id].project_id) for c in members)
        rows.append(Row(rid, name, content_key, keys[members[0].pk][1], cells, owned=owned, hidden=not owned))
    return rows


def apply_hidden(rows: Iterable[Row], choices: Mapping[tuple[str, str], bool]) -> list[Row]:
    """Copies of ``rows`` with the stored Hide/Show choices, ``{(name, content_key): hidden}``.

    A choice is found under any key the row answers to, so one made before the row's key grew
    stronger still counts. Rows without a choice keep their default.
    """
    if not choices:
        return list(rows)
    result = []
    for row in rows:
        choice = next((choices[(row.name, k)] for k in (row.content_key, *sorted(row.keys))
                       if (row.name, k) in choices), None)
        result.append(row if choice is None or choice == row.hidden else dataclasses.replace(row, hidden=choice))
    return result


# Conflicts


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
            found.append((across, None, subject, subject_rows, [c for r in subject_rows for c in r.copies]))
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

    found = _variant_groups(rows, lambda r: r.name, lambda r: r.content_key,
                            ConflictKind.NAME_CONFLICT, ConflictKind.DRIFT, by_repo)
    found += _variant_groups(rows, lambda r: r.content_key, lambda r: r.name,
                             ConflictKind.SAME_CONTENT, ConflictKind.SAME_CONTENT_ACROSS, by_repo)
    for row in rows:
        for repo_id, cell in row.cells.items():
            if len(cell.copies) >= 2:
                found.append((ConflictKind.DUPLICATE, repo_id, row.name, [row], list(cell.copies)))

    conflicts = []
    for kind, repo_id, subject, members, copies in found:
        if not any(c.owner in group_projects or _owned_by(c, by_repo[c.repo_id].project_id)
                   for c in copies):
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


def apply_acknowledgements(conflicts: Iterable[Conflict], acknowledged: Mapping[str, str]) -> list[Conflict]:
    """Copies of ``conflicts`` marked acknowledged where ``{key: signature}`` still matches."""
    return [dataclasses.replace(c, acknowledged=acknowledged.get(c.key) == c.signature) for c in conflicts]


# Views of the rows


def filter_rows(rows: Iterable[Row], *, text: str = "", hidden: bool = False) -> list[Row]:
    """Rows whose name contains ``text`` (case-insensitive), from the hidden or the shown list."""
    needle = text.strip().lower()
    return [r for r in rows if r.hidden == hidden and needle in r.name.lower()]


SORT_KEYS = {
    "name": lambda r: (r.name.lower(), r.content_key),
    "size": lambda r: (r.size is None, r.size or 0, r.name.lower()),
    "age": lambda r: (r.created_at is None, str(r.created_at or ""), r.name.lower()),
}


def sort_rows(rows: list[Row], order: str = "name") -> list[Row]:
    """Sort by ``name``, ``size`` or ``age`` (oldest first); a leading ``-`` reverses."""
    reverse = order.startswith("-")
    key = SORT_KEYS.get(order.lstrip("-"), SORT_KEYS["name"])
    return sorted(rows, key=key, reverse=reverse)
