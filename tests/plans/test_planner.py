"""The planner's rules (issue 4 "Delete", docs/architecture.md "The matrix, in one place").

Pure: rows are built by the matrix module from plain copies, as the service builds them from the
inventory, so every verdict and its message is checked without a database or a cloud.
"""

from __future__ import annotations

import pytest

from glint.matrix.planning import Change, RepoFacts, parse_version, plan_changes
from glint.matrix.rows import Cell, CellState, Copy, RepoColumn, build_rows

GROUP = 7
A, B, C = 1, 2, 3
PROJECTS = {A: "proj-a", B: "proj-b", C: "proj-c"}
MD5 = "0" * 31 + "1"


def copy(pk, repo, name="centos", *, md5=MD5, owner=None, visibility="private", status="active"):
    return Copy(
        pk,
        repo,
        f"img-{pk}",
        name,
        status,
        1024,
        "raw",
        "bare",
        md5,
        "",
        "",
        "",
        "",
        owner if owner is not None else PROJECTS[repo],
        visibility,
        "",
    )


def matrix(*copies, hidden=()):
    columns = [RepoColumn(r, f"repo-{r}", PROJECTS[r]) for r in (A, B, C)]
    rows = build_rows(GROUP, columns, copies)
    for row in rows:
        row.hidden = row.name in hidden
    return {row.id: row for row in rows}


def facts(versions=None, unhealthy=()):
    versions = versions or {A: 1, B: 1, C: 1}
    return {
        r: RepoFacts(r, f"repo-{r}", PROJECTS[r], r not in unhealthy, versions[r])
        for r in (A, B, C)
    }


def only_row(rows):
    (row,) = rows.values()
    return row


SHOWN = {A: 1, B: 1, C: 1}


def decide(rows, *changes, repos=None, shown=SHOWN, **kwargs):
    return plan_changes(
        [Change(*c) for c in changes], rows, repos or facts(), shown=shown, **kwargs
    )


def test_copy_is_planned_from_an_own_active_copy_in_a_healthy_repo():
    rows = matrix(copy(10, A, owner="someone-else", visibility="public"), copy(11, B))
    row = only_row(rows)
    (verdict,) = decide(rows, (row.id, C, "copy"))
    assert (verdict.status, verdict.reason) == ("planned", "")
    assert verdict.source.pk == 11  # the group's own copy beats a public one of another project
    assert (verdict.name, verdict.repo_name) == ("centos", "repo-3")


def test_copy_never_reads_from_a_failing_repo_or_an_inactive_copy():
    rows = matrix(copy(10, A), copy(11, B, status="saving"))
    row = only_row(rows)
    (verdict,) = decide(rows, (row.id, C, "copy"), repos=facts(unhealthy={A}))
    assert verdict.status == "refused"
    assert verdict.reason == "not copied: no active copy in a reachable repo to copy from"


@pytest.mark.parametrize(
    "cell, status, reason",
    [
        (Cell(CellState.QUEUED), "noop", "already queued"),
        (Cell(CellState.COPYING, progress=40), "noop", "already queued"),
        (
            Cell(CellState.DELETING),
            "refused",
            "not copied: it is being deleted there; try again when that ends",
        ),
    ],
)
def test_copy_to_a_cell_a_job_works_on(cell, status, reason):
    rows = matrix(copy(10, A))
    row = only_row(rows)
    (verdict,) = decide(rows, (row.id, B, "copy"), overlays={(row.id, B): cell})
    assert (verdict.status, verdict.reason) == (status, reason)


def test_copy_to_a_repo_that_has_it_is_a_noop():
    rows = matrix(copy(10, A), copy(11, B), copy(12, C, owner="other", visibility="public"))
    row = only_row(rows)
    there, foreign = decide(rows, (row.id, B, "copy"), (row.id, C, "copy"))
    assert (there.status, there.reason) == ("noop", "already there")
    assert (foreign.status, foreign.reason) == (
        "noop",
        "already there (owned by another project, public)",
    )


def test_copy_of_hidden_or_unverifiable_rows_is_refused():
    rows = matrix(copy(10, A, "secret"), copy(11, A, "raw-upload", md5=""), hidden={"secret"})
    by_name = {row.name: row for row in rows.values()}
    hidden, unverifiable = decide(
        rows, (by_name["secret"].id, B, "copy"), (by_name["raw-upload"].id, B, "copy")
    )
    assert (
        hidden.reason == "not copied: the row is hidden (hidden rows are never changed by an apply)"
    )
    assert unverifiable.reason == (
        "not copied: the cloud has no hash for this image, so no copy of it could be verified"
    )


def test_a_row_that_is_gone_or_a_repo_outside_the_group():
    rows = matrix(copy(10, A))
    row = only_row(rows)
    gone_copy, gone_delete, elsewhere = decide(
        rows,
        ("7-00000000000000ff", B, "copy"),
        ("7-00000000000000ff", A, "delete"),
        (row.id, 99, "copy"),
    )
    assert gone_copy.reason == "not copied: it changed since your page was loaded"
    assert gone_delete.reason == "not deleted: it changed since your page was loaded"
    assert elsewhere.reason == "not copied: repo 99 is not an enabled repo of this group"


