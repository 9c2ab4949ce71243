"""Images that must never reach a cloud, against the devcloud: a qcow2 naming a backing file or an
external data file, or a vmdk descriptor (refused by Glint itself on upload, web link and copy,
whatever the cloud's Glance would do), and bytes that do not match the checksum the person
declared.

The copy's source is put in the cloud as ``container_format=ovf``: this Glance inspects only
``bare`` images, so it stores the unsafe qcow2, as an older Glance would store any.
"""

from __future__ import annotations

import hashlib

import pytest

from glint.jobs import states
from glint.jobs.models import Job, JobTarget
from glint.jobs.runners import content_cache
from glint.transfers.models import Upload
from tests.devcloud_repos import add_devcloud_repo
from tests.jobs.helpers import run_in_process
from tests.jobs.images import driver_for, images_named, random_chunks
from tests.transfers.helpers import link_upload, post_upload, qemu_image, run_job

pytestmark = [pytest.mark.devcloud, pytest.mark.django_db(transaction=True)]

NOTHING = {"devcloud-1": [], "devcloud-2": [], "devcloud-3": []}


def backing_file_qcow2(directory):
    qemu_image(directory, "raw")
    return qemu_image(directory, "qcow2", "-b", str(directory / "disk.raw"), "-F", "raw")


def data_file_qcow2(directory):
    return qemu_image(directory, "qcow2", "-o", f"data_file={directory / 'data.raw'}")


UNSAFE = {"backing file": backing_file_qcow2, "external data file": data_file_qcow2}


def start(client, group, repos, **fields) -> dict:
    response = post_upload(client, group, repos, **fields)
    assert response.status_code == 201, response.content
    return response.json()


def put(client, upload: dict, data: bytes):
    return client.put(upload["upload_url"], data, content_type="application/octet-stream")


@pytest.mark.parametrize("declared", ["qcow2", "raw", ""])
@pytest.mark.parametrize("hazard", UNSAFE)
def test_an_unsafe_qcow2_file_is_refused_before_anything_reaches_a_cloud(
    devcloud, client, group_a, repos, image_name, tmp_path, hazard, declared
):
    data = UNSAFE[hazard](tmp_path).read_bytes()
    upload = start(client, group_a, repos, name=image_name, disk_format=declared)

    response = put(client, upload, data)

    assert response.status_code == 400, response.content
    detail = response.json()["detail"]
    assert detail.startswith("the file is a qcow2 image with ") and hazard in detail, detail
    assert Upload.objects.get(pk=upload["id"]).error_code == "unsafe_image"
    assert not Job.objects.exists(), "no job was started"
    assert images_named(devcloud, image_name) == NOTHING


@pytest.mark.parametrize("declared", ["vmdk", "raw"])
def test_a_vmdk_descriptor_is_refused_before_anything_reaches_a_cloud(
    devcloud, client, group_a, repos, image_name, tmp_path, declared
):
    descriptor = qemu_image(tmp_path, "vmdk", "-o", "subformat=monolithicFlat")
    upload = start(client, group_a, repos, name=image_name, disk_format=declared)

    response = put(client, upload, descriptor.read_bytes())

    assert response.status_code == 400, response.content
    assert response.json()["detail"].startswith("the file is a vmdk descriptor, whose extents")
    assert not Job.objects.exists() and images_named(devcloud, image_name) == NOTHING


def test_an_unsafe_qcow2_link_fails_its_job_and_leaves_nothing(
    devcloud, client, group_a, repos, web, settings, image_name, tmp_path
):
    settings.GLINT_FETCH_ALLOW_CIDRS = ["127.0.0.0/8"]
    data = backing_file_qcow2(tmp_path).read_bytes()
    sha256 = web.add(f"/{image_name}", data)

    response = link_upload(client, group_a, repos, web.url(f"/{image_name}"), checksum=sha256)
    assert response.status_code == 201, response.content
    job = run_job(response.json()["job"])

    assert job.state == "failed" and job.error_code == "unsafe_image", (job.error_code, job.error)
    assert "backing file" in job.error
    upload = Upload.objects.get(job=job)
    assert upload.state == "failed" and upload.error_code == "unsafe_image"
    assert web.agents(f"/{image_name}") == ["Glint"], "no cloud was handed the link"
    assert images_named(devcloud, image_name) == NOTHING


@pytest.mark.parametrize("hazard", UNSAFE)
def test_an_unsafe_qcow2_in_a_cloud_is_never_copied(
    devcloud, group_a, image_name, tmp_path, hazard
):
    source_repo = add_devcloud_repo(devcloud, group_a, "devcloud-1")
    target_repo = add_devcloud_repo(devcloud, group_a, "devcloud-2")
    data = UNSAFE[hazard](tmp_path).read_bytes()
    fields = {
        "name": image_name,
        "disk_format": "qcow2",
        "container_format": "ovf",
        "visibility": "private",
    }
    with driver_for(devcloud, "devcloud-1") as cloud:
        source = cloud.create_and_write(fields, [data], size=len(data))
    job = Job.objects.create(
        kind=states.COPY,
        group=group_a,
        source_repo=source_repo,
        source_image_id=source.id,
        image_name=image_name,
        row_key=image_name,
    )
    JobTarget.objects.create(job=job, repo=target_repo, repo_name=target_repo.name)

    assert run_in_process(job.pk) == "failed"

    (target,) = job.targets.all()
    assert target.error_code == "unsafe_image", (target.error_code, target.error)
    assert f"source image {source.id}" in target.error and hazard in target.error
    assert "Glint does not copy it" in target.error
    assert target.image_id in ("", None), "no image was created at the target"
    assert images_named(devcloud, image_name)["devcloud-2"] == []


def test_a_checksum_that_does_not_match_is_a_400_naming_both_values(
    devcloud, client, group_a, repos, image_name
):
    data = b"".join(random_chunks(image_name, 2 * 2**20))
    computed = hashlib.sha256(data).hexdigest()
    declared = hashlib.sha256(b"other bytes").hexdigest()
    upload = start(
        client, group_a, repos, name=image_name, size=len(data), checksum=f"sha256:{declared}"
    )

    response = put(client, upload, data)

    assert response.status_code == 400, response.content
    body = response.json()
    assert body["state"] == "failed" and body["error_code"] == "checksum_mismatch"
    assert f"declared sha256:{declared}" in body["detail"]
    assert f"hash to sha256:{computed}" in body["detail"]
    assert "the cloud stored" not in body["detail"]
    job = Job.objects.get(pk=body["job"])
    errors = {(t.error_code, t.error) for t in job.targets.all()}
    assert errors == {("checksum_mismatch", body["detail"])}
    assert images_named(devcloud, image_name) == NOTHING
    assert content_cache().get(computed) is None, "nothing was kept in the cache"
