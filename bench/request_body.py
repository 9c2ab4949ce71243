"""What reading an upload's body costs in ``glint serve``, against cheroot's ``read`` (issue 13).

``python -m bench.request_body [--size MiB] [--rounds N]``

Starts Glint's own WSGI server (``GlintWSGIServer`` with its TLS adapter, on 127.0.0.1) with an
application that reads each request body with ``transfers.sources.request_chunks`` and drops it.
A client in this process PUTs ``--size`` MiB over TLS, alternately to be read through
``wsgi.input``'s ``readinto`` (what uploads do: straight into reused chunk buffers) and through
its ``read`` alone (the baseline: cheroot's pure-Python buffered reader, which allocates a
buffer for every TLS record it receives). Prints the reading thread's CPU-seconds per GiB
(``time.thread_time``) of each route, medians of the rounds, and their ratio.
"""

from __future__ import annotations

import argparse
import http.client
import os
import ssl
import statistics
import tempfile
import threading
import time
from pathlib import Path
from types import SimpleNamespace

from devcloud.pki import create_pki
from glint.clouds import CHUNK_SIZE
from glint.replication.chunk_memory import map_chunks_separately
from glint.server.wsgi_server import ClientChainTLSAdapter, GlintWSGIServer
from glint.transfers.sources import request_chunks

MIB = 1024 * 1024
ROUTES = ("readinto", "read")


def _server_context(directory: Path) -> ssl.SSLContext:
    """A TLS context with a throw-away certificate (devcloud's PKI) for the server."""
    pki = create_pki(directory)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki.cert_file, pki.key_file)
    return context


def measure(size_mib: int, rounds: int) -> dict[str, list[float]]:
    """CPU-seconds per GiB of the reading thread, per route, one figure per round."""
    spent: dict[str, list[float]] = {route: [] for route in ROUTES}
    last: dict[str, float] = {}

    def app(environ, start_response):
        body = environ["wsgi.input"]
        if environ["PATH_INFO"] == "/read":
            body = SimpleNamespace(read=body.read)  # no readinto: request_chunks reads
        started = time.thread_time()
        for _chunk in request_chunks(body, int(environ["CONTENT_LENGTH"]), CHUNK_SIZE):
            pass
        last["cpu"] = time.thread_time() - started
        start_response("204 No Content", [])
        return []

    with tempfile.TemporaryDirectory(prefix="glint-bench-body-") as directory:
        server = GlintWSGIServer(
            ("127.0.0.1", 0), app, numthreads=2, direct_tls=True, trusted_proxies=[]
        )
        server.ssl_adapter = ClientChainTLSAdapter(_server_context(Path(directory)))
        server.prepare()
        thread = threading.Thread(target=server.serve, daemon=True)
        thread.start()
        client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        client.check_hostname, client.verify_mode = False, ssl.CERT_NONE
        chunk = os.urandom(MIB)
        try:
            for _round in range(rounds):
                for route in ROUTES:
                    connection = http.client.HTTPSConnection(
                        "127.0.0.1", server.bind_addr[1], context=client, timeout=120
                    )
                    connection.request(
                        "PUT",
                        f"/{route}",
                        body=(chunk for _ in range(size_mib)),
                        headers={"Content-Length": str(size_mib * MIB)},
                    )
                    connection.getresponse().read()
                    connection.close()
                    spent[route].append(last["cpu"] * 1024 / size_mib)
        finally:
            server.stop()
            thread.join(timeout=10)
    return spent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.request_body", description=__doc__)
    parser.add_argument("--size", type=int, default=1024, help="MiB per request (1024)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of both routes (3)")
    args = parser.parse_args(argv)
    map_chunks_separately()  # as glint serve does before any thread streams an image
    spent = measure(args.size, args.rounds)
    medians = {route: statistics.median(values) for route, values in spent.items()}
    for route in ROUTES:
        rounds = ", ".join(f"{v:.2f}" for v in spent[route])
        print(f"request body via {route}: {medians[route]:.2f} CPU-s per GiB ({rounds})")
    print(f"request body: read / readinto: {medians['read'] / medians['readinto']:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
