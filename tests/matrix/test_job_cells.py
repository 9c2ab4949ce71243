"""Job cells are laid on the row that answers to the job's key, on plain records (no database)."""

import hashlib

from glint.matrix.rows import (
    Cell,
    CellState,
    Copy,
    JobCell,
    RepoColumn,
    build_rows,
    lay_job_cells,
)

COLUMNS = [RepoColumn(1, "one", "p1"), RepoColumn(2, "two", "p2"), RepoColumn(3, "three", "p3")]
DATA = b"the same bytes"
SHA256 = hashlib.sha256(DATA).hexdigest()
SHA512_KEY = "sha512:" + hashlib.sha512(DATA).hexdigest()


def copy(pk, repo_id, *, glint_sha256=""):
    return Copy(
        pk=pk,
        repo_id=repo_id,
        image_id=f"img-{pk}",
        name="ubuntu",
        status="active",
        size=len(DATA),
        disk_format="qcow2",
        container_format="bare",
        checksum=hashlib.md5(DATA).hexdigest(),
        os_hash_algo="sha512",
        os_hash_value=hashlib.sha512(DATA).hexdigest(),
        glint_sha256=glint_sha256,
        sdk_sha256="",
        owner=f"p{repo_id}",
        visibility="private",
        member_status="",
    )


def test_a_job_planned_under_the_old_key_speaks_for_its_row_after_the_key_grew_stronger():
    planned = build_rows(7, COLUMNS, [copy(1, 1)])
    assert planned[0].content_key == SHA512_KEY
    # A verified copy (with Glint's sha256) lands in repo two: the row's key is now the sha256.
    (row,) = build_rows(7, COLUMNS, [copy(1, 1), copy(2, 2, glint_sha256=SHA256)])
    assert row.content_key == f"sha256:{SHA256}" and row.id != planned[0].id

    queued = Cell(CellState.QUEUED)
    (shown,), spoken = lay_job_cells([row], [JobCell("ubuntu", SHA512_KEY, 3, queued)])

    assert shown.cells[3].state == CellState.QUEUED
    assert spoken == {(row.id, 3): shown.cells[3]}
    assert shown.cells[1].state == CellState.PRESENT and row.cells[3].state == CellState.ABSENT


def test_the_newest_job_speaks_under_any_key_and_an_ended_one_silences_older_ones():
    (row,) = build_rows(7, COLUMNS, [copy(1, 1), copy(2, 2, glint_sha256=SHA256)])
    newest_first = [
        JobCell("ubuntu", f"sha256:{SHA256}", 2, None),  # ended: the polled cell speaks
        JobCell("ubuntu", SHA512_KEY, 2, Cell(CellState.DELETING)),
        JobCell("ubuntu", SHA512_KEY, 1, Cell(CellState.FAILED, reason="Glance said no")),
        JobCell("ubuntu", f"sha256:{SHA256}", 1, Cell(CellState.COPYING, progress=40)),
    ]
    (shown,), spoken = lay_job_cells([row], newest_first)
    assert shown.cells[2] is row.cells[2]
    assert shown.cells[1].state == CellState.FAILED and shown.cells[1].reason == "Glance said no"
    assert shown.cells[1].copies == row.cells[1].copies, (
        "a job cell keeps the copies the repo holds"
    )
    assert list(spoken) == [(row.id, 1)]


def test_a_job_of_another_name_or_content_lays_nothing():
    (row,) = build_rows(7, COLUMNS, [copy(1, 1)])
    others = [
        JobCell("debian", SHA512_KEY, 2, Cell(CellState.QUEUED)),
        JobCell("ubuntu", "sha256:" + "0" * 64, 2, Cell(CellState.QUEUED)),
    ]
    assert lay_job_cells([row], others) == ([row], {})
    assert build_rows(7, COLUMNS, [copy(1, 1)], others)[0].cells == row.cells
