"""One matrix across kinds (issue #14): a Glance qcow2 image and the raw copy Glint converted for
EC2 are one row; conflicts still find copies made from other bytes; the planner copies from an
original. Plain records, as ``glint.jobs.matrix`` builds them from the inventory (no database).

An EC2 AMI is listed as the driver lists it: ``raw``, no cloud hash at all, Glint's tags as
properties (``glint_sha256`` of its own bytes, ``glint_made_from`` of the bytes it was converted
from, and the provenance of its source).
"""

from __future__ import annotations

import hashlib
import itertools

import pytest

from glint.matrix.conflicts import ConflictKind, find_conflicts
from glint.matrix.planning import Change, RepoFacts, plan_changes
from glint.matrix.rows import CellState, Copy, RepoColumn, apply_hidden, build_rows

GROUP = 7
GLANCE_A, GLANCE_B, EC2, EC2_WEST = 1, 2, 3, 4
PROJECTS = {GLANCE_A: "proj-a", GLANCE_B: "proj-b", EC2: "111122223333", EC2_WEST: "111122223333"}
# The EC2 columns come first, so a source chosen by repo order alone would be the converted copy.
ORDER = (EC2, GLANCE_A, GLANCE_B, EC2_WEST)
COLUMNS = [RepoColumn(r, f"repo-{r}", PROJECTS[r]) for r in ORDER]

QCOW2 = b"QFI\xfb" + b"qcow2 image of the disk" * 50
RAW = b"the raw disk" * 80  # what converting QCOW2 gives (the bytes EC2 stores)
OTHER_QCOW2 = b"QFI\xfb" + b"another build" * 40
_pks = itertools.count(100)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def glance(repo, data, *, name="ubuntu", disk_format="qcow2", glint_sha256="", **provenance):
    """An active Glance image (md5 and sha512 of ``data``, as a sha512 Glance reports)."""
    pk = next(_pks)
    return Copy(
        pk=pk,
        repo_id=repo,
        image_id=f"glance-{pk}",
        name=name,
        status="active",
        size=len(data),
        disk_format=disk_format,
        container_format="bare",
        checksum=hashlib.md5(data).hexdigest(),
        os_hash_algo="sha512",
        os_hash_value=hashlib.sha512(data).hexdigest(),
        glint_sha256=glint_sha256,
        sdk_sha256=glint_sha256,
        owner=PROJECTS[repo],
        visibility="private",
        member_status="",
        **provenance,
    )


def ami(repo, data, *, name="ubuntu", glint_sha256=None, status="active", **provenance):
    """An AMI as the EC2 driver lists it: raw, no cloud hash, Glint's tags as properties."""
    digest = sha256(data) if glint_sha256 is None else glint_sha256
    listed = glance(repo, data, name=name, disk_format="raw", glint_sha256=digest, **provenance)
    return listed._replace(
        image_id=f"ami-{listed.pk:08x}",
        status=status,
        checksum="",
        os_hash_algo="",
        os_hash_value="",
        sdk_sha256="",
    )


def source_of(copy: Copy) -> dict:
    return {"glint_source_repo": str(copy.repo_id), "glint_source_id": copy.image_id}


def converted(repo, source: Copy, source_bytes: bytes = QCOW2, **kwargs) -> Copy:
    """Glint's EC2 copy of ``source``, converted from ``source_bytes`` (contract: its own digest
    and the made-from content)."""
    return ami(
        repo,
        RAW,
        name=kwargs.pop("name", source.name),
        glint_made_from=f"sha256:{sha256(source_bytes)}",
        **{**source_of(source), **kwargs},
    )


def rows_of(*copies):
    return build_rows(GROUP, COLUMNS, copies)


def by_name(rows):
    return {row.name: row for row in rows}


# Rows


def test_a_glance_qcow2_and_its_converted_ec2_copy_are_one_row_in_both_columns():
    original = glance(GLANCE_A, QCOW2)
    copy = converted(EC2, original)
    (row,) = rows_of(original, copy)

    assert row.content_key == f"sha256:{sha256(QCOW2)}"  # the content the row stands for
    assert row.cells[GLANCE_A].copies == (original,) and row.cells[EC2].copies == (copy,)
    assert row.cells[GLANCE_A].state == row.cells[EC2].state == CellState.PRESENT
    assert row.cells[GLANCE_B].state == CellState.ABSENT
    # Each cell says what it stores; the row, what the original stores.
    assert (row.cells[GLANCE_A].disk_formats, row.cells[EC2].disk_formats) == ("qcow2", "raw")
    assert row.formats == "qcow2/bare" and row.mixed_formats
    assert row.verifiable and row.size == len(QCOW2)
    # The key grew stronger than the Glance image's own sha512: choices stored under it hold.
    old_key = f"sha512:{hashlib.sha512(QCOW2).hexdigest()}"
    assert old_key in row.keys
    (hidden,) = apply_hidden([row], {("ubuntu", old_key): True})
    assert hidden.hidden
    # The converted copy's own bytes are no key of the row.
    assert not any(sha256(RAW) in key for key in row.keys)


