"""Conformance: a server-side ``web-download`` import from a loopback HTTP server.

The image is served by :mod:`http.server` in a thread bound to 127.0.0.1; devcloud's Glances
allow web-download from loopback (docs/architecture.md "Tests, devcloud and network safety").
The import is asynchronous: the test polls the record until Glance marks it active, or reports
the import failed.
"""

from __future__ import annotations

import hashlib
import http.server
import threading
import time

import pytest

from .streams import MiB, seeded_chunks

pytestmark = pytest.mark.devcloud

IMPORT_TIMEOUT = 120


@pytest.fixture(scope="module")
def image_server():
    """Serves ``/image.raw`` (2 MiB) on a free loopback port; yields (url, md5, size)."""
    payload = b"".join(seeded_chunks(7, 2 * MiB))  # small enough to hold

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's naming
            if self.path != "/image.raw":
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield (
            f"http://127.0.0.1:{server.server_address[1]}/image.raw",
            hashlib.md5(payload).hexdigest(),
            len(payload),
        )
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.kinds("openstack", why="EC2 has no server-side import from a URL: Glint streams")
def test_web_download_import(target, new_record, image_server):
    url, md5, size = image_server
    if "web-download" not in target.driver.capabilities().import_methods:
        pytest.fail("web-download is not enabled on this cloud")
    record = new_record("webdl")
    target.driver.import_web_download(record.id, url)

    deadline = time.monotonic() + IMPORT_TIMEOUT
    while True:
        record = target.driver.get_image(record.id)
        failed = record.properties.get("os_glance_failed_import")
        if record.status == "active" or failed:
            break
        assert time.monotonic() < deadline, f"import still {record.status} after {IMPORT_TIMEOUT}s"
        time.sleep(0.5)
    assert not failed, f"Glance reports the import failed: {record.properties}"
    assert (record.status, record.size, record.checksum) == ("active", size, md5)
