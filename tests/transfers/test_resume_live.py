"""Interrupted uploads through the real ``glint serve``: kill -9 mid-upload leaves nothing in the
clouds and no leftover in the cache, and the upload says it was interrupted; a dropped connection
and a server restart are both resumed from the offset the server reports (HEAD / PATCH with
``Upload-Offset``), verified whole in the clouds."""

from __future__ import annotations

import hashlib
import http.client
import ssl
import threading
import time

import pytest
import requests

from tests.jobs.helpers import JOB_SETTINGS, LiveAPI
from tests.jobs.images import driver_for, images_named, random_chunks
from tests.live import start_live_glint

pytestmark = pytest.mark.devcloud
MiB = 1024 * 1024
SIZE = 32 * MiB
TWO = ("devcloud-1", "devcloud-2")
NOWHERE = {"devcloud-1": [], "devcloud-2": [], "devcloud-3": []}


@pytest.fixture(scope="module")
def live(devcloud, pki, tmp_path_factory):
    yield from start_live_glint(
        devcloud, pki, tmp_path_factory.mktemp("resume-glint"), clouds=TWO, **JOB_SETTINGS
    )


@pytest.fixture
def api(live, pki):
    return LiveAPI(live, pki)


def _cache(live):
    return live.server.data_dir / "cache"


def _start(api, name: str, data: bytes) -> dict:
    return api.post(
        "uploads/",
        {
            "group": api.group,
            "name": name,
            "targets": list(TWO),
            "size": len(data),
            "checksum": f"sha256:{hashlib.sha256(data).hexdigest()}",
        },
        expect=201,
    )


def _send(
    api, upload: dict, method: str, body, size: int, offset: int | None = None
) -> requests.Response:
    headers = {"Content-Type": "application/octet-stream", "Content-Length": str(size)}
    if offset is not None:
        headers["Upload-Offset"] = str(offset)
    request = requests.Request(method, upload["upload_url"], data=body, headers=headers).prepare()
    request.headers.pop("Transfer-Encoding", None)  # requests would say chunked for a generator
    with requests.Session() as session:
        return session.send(
            request, cert=str(api.live.cert_file), verify=str(api.pki.ca_file), timeout=(10, 300)
        )


def _url(api, upload: dict) -> str:
    """The data URL on the server's current port (a restart moves it)."""
    return f"{api.live.url}/api/v1/uploads/{upload['id']}/data"


def _wait(check, what: str, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"never saw {what}")


def _interrupted(api, upload: dict) -> dict:
    def check():
        found = api.get(f"uploads/{upload['id']}/")
        return found if found["state"] == "interrupted" else None

    return _wait(check, "the upload interrupted")


def _marked_leftovers(devcloud, upload_id: int) -> list:
    """Images in the clouds that Glint made for this upload and did not finish."""
    found = []
    for cloud in TWO:
        with driver_for(devcloud, cloud) as driver:
            found += [
                (cloud, i.id, i.status)
                for i in driver.list_images()
                if i.properties.get("glint_source_id") == f"upload-{upload_id}"
                or i.status in ("queued", "saving")
            ]
    return found


def _resume(api, upload: dict, data: bytes) -> requests.Response:
    head = api.call("HEAD", f"uploads/{upload['id']}/data")
    assert head.status_code == 204, head.text
    offset = int(head.headers["Upload-Offset"])
    assert 0 < offset < len(data) and head.headers["Upload-Length"] == str(len(data))
    upload = upload | {"upload_url": _url(api, upload)}
    wrong = _send(api, upload, "PATCH", data[offset + 1 :], len(data) - offset - 1, offset + 1)
    assert wrong.status_code == 409 and wrong.headers["Upload-Offset"] == str(offset), wrong.text
    return _send(api, upload, "PATCH", data[offset:], len(data) - offset, offset)


def _assert_verified_in_the_clouds(
    devcloud, name: str, data: bytes, response: requests.Response, live
):
    assert response.status_code == 200, response.text
    body = response.json()
    sha256 = hashlib.sha256(data).hexdigest()
    assert (body["state"], body["sha256"], body["job_state"]) == ("received", sha256, "done")
    for cloud, found in images_named(devcloud, name).items():
        if cloud in TWO:
            assert [(i.status, i.size, i.properties.get("glint_sha256")) for i in found] == [
                ("active", len(data), sha256)
            ], cloud
    assert (_cache(live) / "objects" / sha256).read_bytes() == data
    assert list((_cache(live) / "uploads").iterdir()) == []
    assert list((_cache(live) / "spool").iterdir()) == []


