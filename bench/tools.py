"""Tools the bench runs but Glint does not need: python-openstackclient (the manual route) and
py-spy (the profile). They live in a virtualenv of their own, made with pip the first time the
bench runs and reused after (``~/.cache/glint/bench-tools``), so the project's pins stay untouched.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

__all__ = ["tool", "tools_venv"]

VENV = Path(os.environ.get("GLINT_BENCH_TOOLS", Path.home() / ".cache" / "glint" / "bench-tools"))
PACKAGES = ("python-openstackclient", "py-spy")


def tool(name: str) -> Path | None:
    """The tool's executable in the bench's virtualenv, if it is installed."""
    path = VENV / "bin" / name
    return path if path.exists() else None


def tools_venv(install: bool, log=print) -> Path | None:
    """The tools' virtualenv; with ``install``, create it and pip-install what is missing.

    Returns None when the tools are missing and may not be installed (the smoke test: tests
    never reach beyond this machine).
    """
    if all(tool(name) for name in ("openstack", "py-spy")):
        return VENV
    if not install:
        return None
    log(f"bench: installing {', '.join(PACKAGES)} into {VENV} (once)")
    subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    subprocess.run([str(VENV / "bin" / "pip"), "install", "--quiet", *PACKAGES], check=True)
    return VENV
