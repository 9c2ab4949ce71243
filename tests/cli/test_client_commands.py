"""The command line as an API client, against the real ``glint serve`` with devcloud repos."""

from __future__ import annotations

import os
import shutil

import pytest

from tests.cli.helpers import login
from tests.live import LIVE_GROUP

pytestmark = pytest.mark.devcloud


def test_login_then_whoami_repos_images_conflicts(cli, live_glint, pki):
    result = login(cli, live_glint, pki)
    assert result.returncode == 0, result.stderr
    assert "logged in" in result.stdout and "CN=Browser Admin" in result.stdout

    whoami = cli("whoami")
    assert (
        whoami.returncode == 0
        and "(admin)" in whoami.stdout
        and f"{LIVE_GROUP}: manager" in whoami.stdout
    )

    repos = cli("repos", "--group", LIVE_GROUP)
    assert repos.returncode == 0, repos.stderr
    assert "devcloud-1" in repos.stdout and "devcloud-2" in repos.stdout

    images = cli("images", "--group", LIVE_GROUP)
    assert images.returncode == 0, images.stderr
    assert images.stdout.splitlines()[0].split()[:2] == ["NAME", "CONTENT"]

    assert cli("conflicts", "--group", LIVE_GROUP).returncode == 0
    assert cli("repos", "--json").stdout.lstrip().startswith("[")


def test_unknown_group_is_a_clear_error(cli, live_glint, pki):
    assert login(cli, live_glint, pki).returncode == 0
    result = cli("images", "--group", "no-such-group")
    assert result.returncode != 0
    assert "no group named 'no-such-group'" in result.stderr


def test_commands_before_login_say_what_to_do(cli):
    result = cli("whoami")
    assert result.returncode != 0
    assert "not logged in" in result.stderr


def test_login_with_the_wrong_ca_is_refused_clearly(cli, live_glint, tmp_path):
    from tests.pki import make_ca, write_pem

    other_ca = write_pem(tmp_path / "other-ca.pem", make_ca("Some Other CA").cert)
    result = cli(
        "login",
        "--url",
        live_glint.url,
        "--cert",
        str(live_glint.cert_file),
        "--ca-file",
        str(other_ca),
    )
    assert result.returncode != 0
    assert "certificate verify failed" in result.stderr
    assert not (tmp_path / "client.json").exists()


def test_unregistered_certificate_is_told_why(cli, live_glint, pki):
    _cert, _key, stranger = pki.person("CLI Stranger")
    result = cli(
        "login", "--url", live_glint.url, "--cert", str(stranger), "--ca-file", str(pki.ca_file)
    )
    assert result.returncode != 0
    assert "an admin has not added you yet" in result.stderr


def test_login_with_relative_paths_works_from_any_directory(cli, live_glint, pki, tmp_path):
    local = tmp_path / "here"
    local.mkdir()
    shutil.copy(live_glint.cert_file, local / "me.pem")
    shutil.copy(pki.ca_file, local / "ca.pem")
    result = cli(
        "login", "--url", live_glint.url, "--cert", "me.pem", "--ca-file", "ca.pem", cwd=local
    )
    assert result.returncode == 0, result.stderr
    assert cli("whoami", cwd=tmp_path).returncode == 0  # elsewhere: the saved paths are absolute

    (local / "ca.pem").unlink()
    gone = cli("whoami")
    assert gone.returncode != 0
    assert "Traceback" not in gone.stderr
    assert str(local / "ca.pem") in gone.stderr and "Log in again" in gone.stderr


def test_no_raw_control_character_from_a_cloud_reaches_the_terminal(cli, live_glint, pki, devcloud):
    """A cloud accepts any image name; ``glint images`` shows a CR/LF, an escape sequence or a
    bidirectional override escaped, so a name cannot forge a table row or rewrite the screen."""
    from tests.jobs.helpers import LiveAPI
    from tests.jobs.images import delete_named, upload

    name = f"evil-{os.urandom(4).hex()}\r\nforged-row  ✓  ✓\x1b[2J\u202egpj.exe\x85"
    upload(devcloud, "devcloud-1", name, 4096)
    try:
        LiveAPI(live_glint, pki).row(name)
        assert login(cli, live_glint, pki).returncode == 0
        for command in (("images", "--group", LIVE_GROUP), ("jobs", "--group", LIVE_GROUP)):
            result = cli(*command)
            assert result.returncode == 0, result.stderr
            for raw in ("\r", "\x1b", "\u202e", "\x85"):
                assert raw not in result.stdout, (command, raw)
        images = cli("images", "--group", LIVE_GROUP, "--name", name[:12]).stdout
        assert "\\r\\nforged-row  ✓  ✓\\x1b[2J\\u202egpj.exe\\x85" in images
        assert len(images.splitlines()) == 2, "the header and one row, no forged one"
    finally:
        delete_named(devcloud, name)
