"""Uploads and downloads through the real ``glint serve`` (TLS, cheroot, the embedded job runner)
against the devcloud: a 300 MiB upload to three repos in bounded memory, a download resumed with
Range, a cancelled upload, the size limit before the body is read, and the CLI."""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import os
import socket
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from tests.jobs.helpers import CLOUDS, JOB_SETTINGS, LiveAPI
from tests.jobs.images import delete_named, images_named, random_chunks
from tests.live import LIVE_GROUP, start_live_glint

pytestmark = pytest.mark.devcloud
GLINT = str(Path(sys.executable).parent / "glint")
MiB = 1024 * 1024
BIG = 300 * MiB
#: The web process may grow by less than this while it streams an upload or a download (issue 5).
MEMORY_BUDGET = 32 * MiB


@pytest.fixture(scope="module")
def live(devcloud, pki, tmp_path_factory):
    # Web links to 127.0.0.1 are allowed here (the CLI's --url test serves one); the refusals are
    # tested in test_weblink.py and test_fetch.py.
    yield from start_live_glint(
        devcloud,
        pki,
        tmp_path_factory.mktemp("transfers-glint"),
        clouds=CLOUDS,
        GLINT_UPLOAD_MAX_BYTES=str(BIG + MiB),
        GLINT_FETCH_ALLOW_CIDRS="127.0.0.1/32",
        **JOB_SETTINGS,
    )


@pytest.fixture
def api(live, pki):
    return LiveAPI(live, pki)


