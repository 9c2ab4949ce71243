"""The image matrix's rows and cells, computed from plain records (no Django, no database).

``docs/architecture.md`` ("The matrix, in one place") is the specification; this
package is its only implementation (rows here, conflicts in ``glint.matrix.conflicts``, the
planner's rules in ``glint.matrix.planning``), so the pages, the API and the planner cannot
disagree. ``glint.jobs.matrix`` feeds it from the database.

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

Copies across kinds. A cloud that hashes no whole image (EC2: an AMI has per-block checksums
only) gives its copies no hash of its own; an ``active`` copy there is known by the
``glint_sha256`` Glint wrote on it once the copy was verified (a valid 64-hex value), and a copy
without one has no content identity. A copy Glint *converted* (qcow2 in Glance to raw in EC2)
stores other bytes than the content it stands for: its ``glint_made_from`` (``sha256:<hex>`` of
the bytes it was converted from, :func:`made_from_sha256`) names that content, and its own hashes
(of the raw bytes) are never used to cluster it. It joins the cluster whose sha256 is that value,
or its source's cluster through its provenance (below); converted copies whose source is gone
form a row keyed ``sha256:<made-from>`` of their own.

Provenance. A copy Glint made names its source (``glint_source_repo``: the repo's primary key,
``glint_source_id``: the image id there), and Glint verified while copying that the two hold the
same bytes (or, for a converted copy, that its made-from content is the source's bytes). So a
copy whose source is among the group's copies is tied to it like a shared hash would tie them,
and never against a hash both know. This is what teaches the sha256 of a Glance original that
publishes only md5 and sha512 to its row: Glint's EC2 copy of it knows nothing else.

A copy the cloud has computed no hash for (``queued``, ``saving``, killed uploads) and that has no
valid ``glint_sha256`` on an ``active`` image has no content identity: it is a row of its own,
unverifiable, never a copy source, and takes part in no content conflict.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import hashlib
import re
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
    "JobCell",
    "content_keys",
    "made_from_sha256",
    "build_rows",
    "apply_hidden",
    "lay_job_cells",
    "owned_by",
    "row_id",
    "filter_rows",
    "sort_rows",
]

#: Hash algorithms in the order they are trusted to identify content; others sort after these.
ALGORITHM_STRENGTH = ("sha256", "sha512", "sha384", "sha3_512", "sha3_256")
UNVERIFIABLE_PREFIX = "unverifiable:"
#: The one form of ``glint_made_from`` (docs/architecture.md, "Across kinds: converted copies,
#: and clouds that hash no image").
MADE_FROM = re.compile(r"sha256:([0-9a-fA-F]{64})")
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


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
    """One image in one repo, reduced to what the matrix needs (see ``models.Image``).

    ``glint_made_from`` is the property as listed (only its valid form counts:
    :func:`made_from_sha256`); ``glint_source_repo``/``glint_source_id`` are Glint's provenance
    (the source repo's primary key and the image id there).
    """

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
    glint_made_from: str = ""
    glint_source_repo: str = ""
    glint_source_id: str = ""

    @property
    def converted(self) -> bool:
        """Glint converted this copy from other bytes (its own hashes are not the row's)."""
        return bool(made_from_sha256(self.glint_made_from))


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

    @property
    def disk_formats(self) -> str:
        """What the cell's copies store (``qcow2``; ``raw`` for Glint's EC2 copy of it)."""
        return ", ".join(sorted({c.disk_format or "?" for c in self.copies}))


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
        """The size of the content the row stands for: an original's, not a conversion's."""
        sized = sorted((c for c in self.copies if c.size is not None), key=lambda c: c.converted)
        return sized[0].size if sized else None

    @property
    def formats(self) -> str:
        """The stored formats of an original copy (a converted one's only when none is left)."""
        copies = self.copies
        first = next((c for c in copies if not c.converted), copies[0] if copies else None)
        return f"{first.disk_format or '?'}/{first.container_format or '?'}" if first else ""

    @functools.cached_property
    def mixed_formats(self) -> bool:
        """Copies store different disk formats (a converted copy beside its original), so each
        cell says what it stores. Cached: every cell of the row asks, and a row's copies never
        change (laying job cells makes a new row)."""
        return len({c.disk_format for c in self.copies}) > 1

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


@dataclass(frozen=True)
class JobCell:
    """What one job says of one cell, by the row the job was planned for.

    A job names its row by the name and the content key the row had when the job was planned.
    The key may have grown stronger since (a copy's sha256 joined the cluster), so a job cell is
    matched to the row that *answers to* that key (:attr:`Row.keys`), never to a row id.

    Attributes:
        cell: The cell the job shows (queued, copying n%, verifying, failed, deleting), or None
            when the job has ended: then the polled cell speaks, and older jobs say nothing.
    """

    name: str
    content_key: str
    repo_id: int
    cell: Cell | None


# Content identity


def made_from_sha256(value: str) -> str:
    """The sha256 hex (lowercase) a ``glint_made_from`` value names, or '' when it is not of the
    one valid form ``sha256:<64 hex>`` (anything else is ignored, never half-trusted)."""
    match = MADE_FROM.fullmatch(value or "")
    return match.group(1).lower() if match else ""


def _claimed_sha256(copy: Copy) -> str:
    return (copy.glint_sha256 or copy.sdk_sha256 or "").lower()


def _evidence(copy: Copy) -> dict[str, str]:
    """Hashes known for a copy's own bytes, by algorithm. The cloud's own hashes win over claims.

    A cloud that hashed the data makes a provenance claim count beside its hashes; without any,
    only Glint's own digest on an ``active`` image does (a cloud that never hashes whole images,
    where Glint writes ``glint_sha256`` after verifying the copy): a queued image's claim proves
    nothing.
    """
    known: dict[str, str] = {}
    if not (copy.checksum or copy.os_hash_value):
        glint = (copy.glint_sha256 or "").lower()
        if copy.status == "active" and _SHA256_HEX.fullmatch(glint):
            known["sha256"] = glint
        return known
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


#: A node of the clustering: a copy's pk, or ``("made from", sha256 hex)``, the content that
#: converted copies stand for (one node per content, shared by all its converted copies).
Node = int | tuple[str, str]


class _Clusters:
    """Union-find over nodes that keeps, per cluster, one hash value per algorithm."""

    def __init__(self, evidence: dict[Node, dict[str, str]]):
        self.parent: dict[Node, Node] = {node: node for node in evidence}
        self.known = {node: dict(ev) for node, ev in evidence.items()}

    def find(self, node: Node) -> Node:
        while self.parent[node] != node:
            self.parent[node] = self.parent[self.parent[node]]
            node = self.parent[node]
        return node

    def union(self, a: Node, b: Node) -> None:
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


def _nodes(copies: list[Copy]) -> tuple[dict[int, Node], dict[Node, dict[str, str]]]:
    """The node of every copy with a content identity, and what each node knows.

    A converted copy's node is the content it was made from, never its own bytes.
    """
    node_of: dict[int, Node] = {}
    evidence: dict[Node, dict[str, str]] = {}
    for c in copies:
        own = _evidence(c)
        if not own:
            continue
        made_from = made_from_sha256(c.glint_made_from)
        if made_from:
            node_of[c.pk] = ("made from", made_from)
            evidence[node_of[c.pk]] = {"sha256": made_from}
        else:
            node_of[c.pk] = c.pk
            evidence[c.pk] = own
    return node_of, evidence


def _provenance_edges(copies: list[Copy], node_of: Mapping[int, Node]) -> list[tuple[Node, Node]]:
    """(copy, source) node pairs of the copies whose source is one of ``copies``."""
    by_image = {(str(c.repo_id), c.image_id): c.pk for c in copies if c.pk in node_of}
    edges = []
    for c in copies:
        source = by_image.get((c.glint_source_repo, c.glint_source_id))
        if c.pk in node_of and source is not None and source != c.pk:
            edges.append((node_of[c.pk], node_of[source]))
    return edges


def content_keys(copies: Iterable[Copy]) -> dict[int, tuple[str, frozenset[str]]]:
    """The content key of every copy, and all the keys its cluster answers to.

    Returns:
        ``{copy.pk: (content_key, keys)}``; an unverifiable copy gets
        ``unverifiable:<repo_id>:<image_id>`` and only that key.
    """
    copies = list(copies)
    node_of, evidence = _nodes(copies)
    clusters = _Clusters(evidence)
    # Provenance first: Glint verified each of these ties when it made the copy, which is more
    # than an md5 says; a tie that contradicts a hash both sides know is still refused.
    for copy_node, source_node in _provenance_edges(copies, node_of):
        clusters.union(copy_node, source_node)
    algorithms = sorted({algo for ev in evidence.values() for algo in ev}, key=_algo_rank)
    for algo in algorithms:  # strongest first, so md5 only joins what nothing stronger separates
        buckets: dict[str, list[Node]] = defaultdict(list)
        for node, ev in evidence.items():
            if algo in ev:
                buckets[ev[algo]].append(node)
        for members in buckets.values():
            for other in members[1:]:
                clusters.union(members[0], other)
    result: dict[int, tuple[str, frozenset[str]]] = {}
    for c in copies:
        if c.pk not in node_of:
            key = f"{UNVERIFIABLE_PREFIX}{c.repo_id}:{c.image_id}"
            result[c.pk] = (key, frozenset([key]))
            continue
        known = clusters.known[clusters.find(node_of[c.pk])]
        result[c.pk] = (_key_of(known), frozenset(f"{a}:{v}" for a, v in known.items()))
    return result


def row_id(group_id: int, name: str, content_key: str) -> str:
    """``<group>-<16 hex>``: readable group prefix (for access checks) plus a digest of the row."""
    digest = hashlib.sha256(f"{group_id}\0{name}\0{content_key}".encode()).hexdigest()[:16]
    return f"{group_id}-{digest}"


# Rows and cells


def owned_by(copy: Copy, project_id: str) -> bool:
    """Whether ``copy`` is the own image of the repo whose project is ``project_id``."""
    if project_id:
        return copy.owner == project_id
    return copy.visibility == "private"  # project not learned yet: only an owner sees private


_ABSENT = Cell(CellState.ABSENT)


def build_rows(
    group_id: int,
    columns: Iterable[RepoColumn],
    copies: Iterable[Copy],
    job_cells: Iterable[JobCell] = (),
) -> list[Row]:
    """Build the matrix rows of one group, sorted by name then content key.

    Each row starts hidden when no copy is owned by one of the group's projects; stored choices
    are laid over that by :func:`apply_hidden`.

    Args:
        group_id: The group (part of every row id).
        columns: The group's repos.
        copies: Every image of those repos.
        job_cells: What jobs say of cells, newest first (:func:`lay_job_cells`).

    Returns:
        The rows, each with a cell for every column.
    """
    columns = list(columns)
    by_repo = {col.id: col for col in columns}
    group_projects = {col.project_id for col in columns if col.project_id}
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
            elif any(owned_by(c, col.project_id) for c in held):
                cell = Cell(CellState.PRESENT, tuple(held))
            else:
                cell = Cell(CellState.FOREIGN, tuple(held))
            cells[col.id] = cell
        owned = any(
            c.owner in group_projects or owned_by(c, by_repo[c.repo_id].project_id) for c in members
        )
        rows.append(
            Row(
                rid, name, content_key, keys[members[0].pk][1], cells, owned=owned, hidden=not owned
            )
        )
    return lay_job_cells(rows, job_cells)[0] if job_cells else rows


def apply_hidden(rows: Iterable[Row], choices: Mapping[tuple[str, str], bool]) -> list[Row]:
    """Copies of ``rows`` with the stored Hide/Show choices, ``{(name, content_key): hidden}``.

    A choice is found under any key the row answers to, so one made before the row's key grew
    stronger still counts. Rows without a choice keep their default.
    """
    if not choices:
        return list(rows)
    result = []
    for row in rows:
        choice = next(
            (
                choices[(row.name, k)]
                for k in (row.content_key, *sorted(row.keys))
                if (row.name, k) in choices
            ),
            None,
        )
        result.append(
            row
            if choice is None or choice == row.hidden
            else dataclasses.replace(row, hidden=choice)
        )
    return result


def lay_job_cells(
    rows: Iterable[Row],
    job_cells: Iterable[JobCell],
) -> tuple[list[Row], dict[tuple[str, int], Cell]]:
    """Copies of ``rows`` with the cells that jobs speak for laid over the polled ones.

    A job cell applies to the row that answers to the job's (name, content key) under any of its
    keys; of several jobs for one cell, the first given (the newest) speaks. A laid cell keeps the
    copies the polled cell holds (the page still shows what is there).

    Args:
        rows: Polled rows (:func:`build_rows`, perhaps with :func:`apply_hidden`).
        job_cells: Newest first.

    Returns:
        The rows, and ``{(row id, repo id): Cell}`` of the cells jobs speak for (for the planner,
        which judges the polled cell and the job's apart).
    """
    job_cells = list(job_cells)
    # (name, content key) -> {repo id: position of the newest job cell}
    by_key: dict[tuple[str, str], dict[int, int]] = defaultdict(dict)
    for order, job_cell in enumerate(job_cells):
        by_key[(job_cell.name, job_cell.content_key)].setdefault(job_cell.repo_id, order)
    result, spoken = [], {}
    for row in rows:
        newest: dict[int, int] = {}
        for key in row.keys:
            for repo_id, order in by_key.get((row.name, key), {}).items():
                if repo_id in row.cells and order < newest.get(repo_id, len(job_cells)):
                    newest[repo_id] = order
        cells = {}
        for repo_id, order in newest.items():
            job_cell = job_cells[order].cell
            if job_cell is not None:
                cells[repo_id] = spoken[(row.id, repo_id)] = dataclasses.replace(
                    job_cell, copies=row.cells[repo_id].copies
                )
        result.append(dataclasses.replace(row, cells={**row.cells, **cells}) if cells else row)
    return result, spoken


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
