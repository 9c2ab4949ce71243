"""The ``cli`` fixture: ``glint`` run as a person runs it, with a client config of its own."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.cli.helpers import GLINT


@pytest.fixture
def cli(tmp_path):
    """Run ``glint`` as a person would, with its own client config file."""
    env = dict(os.environ, GLINT_CLIENT_CONFIG=str(tmp_path / "client.json"))

    def run(*args: str, cwd: Path | None = None, **extra_env: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [GLINT, *args],
            env={**env, **extra_env},
            capture_output=True,
            text=True,
            timeout=120,
            cwd=cwd,
        )

    return run
