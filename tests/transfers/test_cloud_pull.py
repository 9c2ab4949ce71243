"""A web link the target clouds fetch themselves (Glance ``web-download``), verified afterwards.

The devcloud's Glances offer ``web-download`` and accept links to 127.0.0.1 and localhost only
(``[import_filtering_opts] allowed_hosts``), so the web server on 127.0.0.1 can be pulled from
and the one on 127.0.0.2 is refused by the clouds on the spot. The server tells Glint's fetcher
(``User-Agent: Glint``) from Glance's, which lets a test show what the clouds fetched and serve
them something else. Everything is real: the clouds' import tasks fetch over loopback sockets.
"""

from __future__ import annotations

import hashlib
import threading
import time

import pytest
from django.utils import timezone

from glint.jobs import services as job_services
from glint.jobs.models import Job, JobTarget
from glint.transfers.models import Upload
from tests.devcloud_repos import add_devcloud_repo
from tests.jobs.images import images_named, random_chunks
from tests.transfers.helpers import STALL, link_upload, qemu_image, run_job

pytestmark = [pytest.mark.devcloud, pytest.mark.django_db(transaction=True)]

GLINT = "Glint"


@pytest.fixture
def sha512_and_sha256_repos(devcloud, group_a):
    """devcloud-1 hashes with sha512, devcloud-3 with sha256: a sha256 checksum is compared
    directly with one, and needs the copy read back at the other."""
    return [add_devcloud_repo(devcloud, group_a, cloud) for cloud in ("devcloud-1", "devcloud-3")]


def serve(web, name: str, size: int = 2**20) -> tuple[str, bytes, str]:
    data = b"".join(random_chunks(name, size))
    path = f"/images/{name}"
    return path, data, web.add(path, data)


def outcomes(job: Job) -> dict[str, str]:
    return {t.repo_name: t.outcome or t.error_code for t in job.targets.all()}


def test_clouds_with_web_download_fetch_a_checksummed_link_themselves(
    devcloud, client, group_a, sha512_and_sha256_repos, web, settings, image_name
):
    settings.GLINT_FETCH_ALLOW_CIDRS = ["127.0.0.0/8"]
    path, data, sha256 = serve(web, image_name)

    created = link_upload(
        client, group_a, sha512_and_sha256_repos, web.url(path), checksum=sha256
    ).json()
    job = run_job(created["job"])

    assert job.state == "done", job.error
    assert outcomes(job) == {"devcloud-1": "pulled", "devcloud-3": "pulled"}
    assert Upload.objects.get(pk=created["id"]).state == "pulled"
    assert job.content_key == f"sha256:{sha256}"
    assert web.agents(path)[0] == GLINT and GLINT not in web.agents(path)[1:], (
        "Glint read the link once (its head, for the format); the rest were the clouds"
    )
    assert len(web.agents(path)) == 3
    found = images_named(devcloud, image_name)
    for cloud in ("devcloud-1", "devcloud-3"):
        (image,) = found[cloud]
        assert (image.status, image.size, image.visibility) == ("active", len(data), "private")
        assert image.properties["glint_sha256"] == sha256
    assert found["devcloud-3"][0].hash_value == sha256, "the cloud's own hash is the declared one"


def test_a_link_the_clouds_refuse_is_streamed_through_glint(
    devcloud, client, group_a, repos, web2, settings, image_name
):
    settings.GLINT_FETCH_ALLOW_CIDRS = [
        "127.0.0.2/32"
    ]  # allowed for Glint; the clouds refuse 127.0.0.2
    path, data, sha256 = serve(web2, image_name)

    created = link_upload(client, group_a, repos, web2.url(path), checksum=sha256).json()
    job = run_job(created["job"])

    assert job.state == "done", job.error
    assert outcomes(job) == {"devcloud-1": "copied", "devcloud-2": "copied"}
    for target in job.targets.all():
        assert any("would not fetch the link itself" in w for w in target.warnings), target.warnings
    assert web2.agents(path) == [GLINT], "the clouds never fetched it"
    upload = Upload.objects.get(pk=created["id"])
    assert (upload.state, upload.sha256) == ("received", sha256)
    for cloud in ("devcloud-1", "devcloud-2"):
        (image,) = images_named(devcloud, image_name)[cloud]
        assert image.status == "active" and image.properties["glint_sha256"] == sha256


