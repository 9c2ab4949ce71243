"""kill -9 of ``glint serve`` while it writes an EC2 snapshot (issue #14): the snapshot is
recorded before its first block, so after the restart the job's next run deletes it and writes
one verified AMI; nothing of the dead run is left in the peer.

The EC2 repo reaches devcloud's peer through a throttling proxy (``slow_ec2``), so the copy is
mid-snapshot when the server is killed."""

from __future__ import annotations

import hashlib

import pytest

from glint.clouds import get_driver
from glint.clouds.ec2 import SNAPSHOT_TAG, WRITING_TAG
from tests.ec2_peer import peer_client, peer_connection
from tests.jobs.helpers import JOB_SETTINGS, LiveAPI, target, writing
from tests.jobs.images import random_chunks, upload
from tests.live import LIVE_GROUP, run_glint, start_live_glint

pytestmark = pytest.mark.devcloud

#: All data (no zero blocks to skip): about 6 s through the proxy.
SIZE = 12 * 2**20


@pytest.fixture(scope="module")
def live(devcloud, devcloud_ec2, slow_ec2, pki, tmp_path_factory):
    """``glint serve`` with devcloud-1 and an EC2 repo ``ec2`` behind the throttling proxy."""
    peer = devcloud_ec2.ec2_peer
    keys = peer.users["glint"]
    servers = start_live_glint(
        devcloud, pki, tmp_path_factory.mktemp("ec2-crash"), clouds=("devcloud-1",), **JOB_SETTINGS
    )
    live = next(servers)
    added = run_glint(
        live.server.data_dir,
        *("repo", "import", "--group", LIVE_GROUP, "--name", "ec2", "--region", peer.region),
        *("--access-key-id", keys.access_key_id, "--endpoint-url", slow_ec2.url),
        AWS_SECRET_ACCESS_KEY=keys.secret_access_key,
        **JOB_SETTINGS,
    )
    assert added.returncode == 0, added.stderr + added.stdout
    yield live
    servers.close()


@pytest.fixture
def ec2(devcloud_ec2):
    client = peer_client(devcloud_ec2.ec2_peer)
    yield client
    client.close()


def _tags(resource: dict) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in resource.get("Tags", [])}


def _of_copy(ec2, name: str) -> tuple[list[dict], list[dict]]:
    """The AMIs named ``name`` and the snapshots Glint wrote for it."""
    amis = [i for i in ec2.describe_images(Owners=["self"])["Images"] if i.get("Name") == name]
    snapshots = [
        s
        for s in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]
        if s.get("Description") == f"glint: {name}"
    ]
    return amis, snapshots


def test_kill_9_mid_snapshot_leaves_nothing_of_the_dead_run_and_the_job_makes_one_verified_ami(
    devcloud, devcloud_ec2, live, pki, ec2, image_name
):
    name = image_name
    upload(devcloud, "devcloud-1", name, SIZE)
    api = LiveAPI(live, pki)
    job_id = api.copy(name, ("ec2",))
    job = api.wait(
        job_id,
        lambda j: target(j, "ec2")["image_id"].startswith("snap-") and writing(j, "ec2"),
        what="writing its snapshot",
    )
    dead_snapshot = target(job, "ec2")["image_id"]

    live.server.process.kill()  # SIGKILL: no clean-up code runs
    live.server.process.wait()
    amis, snapshots = _of_copy(ec2, name)
    assert amis == [] and [s["SnapshotId"] for s in snapshots] == [dead_snapshot], (
        "killed mid-snapshot: the recorded snapshot, no AMI yet"
    )
    assert _tags(snapshots[0])[WRITING_TAG] == name, "tagged as Glint's unfinished write"
    assert _tags(snapshots[0])["glint_source_id"], "with its provenance, from StartSnapshot on"

    live.restart()  # the sweeper re-queues the job; its next run deletes the recorded snapshot
    job = api.wait(
        job_id, lambda j: j["state"] not in ("queued", "running"), timeout=180, what="finished"
    )
    assert job["state"] == "done" and job["attempts"] >= 2, job
    ami_id = target(job, "ec2")["image_id"]
    amis, snapshots = _of_copy(ec2, name)
    assert [a["ImageId"] for a in amis] == [ami_id], "exactly one AMI"
    assert dead_snapshot not in {s["SnapshotId"] for s in snapshots}, "the dead run's is gone"
    (snapshot,) = snapshots
    assert _tags(snapshot).get(SNAPSHOT_TAG) == ami_id and WRITING_TAG not in _tags(snapshot)

    want = hashlib.sha256(b"".join(random_chunks(name, SIZE))).hexdigest()
    assert _tags(amis[0])["glint_sha256"] == want, "verified: Glint's sha256 of the source"
    with get_driver(peer_connection(devcloud_ec2.ec2_peer)) as driver:
        with driver.open_read(ami_id) as reader:
            got = hashlib.sha256()
            for chunk in reader:
                got.update(chunk)
        driver.delete(ami_id)
    assert got.hexdigest() == want, "the AMI holds the source's bytes"
