"""``glint copy --wait`` against the live server: exit 0 when done, 1 when failed, and why."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.jobs.images import images_named, upload
from tests.live import LIVE_GROUP

pytestmark = pytest.mark.devcloud
GLINT = str(Path(sys.executable).parent / "glint")


@pytest.fixture
def cli(tmp_path, live, pki):
    env = dict(os.environ, GLINT_CLIENT_CONFIG=str(tmp_path / "client.json"))

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([GLINT, *args], env=env, capture_output=True, text=True, timeout=300)

    login = run(
        "login", "--url", live.url, "--cert", str(live.cert_file), "--ca-file", str(pki.ca_file)
    )
    assert login.returncode == 0, login.stderr
    return run


def test_copy_wait_exits_0_when_done(devcloud, api, cli, image_name):
    upload(devcloud, "devcloud-1", image_name, 256 * 1024)
    api.row(image_name)
    result = cli("copy", image_name, "--to", "devcloud-2", "--group", LIVE_GROUP, "--wait")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "devcloud-2: copied" in result.stdout
    assert [i.status for i in images_named(devcloud, image_name)["devcloud-2"]] == ["active"]

    listing = cli("jobs", "--group", LIVE_GROUP, "--state", "done")
    assert listing.returncode == 0 and image_name in listing.stdout


def test_copy_wait_exits_1_when_failed_and_says_why(devcloud, api, cli, image_name):
    image_id = upload(devcloud, "devcloud-1", image_name, 256 * 1024)
    api.row(image_name)
    stored = devcloud.store_dir("devcloud-1") / image_id
    data = bytearray(stored.read_bytes())
    data[1000] ^= 0xFF  # the source's bytes no longer match its stored hash
    stored.write_bytes(bytes(data))

    result = cli("copy", image_name, "--to", "devcloud-2", "--group", LIVE_GROUP, "--wait")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "failed" in result.stdout and "devcloud-2:" in result.stdout
    assert images_named(devcloud, image_name)["devcloud-2"] == [], "no target keeps a copy"


def test_an_ambiguous_name_is_refused_with_the_choices(devcloud, api, cli, image_name):
    upload(devcloud, "devcloud-1", image_name, 4096, seed="one")
    upload(devcloud, "devcloud-2", image_name, 4096, seed="two")
    api.row(image_name, ("devcloud-1",))
    api.row(image_name, ("devcloud-2",))
    result = cli("copy", image_name, "--to", "devcloud-3", "--group", LIVE_GROUP)
    assert result.returncode == 1
    assert "2 different images" in result.stderr and result.stderr.count(f"{image_name}@") == 2
