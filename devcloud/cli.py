"""``python -m devcloud up|stop|start|down`` (docs/architecture.md "Tests, devcloud and network
safety").

``up`` prints ``clouds.yaml`` on stdout and its progress on stderr, so
``python -m devcloud up ... > clouds.yaml`` works. Every failure exits non-zero with the
reason (and the failing service's log tail) on stderr.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time

from . import core
from .errors import DevcloudError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m devcloud", description="Real Keystone + Glance on 127.0.0.1."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", help="start a devcloud and print its clouds.yaml")
    up.add_argument("--dir", required=True, help="where state, configs, logs and clouds.yaml go")
    up.add_argument("--clouds", type=int, default=1, help="number of Glances (regions)")
    up.add_argument("--keystones", type=int, default=1, help="number of Keystones")
    up.add_argument("--projects-per-cloud", type=int, default=1)
    up.add_argument("--tls", action="store_true", help="HTTPS everywhere, with a CA of its own")
    up.add_argument(
        "--sha256-cloud",
        type=int,
        action="append",
        default=[],
        metavar="I",
        help="cloud I's Glance uses hashing_algorithm sha256 (repeatable)",
    )
    up.add_argument(
        "--token-expiration",
        type=int,
        metavar="SECONDS",
        help="Keystone token lifetime (default: Keystone's, 3600)",
    )
    up.add_argument(
        "--web-download-port",
        type=int,
        action="append",
        default=[],
        metavar="PORT",
        help="only allow web-download from these loopback ports (default: any)",
    )
    up.add_argument(
        "--ec2",
        action="store_true",
        help="also start an EC2 (moto, patched like EC2); its endpoint and keys go to ec2.json",
    )

    for name, text in (
        ("stop", "stop one cloud's Glance"),
        ("start", "start one cloud's Glance again, on the same port"),
    ):
        cmd = sub.add_parser(name, help=text)
        cmd.add_argument("--cloud", required=True, help="a clouds.yaml name, e.g. devcloud-2")
        cmd.add_argument("--dir", required=True)

    down = sub.add_parser("down", help="stop everything this devcloud started")
    down.add_argument("--dir", required=True)
    return parser


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    # A killed `up` (CI time-out, `kill`) unwinds like Ctrl-C, so it stops what it started.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        if args.command == "up":
            started = time.monotonic()
            dc = core.up(
                args.dir,
                clouds=args.clouds,
                keystones=args.keystones,
                projects_per_cloud=args.projects_per_cloud,
                tls=args.tls,
                sha256_clouds=args.sha256_cloud,
                token_expiration=args.token_expiration,
                web_download_ports=args.web_download_port,
                with_ec2=args.ec2,
            )
            print(
                f"devcloud: up in {time.monotonic() - started:.1f} s; "
                f"wrote {dc.clouds_yaml} and {dc.admin_clouds_yaml}",
                file=sys.stderr,
            )
            sys.stdout.write(dc.clouds_yaml.read_text())
        elif args.command == "stop":
            core.Devcloud(args.dir).stop(args.cloud)
        elif args.command == "start":
            core.Devcloud(args.dir).start(args.cloud)
        elif args.command == "down":
            core.down(args.dir)
    except DevcloudError as err:
        print(f"devcloud {args.command}: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"devcloud {args.command}: interrupted", file=sys.stderr)
        return 130
    return 0
