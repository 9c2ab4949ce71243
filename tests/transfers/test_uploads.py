"""Uploads through the API in this process, against the devcloud: the first pass fans out while the
bytes arrive, lands them in the cache, and a failed target continues from the cache."""

from __future__ import annotations

import hashlib
import io
import os
import time

import pytest

from glint.jobs import claims, execution
from glint.jobs import services as job_services
from glint.jobs.models import Job
from glint.jobs.runners import content_cache
from glint.transfers import services
from glint.transfers.models import Upload
from glint.transfers.sources import request_chunks
from tests.jobs.images import images_named, random_chunks
from tests.transfers.helpers import post_upload, qemu_image

pytestmark = [pytest.mark.devcloud, pytest.mark.django_db(transaction=True)]

MiB = 1024 * 1024
NOWHERE = {"devcloud-1": [], "devcloud-2": [], "devcloud-3": []}


def start(client, group, repos, **fields) -> dict:
    response = post_upload(client, group, repos, **fields)
    assert response.status_code == 201, response.content
    return response.json()


def put(client, upload: dict, data: bytes):
    return client.put(upload["upload_url"], data, content_type="application/octet-stream")


def test_a_file_goes_to_two_repos_verified_and_lands_in_the_cache(
    devcloud, client, group_a, repos, image_name
):
    data = b"".join(random_chunks(image_name, 3 * MiB + 17))
    upload = start(
        client, group_a, repos, name=image_name, size=len(data), properties={"os_distro": "test"}
    )
    assert upload["state"] == "waiting" and upload["upload_url"].endswith(
        f"/uploads/{upload['id']}/data"
    )

    response = put(client, upload, data)

    assert response.status_code == 200, response.content
    body = response.json()
    sha256 = hashlib.sha256(data).hexdigest()
    assert body["state"] == "received" and body["sha256"] == sha256 and body["disk_format"] == "raw"
    assert body["job_state"] == "done"
    job = Job.objects.get(pk=body["job"])
    assert job.kind == "upload" and {t.outcome for t in job.targets.all()} == {"copied"}
    for cloud in ("devcloud-1", "devcloud-2"):
        (image,) = images_named(devcloud, image_name)[cloud]
        assert (
            image.status == "active" and image.size == len(data) and image.visibility == "private"
        )
        assert (
            image.properties["glint_sha256"] == sha256 and image.properties["os_distro"] == "test"
        )
    assert content_cache().get(sha256) is not None, "the bytes landed in the cache"
    assert put(client, upload, data).status_code == 409, "the data of an upload is sent once"


def test_a_format_lie_is_refused_before_anything_reaches_a_cloud(
    devcloud, client, group_a, repos, image_name, tmp_path
):
    raw = b"".join(random_chunks(image_name, 256 * 1024))
    lie = start(client, group_a, repos, name=image_name, disk_format="qcow2")
    response = put(client, lie, raw)
    assert response.status_code == 400
    assert "declared qcow2 but it is raw data" in response.json()["detail"]

    qcow2 = qemu_image(tmp_path, "qcow2").read_bytes()
    lie = start(client, group_a, repos, name=image_name, disk_format="raw")
    response = put(client, lie, qcow2)
    assert response.status_code == 400
    assert "declared raw but it is a qcow2 image" in response.json()["detail"]

    assert Job.objects.count() == 0, "no job was started"
    assert images_named(devcloud, image_name) == {
        "devcloud-1": [],
        "devcloud-2": [],
        "devcloud-3": [],
    }


def test_a_real_qcow2_is_detected_and_uploaded_as_qcow2(
    devcloud, client, group_a, repos, image_name, tmp_path
):
    qcow2 = qemu_image(tmp_path, "qcow2").read_bytes()
    upload = start(client, group_a, repos[:1], name=image_name)
    response = put(client, upload, qcow2)
    assert response.status_code == 200 and response.json()["disk_format"] == "qcow2"
    (image,) = images_named(devcloud, image_name)["devcloud-1"]
    assert image.disk_format == "qcow2" and image.status == "active"


