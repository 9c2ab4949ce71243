"""A throw-away ``redis-server`` for tests: loopback only, no persistence, a password, killed at
the end; it can be stopped and started again on its port, as an outage of the broker."""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.live import free_port

START_TIMEOUT = 10  # seconds redis-server may take to answer


class RedisServer:
    """One ``redis-server`` on a free 127.0.0.1 port in ``directory``."""

    def __init__(self, directory: Path, password: str):
        self.directory, self.password, self.port = directory, password, free_port()
        self.url = f"redis://:{password}@127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        log = self.directory / "redis.log"
        self.process = subprocess.Popen(
            [
                "/usr/bin/redis-server",
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
                "--requirepass",
                self.password,
            ],
            stdout=log.open("ab"),
            stderr=subprocess.STDOUT,
        )
        client = redis.Redis(
            host="127.0.0.1", port=self.port, password=self.password, socket_timeout=5
        )
        try:
            deadline = time.monotonic() + START_TIMEOUT
            while True:
                try:
                    client.ping()
                    return
                except redis.ConnectionError:
                    if self.process.poll() is not None or time.monotonic() > deadline:
                        self.stop()
                        pytest.fail(f"redis-server did not start:\n{log.read_text()}")
                    time.sleep(0.1)
        finally:
            client.close()

    def stop(self) -> None:
        """Kill it: what it held (no persistence) is lost, as when a broker's machine dies."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None


@contextlib.contextmanager
def running_redis(directory: Path, password: str) -> Iterator[str]:
    """Run redis-server on a free 127.0.0.1 port in ``directory``; yield its URL."""
    with running_redis_server(directory, password) as server:
        yield server.url


@contextlib.contextmanager
def running_redis_server(directory: Path, password: str) -> Iterator[RedisServer]:
    """Run redis-server on a free 127.0.0.1 port in ``directory``; yield it (to stop and start)."""
    server = RedisServer(directory, password)
    server.start()
    try:
        yield server
    finally:
        server.stop()
