"""A request body read through ``glint serve``'s server goes straight into reused chunk buffers,
and whatever an application leaves unread is still drained before the next request on the
connection (cheroot's own count of the body's bytes stays right)."""

from __future__ import annotations

import hashlib
import http.client
import os
import threading

import pytest

from glint.server.wsgi_server import GlintWSGIServer
from glint.transfers.sources import request_chunks

CHUNK = 256 * 1024
BODY = os.urandom(5 * CHUNK + 1234)


def app(environ, start_response):
    """Hashes the first ``?n`` bytes of the body (all without it) as ``request_chunks`` reads
    them, and tells how many distinct buffers the chunks were views of."""
    length = int(environ["CONTENT_LENGTH"] or 0)
    wanted = int(environ["QUERY_STRING"] or length)
    digest, buffers, kinds = hashlib.sha256(), set(), set()
    for chunk in request_chunks(environ["wsgi.input"], wanted, CHUNK):
        digest.update(chunk)
        kinds.add(type(chunk).__name__)
        if isinstance(chunk, memoryview):
            buffers.add(id(chunk.obj))
    answer = f"{digest.hexdigest()} {len(buffers)} {','.join(sorted(kinds))}".encode()
    start_response("200 OK", [("Content-Length", str(len(answer)))])
    return [answer]


@pytest.fixture
def server():
    running = GlintWSGIServer(
        ("127.0.0.1", 0), app, numthreads=2, direct_tls=False, trusted_proxies=[]
    )
    running.prepare()
    thread = threading.Thread(target=running.serve, daemon=True)
    thread.start()
    yield running
    running.stop()
    thread.join(timeout=10)


def post(connection, path: str) -> str:
    connection.request("POST", path, body=BODY)
    response = connection.getresponse()
    assert response.status == 200 and not response.will_close
    return response.read().decode()


def test_a_body_is_read_into_reused_buffers(server):
    connection = http.client.HTTPConnection("127.0.0.1", server.bind_addr[1], timeout=10)
    digest, buffers, kinds = post(connection, "/").split()
    assert digest == hashlib.sha256(BODY).hexdigest()
    # six chunks, read into the pool's buffers: a view each, of at most two buffers
    assert kinds == "memoryview" and int(buffers) <= 2


def test_the_unread_rest_of_a_body_is_drained_for_the_next_request(server):
    connection = http.client.HTTPConnection("127.0.0.1", server.bind_addr[1], timeout=10)
    part = 2 * CHUNK + 10
    assert post(connection, f"/?{part}").split()[0] == hashlib.sha256(BODY[:part]).hexdigest()
    # the same connection: the rest of the first body must not be read as this request
    assert post(connection, "/").split()[0] == hashlib.sha256(BODY).hexdigest()