@pytest.mark.parametrize("announced", ["post", "put"])
def test_over_the_size_limit_is_413_before_the_body_is_read(
    client, group_a, repos, settings, announced
):
    settings.GLINT_UPLOAD_MAX_BYTES = MiB
    if announced == "post":
        response = post_upload(client, group_a, repos[:1], name="big", size=MiB + 1)
    else:
        upload = start(client, group_a, repos, name="big")
        response = put(client, upload, b"\0" * (MiB + 1))
        assert Upload.objects.get(pk=upload["id"]).state == "waiting", "nothing was read"
    assert response.status_code == 413 and "at most 1048576" in response.json()["detail"]


def test_a_body_without_length_stops_at_the_limit_mid_stream(
    devcloud, member, group_a, repos, settings, image_name
):
    settings.GLINT_UPLOAD_MAX_BYTES = 2 * MiB
    upload = services.create_upload(group_a, requester=member, targets=repos, name=image_name)
    consumed = []

    def endless():  # a chunked body (no Content-Length) that never ends
        while True:
            consumed.append(MiB)
            yield b"\1" * MiB

    upload = services.receive(upload, endless(), None)

    assert upload.state == "failed" and upload.error_code == "too_large"
    assert sum(consumed) <= 4 * MiB, "reading stopped right after the limit"
    assert upload.job.state == "failed"
    assert images_named(devcloud, image_name) == {
        "devcloud-1": [],
        "devcloud-2": [],
        "devcloud-3": [],
    }


def test_a_failed_target_continues_from_the_cache_without_a_second_upload(
    devcloud, client, group_a, repos, image_name
):
    data = b"".join(random_chunks(image_name, 2 * MiB))
    upload = start(client, group_a, repos, name=image_name, size=len(data))
    devcloud.stop("devcloud-2")
    try:
        response = put(client, upload, data)
    finally:
        devcloud.start("devcloud-2")
    assert response.status_code == 200, response.content
    job = Job.objects.get(pk=response.json()["job"])
    assert job.state == "partial"
    assert job.targets.get(repo_name="devcloud-2").state == "failed"

    job = job_services.retry(job, None)
    assert claims.claim(job, "test-worker")
    assert execution.run_claimed(job.pk, "test-worker") == "done"

    for cloud in ("devcloud-1", "devcloud-2"):
        (image,) = images_named(devcloud, image_name)[cloud]
        assert (
            image.status == "active"
            and image.properties["glint_sha256"] == hashlib.sha256(data).hexdigest()
        )


@pytest.mark.parametrize("runner", ["embedded", "celery"])
def test_a_retry_whose_bytes_left_the_cache_says_to_upload_again(
    devcloud, client, group_a, repos, image_name, settings, runner
):
    """The cache entry of a partial upload expired before its retry: the retry fails with a
    reason a person can act on (and, for a Celery worker, the likelier cause: a cache it does not
    share with glint serve), and leaves nothing in the cloud."""
    data = b"".join(random_chunks(image_name, MiB))
    upload = start(client, group_a, repos, name=image_name, size=len(data))
    devcloud.stop("devcloud-2")
    try:
        job = Job.objects.get(pk=put(client, upload, data).json()["job"])
    finally:
        devcloud.start("devcloud-2")
    cache = content_cache()
    entry = cache.get(hashlib.sha256(data).hexdigest())
    month_ago = time.time() - 30 * 86400
    os.utime(entry.path.with_suffix(".json"), (month_ago, month_ago))
    assert cache.evict_expired() == 1

    settings.GLINT_JOB_RUNNER = runner
    job = job_services.retry(job, None)
    assert claims.claim(job, "test-worker")
    assert execution.run_claimed(job.pk, "test-worker") == "partial"
    failed = job.targets.get(repo_name="devcloud-2")
    assert failed.state == "failed" and failed.error_code == "not_in_cache", (
        failed.error_code,
        failed.error,
    )
    assert "upload the image again" in failed.error
    assert ("GLINT_CACHE_DIR must be shared" in failed.error) == (runner == "celery")
    assert images_named(devcloud, image_name)["devcloud-2"] == []