def test_a_converted_copy_joins_the_cluster_of_its_sha256_when_its_source_is_elsewhere():
    # The original is in another group; a Glint copy of it in Glance B knows its sha256.
    replica = glance(GLANCE_B, QCOW2, glint_sha256=sha256(QCOW2))
    copy = converted(EC2, replica, glint_source_repo="99", glint_source_id="elsewhere")
    (row,) = rows_of(replica, copy)
    assert row.content_key == f"sha256:{sha256(QCOW2)}"
    assert {r for r, cell in row.cells.items() if cell.copies} == {GLANCE_B, EC2}


def test_the_raw_copy_back_in_glance_inherits_the_made_from_and_stays_in_the_row():
    original = glance(GLANCE_A, QCOW2)
    in_ec2 = converted(EC2, original)
    # EC2 -> Glance stores the AMI's raw bytes unchanged and inherits its glint_made_from.
    back = glance(
        GLANCE_B,
        RAW,
        disk_format="raw",
        glint_sha256=sha256(RAW),
        glint_made_from=in_ec2.glint_made_from,
        **source_of(in_ec2),
    )
    (row,) = rows_of(original, in_ec2, back)
    assert row.content_key == f"sha256:{sha256(QCOW2)}"
    assert [row.cells[r].disk_formats for r in (GLANCE_A, EC2, GLANCE_B)] == ["qcow2", "raw", "raw"]


def test_copies_made_in_two_regions_from_one_image_share_its_row():
    original = glance(GLANCE_A, QCOW2)
    (row,) = rows_of(original, converted(EC2, original), converted(EC2_WEST, original))
    assert all(row.cells[r].state == CellState.PRESENT for r in (GLANCE_A, EC2, EC2_WEST))


def test_a_raw_image_and_its_unconverted_ec2_copy_are_tied_by_provenance():
    # A raw original publishes md5 and sha512, its EC2 copy only Glint's sha256: no hash is
    # shared, the copy's provenance ties them.
    original = glance(GLANCE_A, RAW, disk_format="raw")
    copy = ami(EC2, RAW, **source_of(original))
    (row,) = rows_of(original, copy)
    assert row.content_key == f"sha256:{sha256(RAW)}" and not row.mixed_formats
    assert row.cells[EC2].state == CellState.PRESENT


def test_a_row_made_only_of_converted_copies_keeps_its_key_once_the_source_is_deleted():
    original = glance(GLANCE_A, QCOW2)
    copies = [converted(EC2, original), converted(EC2_WEST, original)]
    (before,) = rows_of(original, *copies)
    (after,) = rows_of(*copies)  # the Glance original was deleted
    assert after.content_key == before.content_key == f"sha256:{sha256(QCOW2)}"
    assert after.id == before.id and after.verifiable
    assert after.formats == "raw/bare" and not after.mixed_formats
    assert find_conflicts([after], COLUMNS) == []


@pytest.mark.parametrize(
    "made_from",
    [
        "sha256:" + "g" * 64,
        "sha256:" + "a" * 63,
        "md5:" + "a" * 32,
        "a" * 64,
        " sha256:" + "a" * 64,
        "sha512:" + "a" * 128,
    ],
)
def test_a_malformed_made_from_is_ignored(made_from):
    copy = ami(EC2, RAW, glint_made_from=made_from)
    (row,) = rows_of(copy)
    assert row.content_key == f"sha256:{sha256(RAW)}"  # clustered by its own digest, as before
    assert not copy.converted


def test_an_ami_is_known_only_by_the_digest_glint_wrote_on_it_once_active():
    rows = by_name(
        rows_of(
            ami(EC2, RAW, name="glint's"),
            ami(EC2, RAW, name="not glint's", glint_sha256=""),
            ami(EC2, RAW, name="malformed", glint_sha256="not-a-digest"),
            ami(EC2, RAW, name="pending", status="pending"),
        )
    )
    assert rows["glint's"].verifiable
    assert rows["glint's"].content_key == f"sha256:{sha256(RAW)}"
    for name in ("not glint's", "malformed", "pending"):
        assert not rows[name].verifiable, name


# Conflicts


def test_a_converted_copy_and_its_source_are_no_conflict():
    original = glance(GLANCE_A, QCOW2)
    rows = rows_of(original, converted(EC2, original), converted(EC2_WEST, original))
    assert find_conflicts(rows, COLUMNS) == []


