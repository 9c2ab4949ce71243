"""Row identity, cells, hidden defaults and conflict groups, on plain records (no database)."""

import hashlib
import itertools
from types import SimpleNamespace

from glint.jobs.matrix import GroupMatrix
from glint.matrix.conflicts import ConflictKind, apply_acknowledgements, find_conflicts
from glint.matrix.rows import (
    CellState,
    Copy,
    RepoColumn,
    apply_hidden,
    build_rows,
    sort_rows,
)

OURS = {1: "p1", 2: "p2", 3: "p3"}
COLUMNS = [RepoColumn(repo_id, f"repo{repo_id}", project) for repo_id, project in OURS.items()]
_pks = itertools.count(1)


def copy(
    repo_id,
    name,
    data: bytes | None,
    *,
    algo="sha512",
    owner=None,
    visibility="private",
    glint_sha256="",
    image_id=None,
    status="active",
):
    """A copy as a Glance on ``algo`` would report ``data`` (None: no data uploaded)."""
    pk = next(_pks)
    hashed = data is not None
    return Copy(
        pk=pk,
        repo_id=repo_id,
        image_id=image_id or f"img-{pk}",
        name=name,
        status=status if hashed else "queued",
        size=len(data) if hashed else None,
        disk_format="raw",
        container_format="bare",
        checksum=hashlib.md5(data).hexdigest() if hashed else "",
        os_hash_algo=algo if hashed else "",
        os_hash_value=hashlib.new(algo, data).hexdigest() if hashed else "",
        glint_sha256=glint_sha256,
        sdk_sha256="",
        owner=owner or OURS[repo_id],
        visibility=visibility,
        member_status="",
    )


def rows_of(*copies, choices=None):
    return apply_hidden(build_rows(7, COLUMNS, copies), choices or {})


def kinds(conflicts):
    return sorted((c.kind, c.repo_id) for c in conflicts)


def test_same_bytes_on_a_sha512_and_a_sha256_cloud_are_one_row_tied_by_md5():
    rows = rows_of(copy(1, "ubuntu", b"A" * 100), copy(3, "ubuntu", b"A" * 100, algo="sha256"))
    assert len(rows) == 1
    row = rows[0]
    assert row.content_key == "sha256:" + hashlib.sha256(b"A" * 100).hexdigest()
    assert [row.cells[i].state for i in (1, 2, 3)] == [
        CellState.PRESENT,
        CellState.ABSENT,
        CellState.PRESENT,
    ]
    assert "sha512:" + hashlib.sha512(b"A" * 100).hexdigest() in row.keys


def test_glint_provenance_ties_copies_that_share_no_cloud_hash():
    sha = hashlib.sha256(b"data").hexdigest()
    a = copy(1, "img", b"data", glint_sha256=sha)._replace(checksum="")  # a cloud without md5
    b = copy(2, "img", b"data", algo="sha384", glint_sha256=sha)._replace(checksum="")
    assert len(rows_of(a, b)) == 1


def test_md5_agreement_does_not_merge_contents_whose_stronger_hashes_differ():
    a = copy(1, "img", b"one")
    b = copy(2, "img", b"two")._replace(checksum=a.checksum)  # an md5 collision
    rows = rows_of(a, b)
    assert len(rows) == 2
    assert kinds(find_conflicts(rows, COLUMNS)) == [(ConflictKind.DRIFT, None)]


def test_a_claim_without_a_cloud_hash_is_unverifiable_and_its_own_row():
    sha = hashlib.sha256(b"x").hexdigest()
    uploading = copy(2, "img", None, glint_sha256=sha)
    rows = rows_of(copy(1, "img", b"x", glint_sha256=sha), uploading)
    assert len(rows) == 2
    unverifiable = next(r for r in rows if not r.verifiable)
    assert unverifiable.cells[2].copies == (uploading,) and not unverifiable.short_hash
    assert find_conflicts(rows, COLUMNS) == []


def test_foreign_copies_make_foreign_cells_and_rows_start_hidden():
    public = copy(1, "centos", b"c", owner="admin-project", visibility="public")
    rows = rows_of(public, copy(2, "mine", b"m"))
    by_name = {r.name: r for r in rows}
    assert by_name["centos"].cells[1].state == CellState.FOREIGN
    assert by_name["centos"].hidden and not by_name["centos"].owned
    assert not by_name["mine"].hidden