@pytest.mark.parametrize("cloud_sees", ["nothing", "other bytes"])
def test_a_failed_cloud_fetch_leaves_nothing_and_the_retry_streams_it(
    devcloud, client, group_a, repos, web, settings, image_name, cloud_sees
):
    """The link is unreachable from the clouds (404), or serves them other bytes than it served
    Glint: either way no copy is kept, and the automatic retry sends Glint's verified bytes."""
    settings.GLINT_FETCH_ALLOW_CIDRS = ["127.0.0.0/8"]
    path, data, sha256 = serve(web, image_name)
    web.for_clouds[path] = None if cloud_sees == "nothing" else bytes(reversed(data))

    created = link_upload(client, group_a, repos, web.url(path), checksum=sha256).json()
    job = run_job(created["job"])

    expected = "pull_failed" if cloud_sees == "nothing" else "target_verification_failed"
    assert job.state == "failed" and job.next_attempt_at is not None, "a transient failure: retried"
    assert outcomes(job) == {"devcloud-1": expected, "devcloud-2": expected}
    assert images_named(devcloud, image_name) == {
        "devcloud-1": [],
        "devcloud-2": [],
        "devcloud-3": [],
    }

    due = timezone.now()
    Job.objects.filter(pk=job.pk).update(next_attempt_at=due)
    job.targets.update(next_attempt_at=due)
    job = run_job(job.pk)

    assert job.state == "done", job.error
    assert outcomes(job) == {"devcloud-1": "copied", "devcloud-2": "copied"}
    assert web.agents(path).count(GLINT) == 1, (
        "the retry read the bytes Glint kept, not the link again"
    )
    for cloud in ("devcloud-1", "devcloud-2"):
        (image,) = images_named(devcloud, image_name)[cloud]
        assert image.properties["glint_sha256"] == sha256
        assert image.checksum == hashlib.md5(data).hexdigest()


def test_cancelling_while_the_clouds_fetch_leaves_nothing(
    devcloud, client, group_a, repos, web, settings, image_name
):
    settings.GLINT_FETCH_ALLOW_CIDRS = ["127.0.0.0/8"]
    path, data, sha256 = serve(web, image_name)
    web.for_clouds[path] = STALL
    created = link_upload(client, group_a, repos, web.url(path), checksum=sha256).json()
    ended = {}
    worker = threading.Thread(target=lambda: ended.update(job=run_job(created["job"])))
    worker.start()
    deadline = time.monotonic() + 60
    while (
        JobTarget.objects.filter(job_id=created["job"], state="writing", image_id__gt="").count()
        < 2
    ):
        assert time.monotonic() < deadline, "the clouds never started fetching"
        time.sleep(0.2)

    job_services.cancel(Job.objects.get(pk=created["job"]), None)
    worker.join(60)

    assert not worker.is_alive() and ended["job"].state == "cancelled"
    assert images_named(devcloud, image_name) == {
        "devcloud-1": [],
        "devcloud-2": [],
        "devcloud-3": [],
    }


@pytest.mark.parametrize(
    "case", ["no checksum", "credentials in the link", "no size under a limit", "cloud_pull off"]
)
def test_a_link_is_streamed_when_a_pull_could_not_be_verified_or_would_leak(
    devcloud, client, group_a, repos, web, settings, image_name, case
):
    settings.GLINT_FETCH_ALLOW_CIDRS = ["127.0.0.0/8"]
    path, data, sha256 = serve(web, image_name)
    url, fields = web.url(path), {"checksum": sha256}
    if case == "no checksum":
        fields = {}
    elif case == "credentials in the link":
        url = url.replace("http://", "http://mirror:s3cret@")
    elif case == "no size under a limit":
        web.unsized.add(path)
        settings.GLINT_UPLOAD_MAX_BYTES = 2 * len(data)
    else:
        settings.GLINT_CLOUD_PULL = False

    created = link_upload(client, group_a, repos, url, **fields).json()
    job = run_job(created["job"])

    assert job.state == "done", job.error
    assert outcomes(job) == {"devcloud-1": "copied", "devcloud-2": "copied"}
    assert web.agents(path) == [GLINT], "only Glint fetched the link"
    assert Upload.objects.get(pk=created["id"]).sha256 == sha256


