"""``glint worker`` processes for the tests of the distributed runner, started on a live server's
data directory and killed the way a dead machine dies."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.live import GLINT, glint_env

START_TIMEOUT = 60  # seconds a process may take to be ready


class Workers:
    """``glint worker`` processes on the live server's data directory (so its database and
    credential keys), each in its own session so a kill takes its pool processes too."""

    def __init__(self, live):
        self.live = live
        self.processes: list[tuple[subprocess.Popen, Path]] = []

    def start(self, *args: str) -> subprocess.Popen:
        """Start ``glint worker`` with ``args`` (e.g. ``--site a``) and wait until it is ready."""
        data_dir = self.live.server.data_dir
        log_path = data_dir / f"worker-{len(list(data_dir.glob('worker-*.log')))}.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [GLINT, "worker", "--concurrency", "2", *args],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=glint_env(self.live.server.data_dir, **self.live.settings),
                start_new_session=True,
            )
        self.processes.append((process, log_path))
        deadline = time.monotonic() + START_TIMEOUT
        while " ready." not in log_path.read_text(errors="replace"):
            if process.poll() is not None or time.monotonic() > deadline:
                self.stop_all()
                pytest.fail(
                    f"glint worker did not get ready:\n{log_path.read_text(errors='replace')}"
                )
            time.sleep(0.1)
        return process

    @staticmethod
    def name(process: subprocess.Popen) -> str:
        """The worker's name, as its heartbeat and the targets it ran show it."""
        return f"glint-{process.pid}@{socket.gethostname()}"

    def kill(self, process: subprocess.Popen) -> None:
        """SIGKILL the worker and its pool processes: a machine that died, no clean-up runs."""
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)

    def stop(self, process: subprocess.Popen) -> None:
        """SIGTERM (Celery's warm shutdown), SIGKILL if it lingers."""
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill(process)
        else:  # its pool processes may outlive it
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def stop_all(self) -> None:
        for process, _log in self.processes:
            self.stop(process)

    def logs(self) -> str:
        return "".join(log.read_text(errors="replace") for _process, log in self.processes)