def test_delete_of_an_own_private_copy_is_planned():
    rows = matrix(copy(10, A), copy(11, B))
    row = only_row(rows)
    (verdict,) = decide(rows, (row.id, B, "delete"))
    assert verdict.status == "planned"
    assert [c.pk for c in verdict.images] == [11]


@pytest.mark.parametrize(
    "copies, kwargs, reason",
    [
        ([copy(10, A), copy(11, B)], {"protected": [11]}, "not deleted: it is protected in repo-2"),
        (
            [copy(10, A), copy(11, B, owner="stranger", visibility="shared")],
            {},
            "not deleted: repo-2's project does not own it (owner stranger)",
        ),
        (
            [copy(10, A), copy(11, B, visibility="public")],
            {},
            "not deleted: it is public and others may use it; only an admin can force this",
        ),
        (
            [copy(10, A), copy(11, B, visibility="community")],
            {},
            "not deleted: it is community and others may use it; only an admin can force this",
        ),
        ([copy(11, B)], {}, "not deleted: it is the last copy in the group"),
        (
            [copy(10, A), copy(11, B)],
            {"shown": {A: 1, B: 0, C: 1}},
            "not deleted: it changed since your page was loaded",
        ),
        (
            [copy(10, A), copy(11, B)],
            {"overlays": "incoming"},
            "not deleted: a copy to this repo is in progress",
        ),
        (
            [copy(10, A), copy(11, B)],
            {"managed": {11: "egi-basic"}},
            "not deleted: subscription egi-basic keeps it in repo-2; change the subscription's"
            " repos or unsubscribe",
        ),
    ],
)
def test_delete_refusals(copies, kwargs, reason):
    rows = matrix(*copies)
    row = only_row(rows)
    if kwargs.get("overlays") == "incoming":
        kwargs["overlays"] = {(row.id, B): Cell(CellState.VERIFYING)}
    (verdict,) = decide(rows, (row.id, B, "delete"), **kwargs)
    assert (verdict.status, verdict.reason, verdict.images) == ("refused", reason, ())


def test_an_admin_may_force_the_delete_of_a_published_image_but_not_of_a_protected_one():
    rows = matrix(copy(10, A), copy(11, B, visibility="public"), copy(12, C, visibility="public"))
    row = only_row(rows)
    public, protected = decide(
        rows, (row.id, B, "delete"), (row.id, C, "delete"), may_force=True, protected=[12]
    )
    assert public.status == "planned"
    assert protected.reason == "not deleted: it is protected in repo-3"


def test_a_subscribed_image_is_deleted_by_hand_where_its_subscription_does_not_keep_it():
    rows = matrix(copy(10, A), copy(11, B), copy(12, C))
    row = only_row(rows)
    (verdict,) = decide(rows, (row.id, C, "delete"), managed={10: "egi", 11: "egi"})
    assert verdict.status == "planned" and [c.pk for c in verdict.images] == [12]


def test_deleting_every_copy_of_a_row_is_refused_as_a_whole():
    rows = matrix(copy(10, A), copy(11, B))
    row = only_row(rows)
    verdicts = decide(rows, (row.id, A, "delete"), (row.id, B, "delete"))
    assert [v.reason for v in verdicts] == ["not deleted: it is the last copy in the group"] * 2


def test_a_copy_kept_by_a_refused_delete_still_counts_as_a_copy():
    rows = matrix(copy(10, A), copy(11, B))
    row = only_row(rows)
    a, b = decide(rows, (row.id, A, "delete"), (row.id, B, "delete"), protected=[10])
    assert a.reason == "not deleted: it is protected in repo-1"
    assert b.status == "planned"


def test_a_move_reads_from_the_copy_that_stays():
    rows = matrix(copy(10, A), copy(11, B))
    row = only_row(rows)
    move_in, move_out = decide(rows, (row.id, C, "copy"), (row.id, A, "delete"))
    assert move_out.status == "planned"
    assert (move_in.status, move_in.source.pk) == ("planned", 11)


def test_delete_noops_and_repeats():
    rows = matrix(copy(10, A), copy(11, B))
    row = only_row(rows)
    absent, deleting, again = decide(
        rows,
        (row.id, C, "delete"),
        (row.id, B, "delete"),
        (row.id, B, "delete"),
        overlays={(row.id, B): Cell(CellState.DELETING)},
    )
    assert (absent.status, absent.reason) == ("noop", "already absent")
    assert (deleting.status, deleting.reason) == ("noop", "already being deleted")
    assert (again.status, again.reason) == ("noop", "asked twice in one plan")


def test_hidden_rows_are_never_deleted():
    rows = matrix(copy(10, A), copy(11, B), hidden={"centos"})
    (verdict,) = decide(rows, (only_row(rows).id, B, "delete"))
    assert (
        verdict.reason
        == "not deleted: the row is hidden (hidden rows are never changed by an apply)"
    )


def test_parse_version():
    assert parse_version("3.12,4.7") == {3: 12, 4: 7}
    assert parse_version("") == {}
    with pytest.raises(ValueError):
        parse_version("3-12")
