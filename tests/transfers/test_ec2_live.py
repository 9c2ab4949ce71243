"""Issue #14 end to end through the real ``glint serve``: a qcow2 image in Glance copied to an EC2
repo (converted to raw on the way), then from EC2 to a second Glance; and one upload to two
OpenStack repos and an EC2 repo at once. Every step is checked in the clouds themselves (bytes
and properties) and in the matrix the API shows.

Group ``browser`` holds Glance A (devcloud-1), Glance B (devcloud-2) and the EC2 peer. The copy
back from EC2 is planned in group ``browser-other``, which holds only the EC2 repo and Glance B,
so that the EC2 copy is the one source the planner can pick.

The one-row assertions, and the planned copy out of EC2, depend on the matrix keying EC2 copies
by ``glint_sha256`` / ``glint_made_from`` (the contract shared with the matrix-kinds work).
"""

from __future__ import annotations

import hashlib
import time

import pytest
import requests

from glint.clouds import get_driver
from tests.ec2_peer import peer_connection
from tests.jobs.helpers import JOB_SETTINGS, LiveAPI, fresh_image_name, target
from tests.jobs.images import driver_for
from tests.live import (
    DN_PREFIX,
    LIVE_ADMIN_CN,
    LIVE_GROUP,
    LIVE_OTHER_GROUP,
    run_glint,
    start_live_glint,
)
from tests.replication.helpers import small_disk

pytestmark = pytest.mark.devcloud

