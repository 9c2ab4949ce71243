"""Logging the command line in to a live ``glint serve``."""

from __future__ import annotations

import sys
from pathlib import Path

GLINT = str(Path(sys.executable).parent / "glint")


def login(cli, live_glint, pki, *extra, cert: Path | None = None):
    """``glint login`` to ``live_glint`` as its admin (or as the holder of ``cert``)."""
    return cli(
        "login",
        "--url",
        live_glint.url,
        "--cert",
        str(cert or live_glint.cert_file),
        "--ca-file",
        str(pki.ca_file),
        *extra,
    )
