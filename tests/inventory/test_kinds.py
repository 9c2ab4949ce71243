"""One matrix across kinds through the inventory (issue #14): a qcow2 image in a real Glance and
the raw AMI Glint made of it in devcloud's EC2 peer, tagged as the copy engine tags it, are one
row in both columns once both repos are polled; the API and the page say what each cell stores.
So are an AMI and the qcow2 copy a copy job made of it in Glance for a group that asks for qcow2.

The AMI is written here with the driver and the tags of the contract (``glint_sha256`` of its
raw bytes, ``glint_made_from`` of the qcow2 it was converted from, the provenance of its
source), not by a copy job: the conversion is the engine's and tested there. The listing's
validation of the tag and the migration that fills the new column need no cloud.
"""

from __future__ import annotations

import hashlib
import importlib
import subprocess
import uuid

import pytest
from django.apps import apps
from django.utils import timezone

from glint.clouds import RepoConnection, get_driver
from glint.inventory import listings
from glint.inventory.models import Image
from glint.inventory.poller import poll_repos
from glint.jobs.matrix import forget_cached_matrices, group_matrix
from glint.jobs.models import Job
from glint.replication import ImageRecord
from glint.repos.drivers import open_driver
from glint.repos.models import Repo
from glint.transfers.services import download_source
from tests.devcloud_repos import add_devcloud_repo
from tests.jobs.helpers import copy_job, run_in_process
from tests.plans.helpers import add_repo

NAME = f"glint-kinds-{uuid.uuid4().hex[:8]}"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


DIGEST = "ab" * 32


@pytest.mark.parametrize(
    ("tag", "stored"),
    [
        (f"sha256:{DIGEST}", f"sha256:{DIGEST}"),
        (f"sha256:{DIGEST.upper()}", f"sha256:{DIGEST}"),
        (DIGEST, ""),
        (f"md5:{DIGEST[:32]}", ""),
        (f"sha256:{DIGEST}0", ""),
        ("sha256:", ""),
        (None, ""),
    ],
)
def test_the_listing_keeps_only_a_valid_made_from(group_a, tag, stored):
    repo = add_repo(group_a, "aws", "111122223333")
    properties = {"glint_made_from": tag} if tag is not None else {}
    record = ImageRecord(id="ami-1", name="ubuntu", status="active", properties=properties)
    listings.record_listing(
        repo.pk, [record], project_id="", duration=0.1, started_at=timezone.now(), interval=300
    )
    assert Image.objects.get(repo=repo).glint_made_from == stored


def test_the_migration_fills_the_made_from_of_images_polled_before_it(group_a):
    repo = add_repo(group_a, "aws", "111122223333")
    now = timezone.now()
    for image_id, tag in (("ami-1", f"sha256:{DIGEST}"), ("ami-2", "garbage"), ("ami-3", None)):
        Image.objects.create(
            repo=repo,
            image_id=image_id,
            status="active",
            properties={"glint_made_from": tag} if tag else {},
            fingerprint="old",
            first_seen=now,
            last_seen=now,
        )
    migration = importlib.import_module("glint.inventory.migrations.0003_image_glint_made_from")
    migration.fill_made_from(apps, None)
    assert dict(Image.objects.values_list("image_id", "glint_made_from")) == {
        "ami-1": f"sha256:{DIGEST}",
        "ami-2": "",
        "ami-3": "",
    }


def test_a_download_of_the_row_reads_the_original_not_the_converted_copy(group_a):
    # The EC2 repo's name sorts first, so without the rule the raw copy would be served.
    aws, glance = add_repo(group_a, "aws", "111122223333"), add_repo(group_a, "glance", "p1")
    now = timezone.now()
    listed = {"status": "active", "name": "ubuntu", "fingerprint": "f"}
    listed.update(first_seen=now, last_seen=now)
    Image.objects.create(
        repo=glance,
        image_id="glance-1",
        disk_format="qcow2",
        checksum="c" * 32,
        owner="p1",
        **listed,
    )
    Image.objects.create(
        repo=aws,
        image_id="ami-1",
        disk_format="raw",
        owner="111122223333",
        glint_sha256=DIGEST,
        glint_made_from=f"sha256:{'cd' * 32}",
        glint_source_repo=str(glance.pk),
        glint_source_id="glance-1",
        **listed,
    )
    forget_cached_matrices()
    (row,) = group_matrix(group_a).rows
    source = download_source(group_a, row)
    assert (source.repo, source.image_id, source.disk_format) == (glance, "glance-1", "qcow2")


@pytest.fixture(scope="module")
def disk(tmp_path_factory) -> tuple[bytes, bytes]:
    """A small real qcow2 with data in it, and its raw conversion (what EC2 stores)."""
    directory = tmp_path_factory.mktemp("disk")
    qcow2, raw = directory / "disk.qcow2", directory / "disk.raw"
    run = lambda *args: subprocess.run(args, check=True, capture_output=True)  # noqa: E731
    run("qemu-img", "create", "-q", "-f", "qcow2", str(qcow2), "1M")
    run("qemu-io", "-f", "qcow2", "-c", "write -P 0x5a 64k 128k", str(qcow2))
    run("qemu-img", "convert", "-f", "qcow2", "-O", "raw", str(qcow2), str(raw))
    return qcow2.read_bytes(), raw.read_bytes()


def _ec2_repo(devcloud_ec2, group) -> Repo:
    """The group's repo of devcloud's EC2 peer."""
    peer, keys = devcloud_ec2.ec2_peer, devcloud_ec2.ec2_peer.users["glint"]
    ec2_repo = Repo(
        group=group,
        name="aws",
        kind="ec2",
        region=peer.region,
        access_key_id=keys.access_key_id,
        secret_access_key=keys.secret_access_key,
        endpoint_url=peer.endpoint_url,
    )
    ec2_repo.full_clean()
    ec2_repo.set_cloud_project(peer.account_id)
    ec2_repo.save()
    return ec2_repo