def test_kill_9_mid_upload_leaves_nothing_and_the_upload_resumes_after_the_restart(
    devcloud, live, api, image_name
):
    data = b"".join(random_chunks(image_name, SIZE))
    upload = _start(api, image_name, data)

    def slowly():  # ~6 s for the whole image: the kill comes 2-3 s in
        for start in range(0, SIZE, MiB):
            time.sleep(0.18)
            yield data[start : start + MiB]

    sender = threading.Thread(
        target=lambda: _quietly(_send, api, upload, "PUT", slowly(), SIZE), daemon=True
    )
    began = time.monotonic()
    sender.start()
    job_id = _wait(lambda: api.get(f"uploads/{upload['id']}/")["job"], "the upload's job")
    _wait(
        lambda: any(t["bytes_done"] for t in api.job(job_id)["targets"]), "a target being written"
    )
    _wait(lambda: api.get(f"uploads/{upload['id']}/")["bytes_received"], "bytes recorded as safe")
    time.sleep(max(0.0, 2.0 - (time.monotonic() - began)))
    assert list((_cache(live) / "spool").glob("*.part")), "the engine's spool was being written"
    live.server.process.kill()
    live.server.process.wait()
    sender.join(30)

    live.restart()

    interrupted = _interrupted(api, upload)
    arrived = interrupted["bytes_received"]
    assert 0 < arrived < SIZE
    error = interrupted["error"]
    assert f"after {arrived} of {SIZE} bytes" in error and "Glint stopped" in error
    assert f"Upload-Offset: {arrived}" in error and f"--resume {upload['id']}" in error
    assert interrupted["error_code"] == "upload_interrupted"
    job = api.wait(job_id, lambda j: j["state"] == "failed", what="the job failed")
    assert f"after {arrived} of {SIZE} bytes" in job["error"]
    assert {(t["state"], t["error_code"]) for t in job["targets"]} == {
        ("failed", "upload_interrupted")
    }
    assert live.server.query("SELECT state, lease_owner FROM jobs_job WHERE id = ?", job_id) == [
        ("failed", "")
    ]
    assert images_named(devcloud, image_name) == NOWHERE
    assert _marked_leftovers(devcloud, upload["id"]) == []
    _wait(
        lambda: not list((_cache(live) / "spool").iterdir()),
        "the spool leftover removed at start-up",
    )
    part = _cache(live) / "uploads" / f"{upload['id']}.part"
    assert part.stat().st_size >= arrived, "the bytes that arrived are kept for the resume"

    response = _resume(api, upload, data)

    _assert_verified_in_the_clouds(devcloud, image_name, data, response, live)


def test_a_connection_dropped_by_the_client_is_resumed_from_the_reported_offset(
    devcloud, live, api, image_name
):
    data = b"".join(random_chunks(image_name, 8 * MiB))
    upload = _start(api, image_name, data)
    context = ssl.create_default_context(cafile=str(api.pki.ca_file))
    context.load_cert_chain(str(live.cert_file))
    conn = http.client.HTTPSConnection("127.0.0.1", live.server.port, context=context, timeout=30)
    conn.putrequest("PUT", f"/api/v1/uploads/{upload['id']}/data")
    conn.putheader("Content-Type", "application/octet-stream")
    conn.putheader("Content-Length", str(len(data)))
    conn.endheaders()
    conn.send(data[: 3 * MiB + 11])
    time.sleep(1)
    conn.sock.close()  # the client goes away mid-upload

    interrupted = _interrupted(api, upload)
    assert interrupted["bytes_received"] == 3 * MiB + 11
    assert "the connection broke" in interrupted["error"]
    assert images_named(devcloud, image_name) == NOWHERE

    response = _resume(api, upload, data)

    _assert_verified_in_the_clouds(devcloud, image_name, data, response, live)


def _quietly(func, *args):
    try:
        return func(*args)
    except requests.RequestException as exc:  # the server was killed under the upload
        return exc
