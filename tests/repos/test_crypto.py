"""Credentials at rest: ciphertext in the column, plain text only in a connection, key rotation."""

import pytest
from cryptography.fernet import Fernet
from django.core import checks
from django.db import connection, models

from glint.repos import keys
from glint.repos.crypto import CredentialKeyError, SealedSecret, read_key_file
from glint.repos.fields import EncryptedTextField
from glint.repos.models import Repo
from tests.repos.helpers import make_repo

SECRET = "s3cret-äöü-password"


def raw_passwords() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT password FROM {Repo._meta.db_table} ORDER BY id")
        return [row[0] for row in cursor.fetchall()]


def test_column_holds_ciphertext_and_connection_decrypts(group_a):
    repo = make_repo(group_a, password=SECRET)
    [stored] = raw_passwords()
    assert SECRET not in stored and stored.startswith("gAAAA")  # a Fernet token
    loaded = Repo.objects.get(pk=repo.pk)
    assert isinstance(loaded.password, SealedSecret)
    assert loaded.connection().password == SECRET


def test_secret_never_in_repr_or_str(group_a):
    repo = make_repo(group_a, password=SECRET)
    repo.password = SECRET  # even a freshly typed value is sealed at once
    for text in (
        repr(repo),
        str(repo),
        repr(repo.password),
        str(repo.password),
        repr(repo.__dict__),
        repr(repo.connection()),
    ):
        assert SECRET not in text


def test_empty_secret_means_not_set(group_a):
    repo = make_repo(
        group_a,
        name="appcred",
        auth_type="application_credential",
        password="",
        application_credential_id="abc",
        application_credential_secret=SECRET,
    )
    loaded = Repo.objects.get(pk=repo.pk)
    assert not loaded.password_set and loaded.application_credential_secret_set
    assert raw_passwords() == [""]


def test_field_refuses_unique_and_index():
    class Bad(models.Model):
        secret = EncryptedTextField(unique=True)

        class Meta:
            app_label = "repos"

    errors = Bad._meta.get_field("secret").check()
    assert [e.id for e in errors if isinstance(e, checks.Error)] == ["repos.E001"]


@pytest.fixture
def own_key_file(settings, tmp_path):
    """A data directory of this test's own, so rotating keys leaves other tests' key file alone."""
    settings.DATA_DIR = tmp_path
    keys.write_key_file(list(settings.GLINT_CREDENTIAL_KEYS), tmp_path / "credential_keys")


def test_rotation_reencrypts_and_dropping_old_keys_keeps_secrets_readable(group_a, own_key_file):
    first = make_repo(group_a, name="one", password=SECRET)
    make_repo(group_a, name="two", password="other")
    before = raw_passwords()
    old_keys = read_key_file()

    dry = keys.rotate(dry_run=True)
    assert (dry.secrets, dry.reencrypted) == (2, 2)
    assert raw_passwords() == before and read_key_file() == old_keys

    report = keys.rotate()
    assert report.reencrypted == 2
    new_keys = read_key_file()
    assert new_keys[1:] == old_keys and len(new_keys) == len(old_keys) + 1
    after = raw_passwords()
    assert all(a != b for a, b in zip(after, before))
    assert Fernet(new_keys[0].encode()).decrypt(after[0].encode()).decode() == SECRET

    again = keys.rotate(drop_old=True)  # a rerun is safe; then the old keys go
    assert again.reencrypted == 2 and again.dropped_old_keys == len(new_keys)
    [only_key] = read_key_file()
    for token in raw_passwords():
        Fernet(only_key.encode()).decrypt(token.encode())
    # This process started with the old keys only; it finds the new one in the key file.
    assert Repo.objects.get(pk=first.pk).connection().password == SECRET


def test_a_replaced_key_file_is_reported_not_crashed(group_a, settings):
    repo = make_repo(group_a, password=SECRET)
    settings.GLINT_CREDENTIAL_KEYS = [Fernet.generate_key().decode()]
    settings.DATA_DIR = settings.DATA_DIR / "elsewhere"
    with pytest.raises(CredentialKeyError, match="cannot be decrypted"):
        Repo.objects.get(pk=repo.pk).connection()


def test_keys_rotate_command(group_a, own_key_file):
    from click.testing import CliRunner

    from glint.cli.main import cli

    make_repo(group_a, password=SECRET)
    runner = CliRunner()
    dry = runner.invoke(cli, ["keys", "rotate", "--dry-run"])
    assert dry.exit_code == 0 and "would re-encrypt 1 of 1 secret(s)" in dry.output
    assert len(read_key_file()) == 1
    done = runner.invoke(cli, ["keys", "rotate", "--drop-old"])
    assert (
        done.exit_code == 0
        and "re-encrypted 1 of 1 secret(s)" in done.output
        and "keys: 1 -> 1" in done.output
    )
    assert Repo.objects.get().connection().password == SECRET
    assert SECRET not in dry.output + done.output
