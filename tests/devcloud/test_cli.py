"""``python -m devcloud`` as a person or CI runs it: real processes in a temporary directory."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import requests
import yaml

from devcloud import processes
from devcloud.core import BREAK_ENV

REPO = Path(__file__).resolve().parents[2]


def devcloud_cli(*args: str, env: dict | None = None, timeout: float = 600):
    return subprocess.run(
        [sys.executable, "-m", "devcloud", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def state_of(directory: Path) -> dict:
    return json.loads((directory / "state.json").read_text())


def refuses(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(5)
        return sock.connect_ex(("127.0.0.1", port)) != 0


def token_for(entry: dict, http: requests.Session) -> tuple[str, dict]:
    """A token and its body for a clouds.yaml entry, password or application credential."""
    auth = entry["auth"]
    if entry["auth_type"] == "password":
        identity = {
            "methods": ["password"],
            "password": {
                "user": {
                    "name": auth["username"],
                    "password": auth["password"],
                    "domain": {"name": auth["user_domain_name"]},
                }
            },
        }
        scope = {
            "project": {
                "name": auth["project_name"],
                "domain": {"name": auth["project_domain_name"]},
            }
        }
        body = {"auth": {"identity": identity, "scope": scope}}
    else:
        body = {
            "auth": {
                "identity": {
                    "methods": ["application_credential"],
                    "application_credential": {
                        "id": auth["application_credential_id"],
                        "secret": auth["application_credential_secret"],
                    },
                }
            }
        }
    response = http.post(f"{auth['auth_url']}/auth/tokens", json=body, timeout=30)
    assert response.status_code == 201, response.text
    return response.headers["X-Subject-Token"], response.json()["token"]


def image_url(token_body: dict, region: str) -> str:
    """The public image endpoint of ``region`` in a token's catalog."""
    for service in token_body["catalog"]:
        if service["type"] == "image":
            for endpoint in service["endpoints"]:
                if endpoint["region_id"] == region and endpoint["interface"] == "public":
                    return endpoint["url"]
    raise AssertionError(f"no public image endpoint for {region}")


@pytest.mark.devcloud
def test_up_stop_start_down(tmp_path):
    directory = tmp_path / "dc"
    result = devcloud_cli("up", "--clouds", "1", "--dir", str(directory))
    try:
        assert result.returncode == 0, result.stderr
        printed = yaml.safe_load(result.stdout)["clouds"]
        assert printed == yaml.safe_load((directory / "clouds.yaml").read_text())["clouds"]
        assert set(printed) == {"devcloud-1", "devcloud-1-appcred"}

        http = requests.Session()
        http.trust_env = False
        glance_port = None
        for name, entry in printed.items():
            token, body = token_for(entry, http)
            url = image_url(body, entry["region_name"])
            glance_port = int(url.rsplit(":", 1)[1])
            response = http.get(f"{url}/v2/images", headers={"X-Auth-Token": token}, timeout=30)
            assert response.status_code == 200, (name, response.text)

        glance = next(s for s in state_of(directory)["services"] if s["name"] == "devcloud-1")
        assert glance["port"] == glance_port

        result = devcloud_cli("stop", "--cloud", "devcloud-1", "--dir", str(directory))
        assert result.returncode == 0, result.stderr
        assert refuses(glance_port)
        assert not processes.alive(glance["pid"])

        result = devcloud_cli("start", "--cloud", "devcloud-1", "--dir", str(directory))
        assert result.returncode == 0, result.stderr
        restarted = next(s for s in state_of(directory)["services"] if s["name"] == "devcloud-1")
        assert restarted["port"] == glance_port and restarted["pid"] != glance["pid"]
        token, _ = token_for(printed["devcloud-1"], http)
        response = http.get(
            f"http://127.0.0.1:{glance_port}/v2/images", headers={"X-Auth-Token": token}, timeout=30
        )
        assert response.status_code == 200
    finally:
        pids = (
            [s["pid"] for s in state_of(directory)["services"] if s["pid"]]
            if (directory / "state.json").exists()
            else []
        )
        result = devcloud_cli("down", "--dir", str(directory))
    assert result.returncode == 0, result.stderr
    assert pids and not any(processes.alive(pid) for pid in pids)
    assert all(s["pid"] is None for s in state_of(directory)["services"])
    assert refuses(glance_port)
    # down is idempotent
    assert devcloud_cli("down", "--dir", str(directory)).returncode == 0


@pytest.mark.devcloud
def test_up_that_fails_halfway_leaves_no_process(tmp_path):
    directory = tmp_path / "dc"
    # The Glance fails to load its app once its Keystone runs (devcloud.core.BREAK_ENV).
    env = dict(os.environ, **{BREAK_ENV: "devcloud-1"})
    result = devcloud_cli("up", "--clouds", "1", "--dir", str(directory), env=env)
    assert result.returncode != 0
    assert "devcloud-1 exited before answering" in result.stderr
    assert "devcloud_broken_on_purpose" in result.stderr  # the tail of the Glance's log
    assert result.stdout == ""

    services = state_of(directory)["services"]
    keystone_log = Path(next(s["log_file"] for s in services if s["kind"] == "keystone"))
    assert "==== devcloud: starting" in keystone_log.read_text()  # it did run
    assert all(s["pid"] is None for s in services)
    for service in services:
        assert refuses(service["port"])
    assert not [line for line in _all_processes() if str(directory) in line]


def _all_processes() -> list[str]:
    lines = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                lines.append(
                    Path(f"/proc/{entry}/cmdline")
                    .read_bytes()
                    .replace(b"\0", b" ")
                    .decode(errors="replace")
                )
            except OSError:
                pass
    return lines


def test_up_rejects_bad_options(tmp_path):
    result = devcloud_cli("up", "--clouds", "1", "--keystones", "2", "--dir", str(tmp_path))
    assert result.returncode == 1
    assert "2 Keystones for 1 clouds" in result.stderr
    result = devcloud_cli("up", "--clouds", "2", "--sha256-cloud", "3", "--dir", str(tmp_path))
    assert result.returncode == 1 and "outside 1..2" in result.stderr


def test_commands_on_a_directory_without_devcloud(tmp_path):
    for command in (
        ["down"],
        ["stop", "--cloud", "devcloud-1"],
        ["start", "--cloud", "devcloud-1"],
    ):
        result = devcloud_cli(*command, "--dir", str(tmp_path))
        assert result.returncode == 1
        assert "no devcloud in" in result.stderr


@pytest.mark.devcloud
def test_up_ec2_alone_writes_its_endpoint_and_keys_and_down_stops_it(tmp_path):
    """``up --ec2 --clouds 0 --keystones 0``: the EC2 peer alone, on loopback, found by ec2.json."""
    up = devcloud_cli("up", "--dir", str(tmp_path), "--ec2", "--clouds", "0", "--keystones", "0")
    try:
        assert up.returncode == 0, up.stderr
        peer = json.loads((tmp_path / "ec2.json").read_text())
        assert peer["endpoint_url"].startswith("http://127.0.0.1:")
        assert (tmp_path / "ec2.json").stat().st_mode & 0o077 == 0  # keys: owner only
        [service] = state_of(tmp_path)["services"]
        assert service["kind"] == "ec2" and processes.alive(service["pid"])
    finally:
        down = devcloud_cli("down", "--dir", str(tmp_path))
    assert down.returncode == 0, down.stderr
    assert refuses(service["port"])
    assert not processes.alive(service["pid"])