def test_a_stored_choice_wins_and_is_found_under_an_older_key():
    public = copy(1, "centos", b"c", owner="admin-project", visibility="public")
    old_key = "sha512:" + hashlib.sha512(b"c").hexdigest()
    assert not rows_of(public, choices={("centos", old_key): False})[0].hidden
    mine = copy(2, "mine", b"m")
    (row,) = rows_of(mine, choices={("mine", rows_of(mine)[0].content_key): True})
    assert row.hidden


def test_row_ids_are_stable_and_name_the_group():
    a = rows_of(copy(1, "img", b"same"))[0]
    b = rows_of(copy(2, "img", b"same"))[0]
    assert a.id == b.id and a.id.startswith("7-")


def test_conflicts_of_every_type_within_and_across_repos():
    rows = rows_of(
        copy(1, "drift", b"d1"),
        copy(2, "drift", b"d2"),  # type 1 across
        copy(2, "clash", b"c1"),
        copy(2, "clash", b"c2"),  # type 1 within repo 2
        copy(1, "dup", b"u"),
        copy(1, "dup", b"u"),  # type 2 within repo 1
        copy(3, "z1", b"z", algo="sha256"),
        copy(3, "z2", b"z", algo="sha256"),  # type 3 within repo 3
        copy(1, "w1", b"w"),
        copy(2, "w2", b"w"),  # type 3 across
        copy(1, "replica", b"r"),
        copy(2, "replica", b"r"),
        copy(3, "replica", b"r", algo="sha256"),
    )
    conflicts = find_conflicts(rows, COLUMNS)
    assert kinds(conflicts) == sorted(
        [
            (ConflictKind.DRIFT, None),
            (ConflictKind.NAME_CONFLICT, 2),
            (ConflictKind.DUPLICATE, 1),
            (ConflictKind.SAME_CONTENT, 3),
            (ConflictKind.SAME_CONTENT_ACROSS, None),
        ]
    )
    duplicate = next(c for c in conflicts if c.kind == ConflictKind.DUPLICATE)
    assert len(duplicate.copies) == 2 and duplicate.subject == "dup"
    assert next(r for r in rows if r.name == "replica").conflict_types == set()


def test_a_name_in_several_variants_in_one_repo_is_not_also_drift():
    rows = rows_of(copy(1, "n", b"1"), copy(1, "n", b"2"), copy(2, "n", b"1"))
    assert kinds(find_conflicts(rows, COLUMNS)) == [(ConflictKind.NAME_CONFLICT, 1)]


def test_other_projects_clashes_are_not_the_groups_conflicts():
    rows = rows_of(
        copy(1, "n", b"1", owner="x", visibility="public"),
        copy(1, "n", b"2", owner="x", visibility="public"),
    )
    assert find_conflicts(rows, COLUMNS) == []


def test_an_acknowledgement_holds_until_the_members_change():
    pair = [copy(1, "dup", b"u"), copy(1, "dup", b"u")]
    (conflict,) = find_conflicts(rows_of(*pair), COLUMNS)
    acked = {conflict.key: conflict.signature}
    assert apply_acknowledgements(find_conflicts(rows_of(*pair), COLUMNS), acked)[0].acknowledged
    grown = apply_acknowledgements(
        find_conflicts(rows_of(*pair, copy(1, "dup", b"u")), COLUMNS), acked
    )[0]
    assert grown.key == conflict.key and not grown.acknowledged


def test_sorting_by_size_and_name():
    rows = rows_of(copy(1, "b", b"xx"), copy(1, "a", b"xxx"), copy(1, "c", b"x"))
    assert [r.name for r in sort_rows(rows, "size")] == ["c", "b", "a"]
    assert [r.name for r in sort_rows(rows, "-name")] == ["c", "b", "a"]


def test_a_row_keeps_answering_to_its_id_after_a_copy_makes_its_key_stronger():
    """Glint's copy adds sha256 provenance, which changes the row's key and so its id: a link or API
    id taken before the copy must still find the row (a page open during the copy, a script)."""
    first = copy(1, "img", b"data")
    before = rows_of(first)[0]
    after = rows_of(
        first, copy(2, "img", b"data", glint_sha256=hashlib.sha256(b"data").hexdigest())
    )[0]
    assert after.id != before.id
    matrix = GroupMatrix(
        group=SimpleNamespace(pk=7), repos=[], rows=[after], conflicts=[], versions={}
    )
    assert matrix.row(before.id) is after
    assert matrix.row(after.id) is after
    assert matrix.row(rows_of(copy(1, "img", b"other"))[0].id) is None
