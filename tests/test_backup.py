"""``glint backup`` then ``glint restore`` into a fresh data directory gives the same people,
groups, repos (their credentials still decrypt), jobs and audit trail, on SQLite and on
PostgreSQL; a restore over a live database is refused unless forced."""

from __future__ import annotations

import json
import os

import pytest

from tests.live import GLINT, run_glint
from tests.postgres import fresh_databases

pytestmark = pytest.mark.devcloud

DJANGO_ADMIN = os.path.join(os.path.dirname(GLINT), "django-admin")
#: What the test compares between the original and the restored Glint (a digest of each secret,
#: never the secret).
SNAPSHOT = """
import hashlib, json
from glint.accounts.models import Group, User
from glint.audit.models import AuditRecord
from glint.jobs.models import Job
from glint.repos.models import Repo
def secret(repo):
    both = f"{repo.password}:{repo.application_credential_secret}"
    return hashlib.sha256(both.encode()).hexdigest()
print(json.dumps({
    "people": sorted(u.dn for u in User.objects.all()),
    "groups": sorted(g.name for g in Group.objects.all()),
    "repos": sorted((r.name, secret(r)) for r in Repo.objects.all()),
    "secrets": [bool(r.password or r.application_credential_secret) for r in Repo.objects.all()],
    "jobs": sorted((j.kind, j.image_name, j.state) for j in Job.objects.all()),
    "audit": sorted((a.action, a.user_dn) for a in AuditRecord.objects.all()),
}))
"""
ADD_JOB = """
from glint.accounts.models import Group
from glint.jobs.models import Job
group = Group.objects.get(name="backed")
Job.objects.create(kind="copy", group=group, image_name="centos", state="done")
"""


@pytest.fixture(params=["sqlite", "postgresql"])
def database_urls(request):
    """``(original, restored)`` database URLs: None (SQLite in the data directory), or two fresh
    PostgreSQL databases."""
    if request.param == "sqlite":
        yield None, None
        return
    with fresh_databases(2) as (original, restored):
        yield original, restored


def _run(data_dir, database_url, *args, program=GLINT):
    extra = {"GLINT_DATABASE_URL": database_url} if database_url else {}
    return run_glint(data_dir, *args, program=program, **extra)


def _snapshot(data_dir, database_url) -> dict:
    """What SNAPSHOT prints (its last line: the shell may say more before it)."""
    out = _ok(_run(data_dir, database_url, "shell", "-c", SNAPSHOT, program=DJANGO_ADMIN)).stdout
    return json.loads(out.strip().splitlines()[-1])


def _ok(result):
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def test_backup_then_restore_gives_the_same_glint(devcloud, tmp_path, database_urls):
    original, restored = tmp_path / "original", tmp_path / "restored"
    first_db, second_db = database_urls
    for args in (
        ("migrate",),
        ("group", "add", "backed"),
        ("user", "add", "--dn", "/C=CA/O=Glint Test Grid/CN=Kept Person", "--group", "backed"),
        ("repo", "import", str(devcloud.clouds_yaml), "--group", "backed", "--cloud", "devcloud-1"),
    ):
        _ok(_run(original, first_db, *args))
    _ok(_run(original, first_db, "shell", "-c", ADD_JOB, program=DJANGO_ADMIN))
    before = _snapshot(original, first_db)
    assert before["repos"] and before["jobs"] and before["audit"] and all(before["secrets"])

    backup = tmp_path / "backup"
    made = _ok(_run(original, first_db, "backup", str(backup)))
    assert "rows" in made.stdout and oct(backup.stat().st_mode & 0o777) == "0o700"
    assert {p.name for p in backup.iterdir()} == {
        "manifest.json", "database.json", "secret_key", "credential_keys",
    }  # fmt: skip
    assert oct((backup / "credential_keys").stat().st_mode & 0o777) == "0o600"
    again = _run(original, first_db, "backup", str(backup))
    assert again.returncode == 1 and "not empty" in again.stderr

    _ok(_run(restored, second_db, "restore", str(backup)))
    after = _snapshot(restored, second_db)
    assert after == before, "the same people, groups, repos (credentials decrypted), jobs, audit"
    assert (restored / "credential_keys").read_text() == (original / "credential_keys").read_text()

    # New rows get new ids: the restored database's sequences are past the backup's rows.
    _ok(_run(restored, second_db, "group", "add", "after-restore"))

    refused = _run(restored, second_db, "restore", str(backup))
    assert refused.returncode == 1 and "refuses to overwrite a live Glint" in refused.stderr
    _ok(_run(restored, second_db, "restore", "--force", str(backup)))
    forced = _snapshot(restored, second_db)
    assert forced == before, "--force replaced what was there (the group added after is gone)"


def test_restore_refuses_what_is_not_a_backup(tmp_path):
    (tmp_path / "junk").mkdir()
    result = _run(tmp_path / "data", None, "restore", str(tmp_path / "junk"))
    assert result.returncode == 1 and "is not a Glint backup" in result.stderr


def _truncated(objects: list) -> str:
    return json.dumps(objects)[: len(json.dumps(objects)) // 2]


def _bad_last_row(objects: list) -> str:
    # Every row before it loads: only the transaction keeps them from staying, half a backup.
    return json.dumps([*objects, {"model": "accounts.nosuchmodel", "pk": 1, "fields": {}}])


def _missing_row(objects: list) -> str:
    # Loads without an error; only the manifest's row counts tell.
    return json.dumps(objects[:-1])


@pytest.mark.parametrize("corrupt", [_truncated, _bad_last_row, _missing_row])
def test_a_restore_that_fails_leaves_the_database_as_it_was(tmp_path, database_urls, corrupt):
    data, (database, _unused) = tmp_path / "data", database_urls
    for args in (
        ("migrate",),
        ("group", "add", "kept"),
        ("user", "add", "--dn", "/C=CA/O=Glint Test Grid/CN=Kept Person", "--group", "kept"),
        ("backup", str(tmp_path / "backup")),
        ("group", "add", "added-after-the-backup"),
    ):
        _ok(_run(data, database, *args))
    _ok(
        _run(data, database, "shell", "-c", ADD_JOB.replace("backed", "kept"), program=DJANGO_ADMIN)
    )
    before = _snapshot(data, database)
    dump = tmp_path / "backup" / "database.json"
    dump.write_text(corrupt(json.loads(dump.read_text())))

    failed = _run(data, database, "restore", "--force", str(tmp_path / "backup"))
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "restore failed, the database is as it was" in failed.stderr, failed.stderr
    assert "Traceback" not in failed.stderr
    assert _snapshot(data, database) == before, "every row is still there, nothing half-loaded"
