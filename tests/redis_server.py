"""A throw-away ``redis-server`` for tests: loopback only, no persistence, a password, killed at
the end."""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.live import free_port


@contextlib.contextmanager
def running_redis(directory: Path, password: str) -> Iterator[str]:
    """Run redis-server on a free 127.0.0.1 port in ``directory``; yield its URL."""
    port = free_port()
    process = subprocess.Popen(
        [
            "/usr/bin/redis-server",
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(directory),
            "--requirepass",
            password,
        ],
        stdout=(directory / "redis.log").open("wb"),
        stderr=subprocess.STDOUT,
    )
    client = redis.Redis(host="127.0.0.1", port=port, password=password, socket_timeout=5)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(
                        f"redis-server did not start:\n{(directory / 'redis.log').read_text()}"
                    )
                time.sleep(0.1)
        yield f"redis://:{password}@127.0.0.1:{port}/0"
    finally:
        client.close()
        process.kill()
        process.wait(timeout=10)