class RssSampler(threading.Thread):
    """The peak resident memory of a process, sampled from /proc/<pid>/status."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid, self.peak, self.stopping = pid, 0, threading.Event()
        self.start_rss = self.rss()

    def rss(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise AssertionError("no VmRSS")

    def run(self):
        while not self.stopping.wait(0.05):
            self.peak = max(self.peak, self.rss())

    def growth(self) -> int:
        self.stopping.set()
        self.join()
        return self.peak - self.start_rss


def start_upload(api: LiveAPI, name: str, targets, **fields) -> dict:
    return api.post(
        "uploads/",
        {"group": api.group, "name": name, "targets": list(targets), **fields},
        expect=201,
    )


def put(api: LiveAPI, upload: dict, chunks, size: int) -> requests.Response:
    """``PUT`` a generated body with its Content-Length, as ``curl -T`` sends a file."""
    request = requests.Request(
        "PUT",
        upload["upload_url"],
        data=chunks,
        headers={"Content-Type": "application/octet-stream", "Content-Length": str(size)},
    ).prepare()
    del request.headers["Transfer-Encoding"]  # requests would announce chunked for a generator
    with requests.Session() as session:
        return session.send(
            request, cert=str(api.live.cert_file), verify=str(api.pki.ca_file), timeout=(10, 600)
        )


def hashed(chunks, digest):
    for chunk in chunks:
        digest.update(chunk)
        yield chunk


def test_300_mib_to_three_repos_in_bounded_memory_then_downloaded_with_resume(
    devcloud, live, api, image_name
):
    # Warm the server up (imports, first connections) so the sample measures streaming only.
    warm = start_upload(api, f"{image_name}-warm", CLOUDS)
    assert put(api, warm, iter([b"\0" * MiB]), MiB).status_code == 200
    delete_named(devcloud, f"{image_name}-warm")
    upload = start_upload(api, image_name, CLOUDS, size=BIG)
    sampler = RssSampler(live.server.process.pid)
    sampler.start()
    sent = hashlib.sha256()

    response = put(api, upload, hashed(random_chunks(image_name, BIG), sent), BIG)

    growth = sampler.growth()
    assert response.status_code == 200, response.text
    body = response.json()
    assert (
        body["state"] == "received"
        and body["sha256"] == sent.hexdigest()
        and body["job_state"] == "done"
    )
    assert growth < MEMORY_BUDGET, f"the web process grew by {growth / MiB:.1f} MiB"
    job = api.job(body["job"])
    assert {t["repo_name"]: t["outcome"] for t in job["targets"]} == {c: "copied" for c in CLOUDS}
    for cloud, found in images_named(devcloud, image_name).items():
        assert [(i.status, i.size, i.properties.get("glint_sha256")) for i in found] == [
            ("active", BIG, sent.hexdigest())
        ], cloud

    # Download: interrupted after 100 MiB, then resumed with Range; byte-identical, hashes in
    # headers.
    row, _version = api.row(image_name, CLOUDS)
    url = f"{live.url}/api/v1/images/{row['id']}/download/"
    auth = {
        "cert": str(live.cert_file),
        "verify": str(api.pki.ca_file),
        "timeout": 60,
        "stream": True,
    }
    received = hashlib.sha256()
    sampler = RssSampler(live.server.process.pid)
    sampler.start()
    with requests.get(url, **auth) as first:
        assert first.status_code == 200 and int(first.headers["Content-Length"]) == BIG
        assert first.headers["Accept-Ranges"] == "bytes"
        digest = base64.b64encode(bytes.fromhex(sent.hexdigest())).decode()
        assert f"sha-256=:{digest}:" in first.headers["Repr-Digest"]
        assert first.headers["ETag"] == f'"sha256-{sent.hexdigest()}"'
        assert first.headers["X-Glint-Os-Hash"].split(":")[0] in ("sha512", "sha256")
        assert f'filename="{image_name}.img"' in first.headers["Content-Disposition"]
        got = 0
        for chunk in first.iter_content(MiB):
            received.update(chunk)
            got += len(chunk)
            if got >= 100 * MiB:
                break
    with requests.get(
        url, headers={"Range": f"bytes={got}-", "If-Range": first.headers["ETag"]}, **auth
    ) as rest:
        assert rest.status_code == 206
        assert rest.headers["Content-Range"] == f"bytes {got}-{BIG - 1}/{BIG}"
        assert int(rest.headers["Content-Length"]) == BIG - got
        for chunk in rest.iter_content(MiB):
            received.update(chunk)
    growth = sampler.growth()
    assert received.hexdigest() == sent.hexdigest(), "the resumed download is byte-identical"
    assert growth < MEMORY_BUDGET, f"the web process grew by {growth / MiB:.1f} MiB while serving"
    beyond = requests.get(url, headers={"Range": f"bytes={BIG}-"}, **auth)
    assert beyond.status_code == 416 and beyond.headers["Content-Range"] == f"bytes */{BIG}"


def test_a_cancelled_upload_leaves_nothing_in_any_cloud(devcloud, live, api, image_name):
    size = 48 * MiB
    upload = start_upload(api, image_name, CLOUDS, size=size)

    def slowly():
        for chunk in random_chunks(image_name, size):
            time.sleep(0.05)
            yield chunk

    outcome = {}
    sender = threading.Thread(
        target=lambda: outcome.setdefault("put", _quietly(put, api, upload, slowly(), size))
    )
    sender.start()

    def writing():
        job_id = api.get(f"uploads/{upload['id']}/")["job"]
        return job_id and any(t["bytes_done"] > 0 for t in api.job(job_id)["targets"]) and job_id

    job_id = _wait_for(writing, "a target being written")
    assert api.post(f"uploads/{upload['id']}/cancel/")["id"] == upload["id"]
    job = api.wait(job_id, lambda j: j["state"] == "cancelled", what="cancelled")
    sender.join(60)
    assert {t["state"] for t in job["targets"]} == {"cancelled"}
    assert api.get(f"uploads/{upload['id']}/")["state"] == "cancelled"
    assert images_named(devcloud, image_name) == {cloud: [] for cloud in CLOUDS}


def test_a_body_over_the_limit_is_refused_before_it_is_sent(live, api, image_name):
    upload = start_upload(api, image_name, CLOUDS[:1])
    context = ssl.create_default_context(cafile=str(api.pki.ca_file))
    context.load_cert_chain(str(live.cert_file))
    conn = http.client.HTTPSConnection("127.0.0.1", live.server.port, context=context, timeout=30)
    conn.putrequest("PUT", upload["upload_url"].split(str(live.server.port), 1)[1])
    conn.putheader("Content-Type", "application/octet-stream")
    conn.putheader("Content-Length", str(10 * BIG))
    conn.endheaders()  # not one byte of the body follows: the answer must not wait for it
    response = conn.getresponse()
    assert response.status == 413 and b"upload_max_bytes" in response.read()
    conn.close()


def test_curl_T_sends_a_file_as_it_is(devcloud, live, api, image_name, tmp_path):
    source = tmp_path / "disk.img"
    source.write_bytes(b"".join(random_chunks(image_name, 2 * MiB)))
    upload = start_upload(api, image_name, CLOUDS[:1])
    result = subprocess.run(
        [
            "curl",
            "--silent",
            "--show-error",
            "--fail-with-body",
            "--cert",
            str(live.cert_file),
            "--cacert",
            str(api.pki.ca_file),
            "-T",
            str(source),
            upload["upload_url"],
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert '"state":"received"' in result.stdout.replace(
        " ", ""
    ) and '"job_state":"done"' in result.stdout.replace(" ", "")
    (image,) = images_named(devcloud, image_name)["devcloud-1"]
    assert image.properties["glint_sha256"] == hashlib.sha256(source.read_bytes()).hexdigest()


# The command line


class CuttingProxy:
    """A loopback TCP proxy that breaks the first connection carrying more than ``cut`` bytes to the
    client, or with ``upstream`` to the server (a network failure mid-download or mid-upload, which
    the real server cannot be asked to show)."""

    def __init__(self, port: int, cut: int, upstream: bool = False):
        self.port, self.cut, self.cuts, self.upstream = port, cut, 0, upstream
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.address = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.port))
            cut_up, cut_down = (self, None) if self.upstream else (None, self)
            for pipe in ((client, upstream, cut_up), (upstream, client, cut_down)):
                threading.Thread(target=self._pipe, args=pipe, daemon=True).start()

    def _pipe(self, source, sink, counter):
        moved = 0
        try:
            while data := source.recv(65536):
                sink.sendall(data)
                moved += len(data)
                if counter is not None and self.cuts == 0 and moved > self.cut:
                    self.cuts += 1
                    break
        except OSError:
            pass
        for sock in (source, sink):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def close(self):
        self.listener.close()


@pytest.fixture
def cli(tmp_path, live, pki):
    env = dict(os.environ, GLINT_CLIENT_CONFIG=str(tmp_path / "client.json"))

    def run(*args: str, url: str | None = None) -> subprocess.CompletedProcess:
        if url:
            login = subprocess.run(
                [
                    GLINT,
                    "login",
                    "--url",
                    url,
                    "--cert",
                    str(live.cert_file),
                    "--ca-file",
                    str(pki.ca_file),
                ],
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert login.returncode == 0, login.stderr
        return subprocess.run(
            [GLINT, *args], env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path
        )

    return run


def test_cli_upload_then_download_resumes_by_itself(devcloud, live, api, cli, image_name, tmp_path):
    data = b"".join(random_chunks(image_name, 8 * MiB))
    source = tmp_path / "disk.img"
    source.write_bytes(data)

    result = cli(
        "upload",
        str(source),
        "--name",
        image_name,
        "--to",
        "devcloud-1",
        "--to",
        "devcloud-2",
        "--group",
        LIVE_GROUP,
        "--wait",
        url=live.url,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert (
        "Uploading disk.img" in result.stderr
        and f"sha256 {hashlib.sha256(data).hexdigest()}" in result.stdout
    )
    assert "devcloud-1: copied" in result.stdout and "devcloud-2: copied" in result.stdout
    api.row(image_name, ("devcloud-1", "devcloud-2"))

    proxy = CuttingProxy(live.server.port, cut=3 * MiB)
    try:
        result = cli(
            "download", image_name, "--group", LIVE_GROUP, url=f"https://127.0.0.1:{proxy.address}"
        )
    finally:
        proxy.close()
    assert result.returncode == 0, result.stdout + result.stderr
    assert proxy.cuts == 1 and "transfer broke off" in result.stderr, "the first connection was cut"
    assert "verified" in result.stdout
    assert (tmp_path / f"{image_name}.img").read_bytes() == data

    # A partial file from an earlier run is resumed, not started over.
    (tmp_path / "again.img.part").write_bytes(data[: 5 * MiB])
    result = cli("download", image_name, "--group", LIVE_GROUP, "-o", "again.img")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"resuming at byte {5 * MiB}" in result.stderr
    assert (tmp_path / "again.img").read_bytes() == data


def test_cli_upload_resumes_by_itself_after_the_connection_broke(
    devcloud, live, api, cli, image_name, tmp_path
):
    data = b"".join(random_chunks(image_name, 24 * MiB))
    source = tmp_path / "disk.img"
    source.write_bytes(data)
    proxy = CuttingProxy(live.server.port, cut=10 * MiB, upstream=True)
    try:
        result = cli(
            "upload",
            str(source),
            "--name",
            image_name,
            "--to",
            "devcloud-1",
            "--to",
            "devcloud-2",
            "--group",
            LIVE_GROUP,
            "--wait",
            url=f"https://127.0.0.1:{proxy.address}",
        )
    finally:
        proxy.close()

    assert result.returncode == 0, result.stdout + result.stderr
    assert proxy.cuts == 1 and "upload broke off" in result.stderr, result.stderr
    offset = int(result.stderr.split("resuming at byte ")[1].split()[0])
    assert 0 < offset < 11 * MiB, "resumed from what had arrived (the cut is at 10 MiB)"
    sha256 = hashlib.sha256(data).hexdigest()
    assert f"sha256 {sha256}" in result.stdout and ": received" in result.stdout
    assert "devcloud-1: copied" in result.stdout and "devcloud-2: copied" in result.stdout
    for cloud in ("devcloud-1", "devcloud-2"):
        (image,) = images_named(devcloud, image_name)[cloud]
        assert (image.status, image.properties["glint_sha256"]) == ("active", sha256)


def test_cli_upload_resume_sends_the_rest_of_an_interrupted_upload(
    devcloud, live, api, cli, image_name, tmp_path
):
    data = b"".join(random_chunks(image_name, 6 * MiB))
    source = tmp_path / "disk.img"
    source.write_bytes(data)
    upload = start_upload(
        api,
        image_name,
        ("devcloud-1",),
        size=len(data),
        checksum=f"sha256:{hashlib.sha256(data).hexdigest()}",
    )

    def gives_up():  # a client that dies after 2 MiB
        yield data[: 2 * MiB]
        raise RuntimeError("the client died")

    with pytest.raises(RuntimeError):
        put(api, upload, gives_up(), len(data))
    _wait_for(
        lambda: api.get(f"uploads/{upload['id']}/")["state"] == "interrupted",
        "the upload interrupted",
    )
    other = tmp_path / "other.img"
    other.write_bytes(data[:-1] + b"?")
    refused = cli("upload", str(other), "--resume", str(upload["id"]), url=live.url)
    assert refused.returncode == 1 and "not the file of upload" in refused.stderr, refused.stderr

    result = cli("upload", str(source), "--resume", str(upload["id"]), "--wait")

    assert result.returncode == 0, result.stdout + result.stderr
    assert f"resuming at byte {2 * MiB}" in result.stderr and ": received" in result.stdout
    (image,) = images_named(devcloud, image_name)["devcloud-1"]
    sha256 = hashlib.sha256(data).hexdigest()
    assert (image.status, image.properties["glint_sha256"]) == ("active", sha256)


def test_cli_upload_of_a_web_link_waits_for_the_clouds_own_fetch(
    devcloud, live, api, cli, web, image_name
):
    data = b"".join(random_chunks(image_name, 2 * MiB))
    sha256 = web.add(f"/{image_name}.raw", data)

    result = cli(
        "upload",
        "--url",
        web.url(f"/{image_name}.raw"),
        "--checksum",
        f"sha256:{sha256}",
        "--name",
        image_name,
        "--to",
        "devcloud-1",
        "--to",
        "devcloud-3",
        "--group",
        LIVE_GROUP,
        "--wait",
        url=live.url,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    job = api.get(f"jobs/{result.stdout.split('job ')[1].split(':')[0]}/")
    assert "devcloud-1: pulled" in result.stdout and "devcloud-3: pulled" in result.stdout, [
        t["warnings"] for t in job["targets"]
    ]
    assert (
        web.agents(f"/{image_name}.raw")[0] == "Glint"
        and len(web.agents(f"/{image_name}.raw")) == 3
    )
    api.row(image_name, ("devcloud-1", "devcloud-3"))


@pytest.mark.parametrize(
    "args", [(), ("disk.img", "--url", "http://127.0.0.1/x"), ("disk.img", "--checksum", "x")]
)
def test_cli_upload_wants_a_file_or_a_link(live, cli, tmp_path, args):
    (tmp_path / "disk.img").write_bytes(b"x")
    result = cli("upload", *args, "--to", "devcloud-1", url=live.url)
    assert result.returncode == 2 and "--url" in result.stderr, result.stderr


# Helpers


def _quietly(func, *args):
    try:
        return func(*args)
    except requests.RequestException as exc:  # the server stops reading a cancelled upload
        return exc


def _wait_for(ready, what: str, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = ready()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"never saw {what}")


# Downloads in the formats other clouds import


def _disk(directory: Path, name: str) -> tuple[Path, bytes]:
    """A 4 MiB disk with random bytes in its first MiB, as a qcow2 file; and its raw bytes."""
    raw = directory / "disk.raw"
    raw.write_bytes(b"".join(random_chunks(name, MiB)) + bytes(3 * MiB))
    qcow2 = directory / "disk.qcow2"
    subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw, qcow2], check=True)
    return qcow2, raw.read_bytes()


def _qemu_info(path: Path, qemu_format: str | None = None) -> dict:
    """What ``qemu-img info`` says of ``path``; probed unless ``qemu_format`` is named (a fixed
    vhd, its footer at the end, probes as raw)."""
    named = ["-f", qemu_format] if qemu_format else []
    result = subprocess.run(
        ["qemu-img", "info", "--output=json", *named, str(path)], check=True, capture_output=True
    )
    return json.loads(result.stdout)


def _as_raw(path: Path, qemu_format: str) -> bytes:
    out = path.with_suffix(".back.raw")
    subprocess.run(["qemu-img", "convert", "-f", qemu_format, "-O", "raw", path, out], check=True)
    return out.read_bytes()


def test_cli_downloads_the_formats_other_clouds_import(
    devcloud, live, api, cli, image_name, tmp_path
):
    qcow2, disk = _disk(tmp_path, image_name)
    result = cli(
        "upload", str(qcow2), "--name", image_name, "--to", "devcloud-1", "--group", LIVE_GROUP,
        "--wait", url=live.url,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr

    for fmt, qemu_format, extra in (
        ("vmdk", "vmdk", {"create-type": "streamOptimized"}),
        ("vhd", "vpc", {}),
        ("raw", "raw", {}),
    ):
        result = cli("download", image_name, "--group", LIVE_GROUP, "--format", fmt)
        assert result.returncode == 0, result.stdout + result.stderr
        assert f"converting the image to {fmt}" in result.stderr
        assert "convert" in result.stdout and "done" in result.stdout, "the job's progress line"
        (saved,) = [p for p in tmp_path.glob(f"{image_name}*") if p.suffix == f".{fmt}"] or [
            tmp_path / f"{image_name}.img"
        ]
        info = _qemu_info(saved, "vpc" if fmt == "vhd" else None)
        assert info["format"] == qemu_format, info
        assert info["virtual-size"] >= len(disk)
        for key, value in extra.items():
            assert info["format-specific"]["data"][key] == value
        assert _as_raw(saved, qemu_format)[: len(disk)] == disk, f"the {fmt} file holds the disk"
        assert "sha256" in result.stdout and "verified" in result.stdout

    # vhd for Azure: fixed (the disk's bytes, then the footer), a whole number of MiB.
    vhd = (tmp_path / f"{image_name}.vhd").read_bytes()
    virtual_size = _qemu_info(tmp_path / f"{image_name}.vhd", "vpc")["virtual-size"]
    assert virtual_size % MiB == 0 and len(vhd) == virtual_size + 512
    assert vhd[-512:].startswith(b"conectix") and vhd[: len(disk)] == disk

    # gce: disk.raw in a gzip-compressed tar.
    result = cli("download", image_name, "--group", LIVE_GROUP, "--format", "gce", "-o", "g.tgz")
    assert result.returncode == 0, result.stdout + result.stderr
    listing = subprocess.run(
        ["tar", "-tzf", str(tmp_path / "g.tgz")], check=True, capture_output=True, text=True
    )
    assert listing.stdout.split() == ["disk.raw"]

    # Asked again, the vmdk comes from the cache: no second conversion.
    result = cli("download", image_name, "--group", LIVE_GROUP, "--format", "vmdk", "-o", "2.vmdk")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "converting" not in result.stderr
    assert (tmp_path / "2.vmdk").read_bytes() == (tmp_path / f"{image_name}.vmdk").read_bytes()

    # A range of the converted file, and an unknown format refused with the formats named.
    row, _version = api.row(image_name, ("devcloud-1",))
    path = f"images/{row['id']}/download/"
    part = api.call("GET", path, params={"format": "vmdk"}, headers={"Range": "bytes=0-3"})
    assert part.status_code == 206 and part.content == b"KDMV"
    vmdk = (tmp_path / "2.vmdk").read_bytes()
    assert part.headers["ETag"] == f'"sha256-{hashlib.sha256(vmdk).hexdigest()}"'
    bad = api.call("GET", path, params={"format": "ova"})
    assert bad.status_code == 400 and "raw, qcow2, vmdk, vhd, gce" in bad.text


def test_a_conversion_that_fails_says_why_and_leaves_nothing(
    devcloud, live, api, cli, image_name, tmp_path
):
    # A small qcow2 of a 1 TiB disk: its raw form would not fit in the content cache.
    subprocess.run(
        ["qemu-img", "create", "-q", "-f", "qcow2", "big.qcow2", "1T"], check=True, cwd=tmp_path
    )
    result = cli(
        "upload", str(tmp_path / "big.qcow2"), "--name", image_name, "--to", "devcloud-1",
        "--group", LIVE_GROUP, "--wait", url=live.url,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr

    result = cli("download", image_name, "--group", LIVE_GROUP, "--format", "raw")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "more than the whole quota" in result.stdout, result.stdout
    assert "did not succeed" in result.stderr and "retrying" not in result.stdout
    assert not list(tmp_path.glob(f"{image_name}*")), "no file is written"
    cache = live.server.data_dir / "cache"
    source_sha256 = hashlib.sha256((tmp_path / "big.qcow2").read_bytes()).hexdigest()
    assert not list((cache / "converted").glob(f"{source_sha256}*")), "no conversion is kept"
    assert not list((cache / "spool").iterdir()), "no spool is left behind"