GLANCE_A, GLANCE_B, EC2 = "devcloud-1", "devcloud-2", "ec2"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def live(devcloud, devcloud_ec2, pki, tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("ec2-glint")
    servers = start_live_glint(devcloud, pki, data_dir, clouds=(GLANCE_A, GLANCE_B), **JOB_SETTINGS)
    server = next(servers)
    peer = devcloud_ec2.ec2_peer
    keys = peer.users["glint"]
    for group in (LIVE_GROUP, LIVE_OTHER_GROUP):
        added = run_glint(
            data_dir,
            *("repo", "import", "--group", group, "--name", EC2, "--region", peer.region),
            *("--access-key-id", keys.access_key_id, "--endpoint-url", peer.endpoint_url),
            AWS_SECRET_ACCESS_KEY=keys.secret_access_key,
        )
        assert added.returncode == 0, added.stderr
    for args in (
        ("repo", "import", str(devcloud.clouds_yaml), "--group", LIVE_OTHER_GROUP)
        + ("--cloud", GLANCE_B),
        ("user", "add", "--dn", f"{DN_PREFIX}{LIVE_ADMIN_CN}", "--group", LIVE_OTHER_GROUP)
        + ("--role", "manager"),
    ):
        result = run_glint(data_dir, *args)
        assert result.returncode == 0, result.stderr
    yield server
    servers.close()


@pytest.fixture
def ec2(devcloud_ec2):
    with get_driver(peer_connection(devcloud_ec2.ec2_peer)) as driver:
        yield driver


@pytest.fixture
def image_name(devcloud, ec2):
    """A fresh name; its images are deleted from every cloud afterwards, EC2 included."""
    names = fresh_image_name(devcloud, "ec2live")
    name = next(names)
    yield name
    for image in ec2.list_images():
        if image.name == name:
            ec2.delete(image.id)
    next(names, None)


def _bytes(driver, image_id: str) -> bytes:
    with driver.open_read(image_id) as reader:
        return b"".join(reader)


def _only(driver, name: str):
    (image,) = [i for i in driver.list_images() if i.name == name]
    return image


def _done(api: LiveAPI, job_id: int) -> dict:
    job = api.wait(job_id, lambda j: j["state"] in ("done", "failed"), what="finished")
    assert job["state"] == "done", job
    return job


def _one_row_in(api: LiveAPI, name: str, repos: tuple[str, ...]) -> dict:
    """The one matrix row called ``name``, once it holds a copy in each of ``repos``."""
    api.post(f"groups/{api.group}/refresh/")
    wanted = {api.repos[r] for r in repos}
    deadline = time.monotonic() + 60
    while True:
        rows = [
            r
            for r in api.get("images/", group=api.group, q=name, hidden="all")["results"]
            if r["name"] == name
        ]
        held = [{c["repo"] for c in r["cells"] if c["copies"]} for r in rows]
        if len(rows) == 1 and wanted <= held[0] or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert len(rows) == 1 and wanted <= held[0], f"{name}: rows {rows}"
    return rows[0]


def test_a_qcow2_image_goes_to_ec2_as_raw_and_back_to_another_glance(
    devcloud, live, pki, ec2, image_name, tmp_path
):
    image, raw = small_disk(tmp_path)
    made_from = f"sha256:{_sha256(image)}"
    with driver_for(devcloud, GLANCE_A) as glance_a:
        glance_a.create_and_write(
            {"name": image_name, "disk_format": "qcow2", "container_format": "bare"},
            iter([image]),
            size=len(image),
        )

    # Glance A -> EC2: converted to raw on the way, verified, provenance in the AMI's tags.
    api = LiveAPI(live, pki)
    job = _done(api, api.copy(image_name, (EC2,)))
    assert target(job, EC2)["outcome"] == "copied"
    ami = _only(ec2, image_name)
    assert (ami.disk_format, ami.size) == ("raw", len(raw))
    assert _bytes(ec2, ami.id) == raw
    assert ami.properties["glint_sha256"] == _sha256(raw)
    assert ami.properties["glint_made_from"] == made_from

    # EC2 -> Glance B, planned where the EC2 copy is the only source: raw, the same content.
    # (The planner copies only a verifiable row: an AMI, which has no cloud hash, is one only
    # by the cross-kind matrix keys, glint_sha256 / glint_made_from, of the matrix-kinds work.)
    other = LiveAPI(live, pki, LIVE_OTHER_GROUP)
    job = _done(other, other.copy(image_name, (GLANCE_B,), holders=(EC2,)))
    assert target(job, GLANCE_B)["outcome"] == "copied"
    with driver_for(devcloud, GLANCE_B) as glance_b:
        copy = _only(glance_b, image_name)
        assert (copy.disk_format, copy.size) == ("raw", len(raw))
        assert _bytes(glance_b, copy.id) == raw
        assert copy.properties["glint_sha256"] == _sha256(raw)
        assert copy.properties["glint_made_from"] == made_from

    # One matrix row throughout: the qcow2 and its raw copies are one image (needs the
    # cross-kind matrix keys of glint_made_from).
    _one_row_in(other, image_name, (EC2, GLANCE_B))
    _one_row_in(api, image_name, (GLANCE_A, EC2, GLANCE_B))


def test_one_upload_reaches_two_openstack_repos_and_ec2(
    devcloud, live, pki, ec2, image_name, tmp_path
):
    image, raw = small_disk(tmp_path)
    api = LiveAPI(live, pki)
    upload = api.post(
        "uploads/",
        {
            "group": api.group,
            "name": image_name,
            "targets": [GLANCE_A, GLANCE_B, EC2],
            "disk_format": "qcow2",
            "checksum": f"sha256:{_sha256(image)}",
        },
        expect=201,
    )
    response = requests.put(
        upload["upload_url"],
        data=image,
        headers={"Content-Type": "application/octet-stream"},
        cert=str(live.cert_file),
        verify=str(pki.ca_file),
        timeout=120,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["state"], body["sha256"], body["job_state"]) == (
        "received",
        _sha256(image),
        "done",
    ), body
    job = api.job(body["job"])
    assert {t["repo_name"]: t["outcome"] for t in job["targets"]} == dict.fromkeys(
        (GLANCE_A, GLANCE_B, EC2), "copied"
    )
    for cloud in (GLANCE_A, GLANCE_B):
        with driver_for(devcloud, cloud) as glance:
            copy = _only(glance, image_name)
            assert (copy.disk_format, _bytes(glance, copy.id)) == ("qcow2", image), cloud
            assert copy.properties["glint_sha256"] == _sha256(image)
    ami = _only(ec2, image_name)
    assert _bytes(ec2, ami.id) == raw
    assert ami.properties["glint_sha256"] == _sha256(raw)
    assert ami.properties["glint_made_from"] == f"sha256:{_sha256(image)}"

    # One row, present in all three columns (needs the cross-kind matrix keys).
    _one_row_in(api, image_name, (GLANCE_A, GLANCE_B, EC2))
