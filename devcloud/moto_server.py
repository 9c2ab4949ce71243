"""``python -m devcloud.moto_server --port N``: moto's server on 127.0.0.1, patched like EC2.

The patches (``devcloud.moto_patches``) must be in the process that serves the requests, so
devcloud starts this launcher instead of moto's own ``moto_server`` command.

moto's own command serves through Werkzeug's development server, which ends every connection
after one answer (``Connection: close``). EC2 keeps connections open, and a client of the peer
would otherwise pay a TCP connect (and Glint its address check) for each of the thousands of
EBS blocks of a copy, so this serves moto's WSGI application with cheroot, which keeps them
open as EC2 does.
"""

from __future__ import annotations

import argparse
import contextlib
import signal

from cheroot import wsgi
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

from . import moto_patches

#: Requests served at once: the copy engine sends 8 EBS blocks at a time per copy.
THREADS = 32


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m devcloud.moto_server")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    moto_patches.apply()
    server = wsgi.Server(
        ("127.0.0.1", args.port),
        DomainDispatcherApplication(create_backend_app),
        numthreads=THREADS,
        server_name="moto",
    )
    # SIGTERM as SIGINT: safe_start stops the server on KeyboardInterrupt, then re-raises it
    # (stop() called from a handler would wait for the loop it interrupted).
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    with contextlib.suppress(KeyboardInterrupt):
        server.safe_start()


if __name__ == "__main__":
    main()