def test_a_converted_copy_is_not_the_same_content_as_an_image_of_its_own_bytes():
    # Someone uploaded the raw conversion to Glance B under another name, through Glint (so its
    # sha256 is known): its bytes are the EC2 copy's own, but the EC2 copy stands for the qcow2,
    # so no "same content" pair is made.
    original = glance(GLANCE_A, QCOW2)
    raw_upload = glance(
        GLANCE_B, RAW, name="ubuntu-raw", disk_format="raw", glint_sha256=sha256(RAW)
    )
    rows = rows_of(original, converted(EC2, original), raw_upload)
    assert sorted(r.name for r in rows) == ["ubuntu", "ubuntu-raw"]
    assert find_conflicts(rows, COLUMNS) == []


def test_a_name_whose_ec2_copy_was_made_from_other_bytes_is_drift():
    original = glance(GLANCE_A, QCOW2)
    old_build = glance(GLANCE_B, OTHER_QCOW2, name="old")  # the EC2 copy was made of this one
    stale = converted(EC2, old_build, OTHER_QCOW2, name="ubuntu")
    rows = rows_of(original, stale)
    (conflict,) = [c for c in find_conflicts(rows, COLUMNS) if c.subject == "ubuntu"]
    assert conflict.kind == ConflictKind.DRIFT
    assert {c.pk for c in conflict.copies} == {original.pk, stale.pk}
    keys = {r.content_key for r in conflict.rows}
    assert keys == {f"sha512:{hashlib.sha512(QCOW2).hexdigest()}", f"sha256:{sha256(OTHER_QCOW2)}"}


def test_provenance_never_ties_a_copy_made_from_other_bytes_than_its_source_holds():
    # The source knows its own sha256 (Glint uploaded it); the EC2 copy names it as its source
    # but was made from other bytes: a contradiction, so two rows of one name, drift.
    original = glance(GLANCE_A, QCOW2, glint_sha256=sha256(QCOW2))
    stale = converted(EC2, original, OTHER_QCOW2)
    rows = rows_of(original, stale)
    assert len(rows) == 2
    assert [c.kind for c in find_conflicts(rows, COLUMNS)] == [ConflictKind.DRIFT]


def test_a_converted_copy_under_another_name_is_the_same_content_under_two_names():
    # A person renamed the EC2 copy: one content under two names, as for a renamed Glance copy.
    original = glance(GLANCE_A, QCOW2)
    rows = rows_of(original, converted(EC2, original, name="ubuntu-renamed"))
    (conflict,) = find_conflicts(rows, COLUMNS)
    assert conflict.kind == ConflictKind.SAME_CONTENT_ACROSS
    assert conflict.subject == f"sha256:{sha256(QCOW2)}"


# Planning


def repo_facts():
    return {r: RepoFacts(r, f"repo-{r}", PROJECTS[r], True, 1) for r in ORDER}


def plan(rows, *changes):
    return plan_changes(
        [Change(*c) for c in changes],
        {row.id: row for row in rows},
        repo_facts(),
        shown={r: 1 for r in ORDER},
    )


def test_ticking_an_ec2_cell_of_a_qcow2_row_copies_from_the_glance_original():
    original = glance(GLANCE_A, QCOW2)
    (row,) = rows_of(original, converted(EC2, original))  # EC2 comes first in repo order
    west, glance_b = plan([row], (row.id, EC2_WEST, "copy"), (row.id, GLANCE_B, "copy"))
    assert (west.status, west.source) == ("planned", original)
    assert (glance_b.status, glance_b.source) == ("planned", original)
    assert west.content_key == f"sha256:{sha256(QCOW2)}"


def test_ticking_a_glance_cell_of_a_row_only_in_ec2_copies_from_ec2():
    original = glance(GLANCE_A, QCOW2)
    in_ec2 = converted(EC2, original)
    raw_in_ec2 = ami(EC2, RAW, name="raw-only")  # uploaded to EC2 by Glint: its digest alone
    rows = rows_of(in_ec2, raw_in_ec2)  # the Glance original was deleted
    rows_by_name = by_name(rows)
    verdicts = plan(
        rows,
        (rows_by_name["ubuntu"].id, GLANCE_A, "copy"),
        (rows_by_name["raw-only"].id, GLANCE_B, "copy"),
    )
    assert [(v.status, v.source) for v in verdicts] == [
        ("planned", in_ec2),
        ("planned", raw_in_ec2),
    ]


def test_an_ami_glint_did_not_write_is_no_copy_source():
    (row,) = rows_of(ami(EC2, RAW, name="foreign-made", glint_sha256=""))
    (verdict,) = plan([row], (row.id, GLANCE_A, "copy"))
    assert verdict.status == "refused" and "no hash" in verdict.reason
