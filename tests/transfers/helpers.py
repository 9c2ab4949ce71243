"""Helpers of the upload and download tests: disk images made with qemu-img, a loopback web
server, and a web-link upload run to its end in this process."""

from __future__ import annotations

import hashlib
import http.server
import json
import subprocess
import threading
from pathlib import Path

from glint.jobs.models import Job
from tests.jobs.helpers import run_in_process

#: Web links Glint refuses without an allow-list, before any connection: every scheme but
#: http(s), and loopback, link-local, private, shared, reserved and multicast addresses in
#: their many spellings (decimal, octal, hex, short, IPv4-mapped and 6to4 IPv6).
REFUSED = [
    "file:///etc/passwd",
    "ftp://127.0.0.1/image",
    "gopher://127.0.0.1:70/_",
    "http://127.0.0.1/image",
    "http://localhost/image",
    "http://[::1]/image",
    "http://169.254.169.254/latest/meta-data/",
    "http://10.0.0.1/image",
    "http://192.168.1.1/image",
    "http://100.64.0.1/image",
    "http://224.0.0.1/image",
    "http://0.0.0.0/image",
    "http://240.0.0.1/image",
    "http://2130706433/image",
    "http://0177.0.0.1/image",
    "http://0x7f.1/image",
    "http://127.1/image",
    "http://[::ffff:127.0.0.1]/image",
    "http://[::ffff:a9fe:a9fe]/latest",
    "http://[fe80::1]/image",
    "http://[2002:7f00:1::]/image",
    "http://[fd00::1]/image",
]


def qemu_image(directory: Path, fmt: str, *options: str, size: str = "1M") -> Path:
    """A real, empty disk image made by ``qemu-img create -f FMT``.

    Runs in ``directory``: qemu-img creates a relative ``data_file`` in its working directory.
    """
    path = directory / f"disk.{fmt}"
    subprocess.run(
        ["qemu-img", "create", "-q", "-f", fmt, *options, str(path), size],
        check=True,
        cwd=directory,
    )
    return path


#: ``WebServer.for_clouds`` value: headers, then silence.
STALL = b"stall"


class WebServer:
    """A loopback HTTP server with files and redirects, recording the requests it got.

    ``for_clouds`` serves other bytes at a path to every client but Glint (Glint's fetcher says
    ``User-Agent: Glint``; Glance's web-download does not): a 404 (None) plays a link the
    cloud's network cannot reach, other bytes a link that changed between the two fetches,
    :data:`STALL` a link that sends its headers and then nothing (until the server closes).
    """

    def __init__(self, host: str = "127.0.0.1"):
        self.host = host
        self.files: dict[str, bytes] = {}
        self.unsized: set[str] = set()  # sent without Content-Length (the end is the close)
        self.stalled: set[str] = set()  # headers, then silence
        self.stall_after: dict[str, int] = {}  # a file's first bytes, then silence
        self.redirects: dict[str, str] = {}
        self.for_clouds: dict[str, bytes | None] = {}
        self.requests: list[dict] = []
        self.stop = threading.Event()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                agent = self.headers.get("User-Agent", "")
                server.requests.append(
                    {
                        "path": self.path,
                        "host": self.headers.get("Host"),
                        "agent": agent,
                        "authorization": self.headers.get("Authorization"),
                    }
                )
                files = server.files
                if agent != "Glint" and self.path in server.for_clouds:
                    files = (
                        {self.path: server.for_clouds[self.path]}
                        if server.for_clouds[self.path]
                        else {}
                    )
                if self.path in server.redirects:
                    self.send_response(302)
                    self.send_header("Location", server.redirects[self.path])
                    self.end_headers()
                elif self.path in server.stalled or files.get(self.path) is STALL:
                    self.send_response(200)
                    self.send_header("Content-Length", "1000")
                    self.end_headers()
                    server.stop.wait(10)
                elif self.path in files:
                    body = files[self.path]
                    self.send_response(200)
                    if self.path not in server.unsized:
                        self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    if self.path in server.stall_after:
                        self.wfile.write(body[: server.stall_after[self.path]])
                        self.wfile.flush()
                        server.stop.wait(60)
                        return
                    self.wfile.write(body)
                else:
                    self.send_error(404)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer((host, 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str, host: str | None = None) -> str:
        return f"http://{host or self.host}:{self.port}{path}"

    def add(self, path: str, body: bytes) -> str:
        self.files[path] = body
        return hashlib.sha256(body).hexdigest()

    def agents(self, path: str) -> list[str]:
        """The User-Agent of each request for ``path``, in order."""
        return [r["agent"] for r in self.requests if r["path"] == path]

    def close(self):
        self.stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def post_upload(client, group, repos, **fields):
    """``POST /api/v1/uploads/``: an upload of ``group`` to ``repos`` with the other ``fields``."""
    body = {"group": group.pk, "targets": [r.name for r in repos], **fields}
    return client.post("/api/v1/uploads/", json.dumps(body), content_type="application/json")


def link_upload(client, group, repos, url: str, **fields):
    """``POST /api/v1/uploads/`` of a web link to ``repos``."""
    return post_upload(client, group, repos, url=url, **fields)


def run_job(job_id: int) -> Job:
    """What the job runner of ``glint serve`` does with the queued job, here and now; the job
    after."""
    run_in_process(job_id)
    return Job.objects.get(pk=job_id)