def test_a_broken_upload_is_interrupted_then_resumed_from_the_offset_and_verified_whole(
    devcloud, client, member, group_a, repos, image_name
):
    data = b"".join(random_chunks(image_name, 3 * MiB + 5))
    sha256 = hashlib.sha256(data).hexdigest()
    upload = start(
        client, group_a, repos, name=image_name, size=len(data), checksum=f"sha256:{sha256}"
    )
    cut = 2 * MiB + 3
    # The client went away at `cut`.
    body = request_chunks(io.BytesIO(data[:cut]), len(data), 256 * 1024)

    interrupted = services.receive(Upload.objects.get(pk=upload["id"]), body, len(data))

    assert interrupted.state == "interrupted" and interrupted.bytes_received == cut
    assert f"after {cut} of {len(data)} bytes" in interrupted.error
    assert "Upload-Offset: " in interrupted.error
    job = Job.objects.get(pk=interrupted.job_id)
    assert job.state == "failed" and "interrupted" in job.error and str(cut) in job.error
    assert images_named(devcloud, image_name) == NOWHERE
    assert content_cache().upload_part_size(interrupted.part_key) == cut
    url = upload["upload_url"]
    head = client.head(url)
    assert head.status_code == 204
    assert (head["Upload-Offset"], head["Upload-Length"]) == (str(cut), str(len(data)))

    octets = "application/octet-stream"
    wrong = client.patch(
        url, data[cut - 1 :], content_type=octets, headers={"Upload-Offset": str(cut - 1)}
    )
    assert wrong.status_code == 409
    assert wrong["Upload-Offset"] == str(cut) and wrong.json()["offset"] == cut
    assert client.patch(url, data[cut:], content_type=octets).status_code == 400, "no offset"

    response = client.patch(
        url,
        data[cut:],
        content_type="application/octet-stream",
        headers={"Upload-Offset": str(cut)},
    )

    assert response.status_code == 200, response.content
    assert response.json()["state"] == "received" and response.json()["sha256"] == sha256
    assert response.json()["job"] == job.pk and response.json()["job_state"] == "done"
    for cloud in ("devcloud-1", "devcloud-2"):
        (image,) = images_named(devcloud, image_name)[cloud]
        assert (image.status, image.size) == ("active", len(data))
        assert image.properties["glint_sha256"] == sha256
    assert content_cache().get(sha256) is not None
    assert interrupted.part_key not in content_cache().upload_part_keys()
    assert client.head(url)["Upload-Complete"] == "?1"


def test_a_resume_whose_whole_stream_does_not_match_the_checksum_fails_and_keeps_nothing(
    devcloud, client, group_a, repos, image_name
):
    data = b"".join(random_chunks(image_name, 2 * MiB))
    upload = start(
        client,
        group_a,
        repos[:1],
        name=image_name,
        size=len(data),
        checksum=f"sha256:{hashlib.sha256(data).hexdigest()}",
    )
    broken = request_chunks(io.BytesIO(data[:MiB]), len(data), MiB)
    services.receive(Upload.objects.get(pk=upload["id"]), broken, len(data))
    other = b"\xff" * MiB  # the rest of another file

    response = client.patch(
        upload["upload_url"],
        other,
        content_type="application/octet-stream",
        headers={"Upload-Offset": str(MiB)},
    )

    assert response.json()["state"] == "failed", response.content  # (its status: issue 12 item 4)
    assert images_named(devcloud, image_name)["devcloud-1"] == []
    assert str(upload["id"]) not in content_cache().upload_part_keys()
