"""The orphan reconciler against the devcloud: a Glint-made image stuck in ``queued`` that no
live job names is deleted, after the cloud is asked again; anything else is left alone. For
EC2, the same holds for a snapshot a killed copy was writing and an AMI registered on a write
that never finished."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from glint.clouds.ec2 import WRITING_TAG
from glint.inventory.poller import poll_repos
from glint.jobs import services, states
from glint.jobs.models import JobTarget
from glint.jobs.reconcile import remove_orphans
from glint.repos.models import Repo
from glint.repos.services import import_ec2
from tests.devcloud_repos import add_devcloud_repo
from tests.ec2_peer import peer_client, register_ami
from tests.jobs.helpers import copy_job, run_in_process
from tests.jobs.images import driver_for, images_named, random_chunks, upload
from tests.live import glint_env

pytestmark = [pytest.mark.devcloud, pytest.mark.django_db(transaction=True)]

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_a_stuck_glint_image_no_job_owns_is_removed_and_others_stay(
    devcloud, repos, image_name, settings
):
    settings.GLINT_JOB_ORPHAN_GRACE = 0
    fields = {"name": image_name, "disk_format": "raw", "container_format": "bare"}
    with driver_for(devcloud, "devcloud-2") as cloud:
        orphan = cloud.create_image({**fields, "glint_source_id": "gone-source"}).id  # no data
        foreign = cloud.create_image(fields).id  # stuck too, but not Glint's
    poll_repos(repos)

    removed = remove_orphans()
    assert (repos[1].pk, orphan) in removed and (repos[1].pk, foreign) not in removed
    assert [image.id for image in images_named(devcloud, image_name)["devcloud-2"]] == [foreign]


# EC2: a copy killed mid-snapshot (issue #14)

#: All data, so every block is sent: seconds through the throttling proxy.
EC2_SIZE = 8 * 2**20


def _copy_killed_mid_snapshot(request: dict, peer, tmp_path) -> str:
    """Run a copy into EC2 in its own process (``ec2_copy_process``), kill -9 it once blocks of
    its snapshot have arrived, and return the snapshot's id."""
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.jobs.ec2_copy_process"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=glint_env(tmp_path),
        cwd=REPO_ROOT,
        text=True,
    )
    ebs = peer_client(peer, "ebs")
    try:
        process.stdin.write(json.dumps(request))
        process.stdin.close()
        snapshot_id = json.loads(process.stdout.readline())["image_created"]
        deadline = time.monotonic() + 60
        while not ebs.list_snapshot_blocks(SnapshotId=snapshot_id)["Blocks"]:
            assert time.monotonic() < deadline, "no block of the snapshot arrived"
            time.sleep(0.1)
        assert process.poll() is None, "the copy was still writing when it was killed"
    finally:
        process.kill()  # SIGKILL: no clean-up code runs
        process.wait()
        ebs.close()
    return snapshot_id


def _unfinished_ami(peer, name: str) -> tuple[str, str]:
    """An AMI registered on a snapshot still tagged as Glint's write: what a crash between
    RegisterImage and the end of the write leaves (the moment cannot be hit by a kill on
    demand, so the peer is given that state directly). Returns (AMI id, snapshot id)."""
    ebs, ec2 = peer_client(peer, "ebs"), peer_client(peer)
    tags = [{"Key": WRITING_TAG, "Value": name}, {"Key": "glint_source_id", "Value": "gone"}]
    snapshot_id = ebs.start_snapshot(VolumeSize=1, Tags=tags, Description=f"glint: {name}")[
        "SnapshotId"
    ]
    ebs.complete_snapshot(SnapshotId=snapshot_id, ChangedBlocksCount=0)
    return register_ami(ec2, name, snapshot_id), snapshot_id


def _foreign(peer, name: str) -> tuple[str, str]:
    """A snapshot being written and an AMI that Glint did not make (no Glint tag)."""
    ebs, ec2 = peer_client(peer, "ebs"), peer_client(peer)
    writing = ebs.start_snapshot(VolumeSize=1, Description=f"theirs: {name}")["SnapshotId"]
    done = ebs.start_snapshot(VolumeSize=1, Description=f"theirs: {name}")["SnapshotId"]
    ebs.complete_snapshot(SnapshotId=done, ChangedBlocksCount=0)
    return writing, register_ami(ec2, f"{name}-theirs", done)


def test_a_copy_into_ec2_killed_mid_snapshot_leaves_nothing_after_the_reconciler_and_a_retry_makes_one_ami(  # noqa: E501
    devcloud, devcloud_ec2, slow_ec2, group_a, image_name, settings, tmp_path
):
    settings.GLINT_JOB_ORPHAN_GRACE = 0
    peer = devcloud_ec2.ec2_peer
    keys = peer.users["glint"]
    fields = {
        "region": peer.region,
        "access_key_id": keys.access_key_id,
        "secret_access_key": keys.secret_access_key,
    }
    source = add_devcloud_repo(devcloud, group_a, "devcloud-1")
    assert import_ec2(group_a, "ec2", {**fields, "endpoint_url": peer.endpoint_url}).repo
    ec2_repo = Repo.objects.get(group=group_a, name="ec2")
    source_id = upload(devcloud, "devcloud-1", image_name, EC2_SIZE)
    request = {
        "source": devcloud.cloud_config("devcloud-1"),
        "image": source_id,
        "ec2": {**fields, "endpoint_url": slow_ec2.url},
    }

    dead = _copy_killed_mid_snapshot(request, peer, tmp_path)
    # The job of that copy came to rest with the snapshot still recorded (its clean-up failed).
    job = copy_job(group_a, source, ec2_repo, state=states.FAILED)
    job.source_image_id, job.image_name = source_id, image_name
    job.save()
    job.targets.update(state=states.TargetState.FAILED.value, image_id=dead)
    unfinished_ami, unfinished_snapshot = _unfinished_ami(peer, image_name)
    foreign_snapshot, foreign_ami = _foreign(peer, image_name)
    poll_repos([ec2_repo])

    removed = remove_orphans()
    assert {(ec2_repo.pk, dead), (ec2_repo.pk, unfinished_ami)} <= set(removed), removed
    ec2 = peer_client(peer)
    snapshots = {s["SnapshotId"] for s in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]}
    amis = {i["ImageId"]: i["Name"] for i in ec2.describe_images(Owners=["self"])["Images"]}
    assert not {dead, unfinished_snapshot} & snapshots, "Glint's unfinished snapshots are gone"
    assert image_name not in amis.values(), "and so is the AMI registered on one"
    assert foreign_snapshot in snapshots and foreign_ami in amis, "what Glint did not make stays"
    assert JobTarget.objects.get(job=job).image_id == "", "the job no longer names the snapshot"

    services.retry(job, None)
    assert run_in_process(job.pk) == states.DONE
    (copy,) = [i for i in ec2.describe_images(Owners=["self"])["Images"] if i["Name"] == image_name]
    want = hashlib.sha256(b"".join(random_chunks(image_name, EC2_SIZE))).hexdigest()
    tags = {t["Key"]: t["Value"] for t in copy.get("Tags", [])}
    assert (
        tags["glint_sha256"] == want and JobTarget.objects.get(job=job).image_id == copy["ImageId"]
    )
    ours = [
        s
        for s in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]
        if s.get("Description") == f"glint: {image_name}"
    ]
    assert len(ours) == 1, "one snapshot: the verified AMI's"
    ec2.deregister_image(ImageId=copy["ImageId"])
    ec2.delete_snapshot(SnapshotId=ours[0]["SnapshotId"])
    ec2.close()
