"""A full ``glint serve`` refuses at once with 503 + Retry-After and still answers its probes; an
idle keep-alive connection holds no thread. One worker with one thread makes "full" exact: a
client that sends half a request holds the thread while it reads, a second waits in the queue."""

from __future__ import annotations

import http.client
import socket
import time

import pytest

from tests.live import client_context, start_server

HELD_TIMEOUT = 15  # longer than any answer here may take


@pytest.fixture(scope="module")
def server(pki, tmp_path_factory):
    running = start_server(
        tmp_path_factory.mktemp("overload"),
        *pki.serve_args,
        "--threads",
        "1",
        GLINT_WORKERS="1",
    )
    yield running
    running.stop()


def connect(server, pki):
    raw = socket.create_connection(("127.0.0.1", server.port), timeout=HELD_TIMEOUT)
    return client_context(pki).wrap_socket(raw, server_hostname="127.0.0.1")


def get(server, pki, path: str) -> http.client.HTTPResponse:
    connection = http.client.HTTPSConnection(
        "127.0.0.1", server.port, context=client_context(pki), timeout=HELD_TIMEOUT
    )
    connection.request("GET", path)
    response = connection.getresponse()
    response.read()
    connection.close()
    return response


def test_an_idle_keep_alive_connection_does_not_stop_another_client(server, pki):
    idle = http.client.HTTPSConnection(
        "127.0.0.1", server.port, context=client_context(pki), timeout=HELD_TIMEOUT
    )
    idle.request("GET", "/healthz")
    first = idle.getresponse()
    first.read()
    assert first.status == 200 and not first.will_close  # kept alive, now idle
    try:
        started = time.monotonic()
        assert get(server, pki, "/static/glint/htmx.min.js").status == 200
        # with the thread held by the idle connection this would wait for cheroot's 10 s timeout
        assert time.monotonic() - started < 5
    finally:
        idle.close()


def test_a_full_server_answers_503_with_retry_after_and_still_answers_probes(server, pki):
    held = []
    try:
        for _ in range(2):  # one in the only thread, one in the queue of one
            tls = connect(server, pki)
            tls.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # headers never end
            held.append(tls)
            time.sleep(0.5)
        refused = get(server, pki, "/api/v1/whoami/")
        assert refused.status == 503
        assert refused.getheader("Retry-After") == "1"
        assert get(server, pki, "/healthz").status == 200
        assert get(server, pki, "/readyz").status == 200
    finally:
        for tls in held:
            tls.close()
    time.sleep(0.5)
    assert get(server, pki, "/healthz").status == 200  # served normally again


def test_a_refused_request_without_a_body_keeps_its_connection(server, pki):
    held = []
    client = http.client.HTTPSConnection(
        "127.0.0.1", server.port, context=client_context(pki), timeout=HELD_TIMEOUT
    )
    try:
        for _ in range(2):
            tls = connect(server, pki)
            tls.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            held.append(tls)
            time.sleep(0.5)
        client.request("GET", "/api/v1/whoami/")
        refused = client.getresponse()
        refused.read()
        assert refused.status == 503 and not refused.will_close, "no new TLS handshake needed"
        client.request("POST", "/api/v1/plans/", body=b"{}")
        with_body = client.getresponse()
        with_body.read()
        assert with_body.status == 503 and with_body.will_close, "an unread body closes it"
        client.close()
        client.request("GET", "/api/v1/whoami/")
        client.getresponse().read()  # refused again, on a new connection kept open
        for tls in held:
            tls.close()
        held.clear()
        time.sleep(0.5)
        client.request("GET", "/healthz")
        again = client.getresponse()
        again.read()
        assert again.status == 200, "the kept connection is served once a thread is free"
    finally:
        for tls in held:
            tls.close()
        client.close()