@pytest.fixture
def glance_and_ec2(devcloud, devcloud_ec2, group_a, disk):
    """The group's two columns, the qcow2 in Glance and Glint's converted copy of it in EC2."""
    qcow2, raw = disk
    glance_repo = add_devcloud_repo(devcloud, group_a, "devcloud-1", name="glance")
    ec2_repo = _ec2_repo(devcloud_ec2, group_a)

    glance = get_driver(RepoConnection.from_clouds_yaml(devcloud.cloud_config("devcloud-1")))
    original = glance.create_and_write(
        {"name": NAME, "disk_format": "qcow2", "container_format": "bare"}, [qcow2], len(qcow2)
    )
    with open_driver(ec2_repo) as ec2:
        ami = ec2.create_and_write(
            {
                "name": NAME,
                "glint_sha256": sha256(raw),
                "glint_made_from": f"sha256:{sha256(qcow2)}",
                "glint_source_repo": str(glance_repo.pk),
                "glint_source_id": original.id,
            },
            [raw],
            size=len(raw),
        )
    try:
        yield glance_repo, ec2_repo, original, ami
    finally:
        glance.delete(original.id)
        glance.close()
        with open_driver(ec2_repo) as ec2:
            ec2.delete(ami.id)


@pytest.mark.devcloud
def test_a_tagged_ami_and_its_glance_original_are_one_row_in_both_columns(
    glance_and_ec2, group_a, client_a, disk
):
    glance_repo, ec2_repo, original, ami = glance_and_ec2
    qcow2, raw = disk
    assert all(result.ok for result in poll_repos([glance_repo, ec2_repo]))
    stored = Image.objects.get(repo=ec2_repo, image_id=ami.id)
    assert stored.glint_made_from == f"sha256:{sha256(qcow2)}"  # the tag, through the listing

    body = client_a.get(f"/api/v1/images/?group={group_a.pk}&q={NAME}").json()
    (row,) = [r for r in body["results"] if r["name"] == NAME]
    assert row["content_key"] == f"sha256:{sha256(qcow2)}" and row["verifiable"]
    assert row["formats"] == "qcow2/bare" and row["conflict_types"] == []
    cells = {c["repo"]: c for c in row["cells"]}
    assert cells[glance_repo.pk]["state"] == cells[ec2_repo.pk]["state"] == "present"
    [in_glance], [in_ec2] = cells[glance_repo.pk]["copies"], cells[ec2_repo.pk]["copies"]
    assert (in_glance["image_id"], in_glance["disk_format"]) == (original.id, "qcow2")
    assert (in_ec2["image_id"], in_ec2["disk_format"]) == (ami.id, "raw")
    assert in_ec2["made_from"] == f"sha256:{sha256(qcow2)}" and in_glance["made_from"] == ""

    conflicts = client_a.get(f"/api/v1/conflicts/?group={group_a.pk}").json()
    assert not [c for c in conflicts if any(copy["name"] == NAME for copy in c["copies"])]

    page = client_a.get(f"/images/?group={group_a.pk}&q={NAME}").content.decode()
    assert '<span class="small format">qcow2</span>' in page
    assert '<span class="small format">raw</span>' in page


@pytest.mark.devcloud
@pytest.mark.django_db(transaction=True)  # the job's lease thread has its own connection
def test_an_ami_copied_to_glance_as_qcow2_by_the_group_s_setting_is_in_the_ami_s_row(
    devcloud, devcloud_ec2, group_a, client_a, disk
):
    _qcow2, raw = disk
    glance_repo = add_devcloud_repo(devcloud, group_a, "devcloud-1", name="glance")
    ec2_repo = _ec2_repo(devcloud_ec2, group_a)
    name = f"{NAME}-ami"
    with open_driver(ec2_repo) as ec2:
        ami = ec2.create_and_write({"name": name, "glint_sha256": sha256(raw)}, [raw], len(raw))
    group_a.raw_copies_format = "qcow2"
    group_a.save()
    job = copy_job(group_a, ec2_repo, glance_repo)
    Job.objects.filter(pk=job.pk).update(source_image_id=ami.id, image_name=name, row_key=name)
    try:
        assert run_in_process(job.pk) == "done", job.targets.get().error
        copy_id = job.targets.get().image_id
        with open_driver(glance_repo) as glance:
            assert glance.get_image(copy_id).disk_format == "qcow2"

        assert all(result.ok for result in poll_repos([glance_repo, ec2_repo]))
        body = client_a.get(f"/api/v1/images/?group={group_a.pk}&q={name}").json()
        (row,) = [r for r in body["results"] if r["name"] == name]
        assert row["content_key"] == f"sha256:{sha256(raw)}" and row["conflict_types"] == []
        cells = {c["repo"]: c for c in row["cells"]}
        assert cells[glance_repo.pk]["state"] == cells[ec2_repo.pk]["state"] == "present"
        [in_glance], [in_ec2] = cells[glance_repo.pk]["copies"], cells[ec2_repo.pk]["copies"]
        assert (in_glance["image_id"], in_glance["disk_format"]) == (copy_id, "qcow2")
        assert in_glance["made_from"] == f"sha256:{sha256(raw)}"
        assert (in_ec2["image_id"], in_ec2["disk_format"]) == (ami.id, "raw")
    finally:
        with open_driver(glance_repo) as glance:
            for image in glance.list_images():
                if image.name == name:
                    glance.delete(image.id)
        with open_driver(ec2_repo) as ec2:
            ec2.delete(ami.id)
