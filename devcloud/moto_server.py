"""``python -m devcloud.moto_server --port N``: moto's server on 127.0.0.1, patched like EC2.

The patches (``devcloud.moto_patches``) must be in the process that serves the requests, so
devcloud starts this launcher instead of moto's own ``moto_server`` command.
"""

from __future__ import annotations

import argparse

from moto import server

from . import moto_patches


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m devcloud.moto_server")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    moto_patches.apply()
    server.main(["--host", "127.0.0.1", "--port", str(args.port)])


if __name__ == "__main__":
    main()