@pytest.mark.parametrize("listed", [False, True])
def test_a_link_by_name_is_handed_to_the_clouds_only_when_an_admin_listed_the_name(
    devcloud, client, group_a, repos, web, settings, image_name, listed
):
    """The clouds resolve a name again, and may get another answer than Glint did (DNS rebinding):
    a link by name goes to the clouds only when its name is in ``cloud_pull_hosts``. The
    devcloud's Glances resolve names under the test network guard, which refuses ``localhost.``
    (Glance 33 looks names up with a trailing dot), so a listed name is handed over, refused by
    the cloud, and then streamed: the warning shows that it was handed over."""
    settings.GLINT_FETCH_ALLOW_CIDRS = ["127.0.0.0/8", "::1/128"]
    settings.GLINT_CLOUD_PULL_HOSTS = ["localhost"] if listed else ["mirror.example.org"]
    path, data, sha256 = serve(web, image_name)

    url = web.url(path, host="localhost")
    created = link_upload(client, group_a, repos, url, checksum=sha256).json()
    job = run_job(created["job"])

    assert job.state == "done", job.error
    assert outcomes(job) == {"devcloud-1": "copied", "devcloud-2": "copied"}
    for target in job.targets.all():
        handed = [w for w in target.warnings if "would not fetch the link itself" in w]
        assert bool(handed) == listed, target.warnings
    assert web.agents(path) == [GLINT], "only Glint fetched the bytes"
    assert Upload.objects.get(pk=created["id"]).sha256 == sha256


def test_a_link_that_redirected_glint_is_streamed(
    devcloud, client, group_a, repos, web, settings, image_name
):
    """A cloud follows a redirect on its own, to a host it resolves itself: such a link is
    streamed."""
    settings.GLINT_FETCH_ALLOW_CIDRS = ["127.0.0.0/8"]
    path, data, sha256 = serve(web, image_name)
    web.redirects["/moved"] = web.url(path)

    created = link_upload(client, group_a, repos, web.url("/moved"), checksum=sha256).json()
    job = run_job(created["job"])

    assert job.state == "done", job.error
    assert outcomes(job) == {"devcloud-1": "copied", "devcloud-2": "copied"}
    assert web.agents(path) == [GLINT]


def test_an_unsafe_image_the_clouds_fetched_is_not_kept(
    devcloud, client, group_a, sha512_and_sha256_repos, web, settings, image_name, tmp_path
):
    """The link serves Glint a plain raw image and the clouds a qcow2 naming a backing file,
    whose checksum the uploader declared: Glint's check of its own fetch passes, so the cloud's
    copy is inspected before it is kept. (``ovf``: this Glance inspects only ``bare`` images.)"""
    settings.GLINT_FETCH_ALLOW_CIDRS = ["127.0.0.0/8"]
    qemu_image(tmp_path, "raw")
    unsafe = qemu_image(tmp_path, "qcow2", "-b", "disk.raw", "-F", "raw").read_bytes()
    path, _data, _sha256 = serve(web, image_name, size=len(unsafe))  # the same announced size
    web.for_clouds[path] = unsafe
    checksum = hashlib.sha256(unsafe).hexdigest()

    created = link_upload(
        client,
        group_a,
        sha512_and_sha256_repos,
        web.url(path),
        checksum=checksum,
        disk_format="raw",
        container_format="ovf",
    ).json()
    job = run_job(created["job"])

    assert job.state == "failed", outcomes(job)
    assert set(outcomes(job).values()) == {"unsafe_image"}
    assert "backing file" in job.targets.first().error
    assert not any(images_named(devcloud, image_name).values()), "the clouds' copies were deleted"
