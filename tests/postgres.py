"""PostgreSQL for tests: fresh databases on the test run's server (``scripts/test`` starts one and
names it in ``GLINT_DATABASE_URL``) for Glint processes of their own, and a way to line sessions
up at a lock."""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections.abc import Iterator

import psycopg
import pytest


@contextlib.contextmanager
def fresh_databases(count: int) -> Iterator[list[str]]:
    """``count`` new, empty databases; their URLs. Dropped afterwards."""
    server = os.environ.get("GLINT_DATABASE_URL", "")
    if not server.startswith("postgresql"):
        pytest.skip("no PostgreSQL server in GLINT_DATABASE_URL (scripts/test starts one)")
    names = [f"glint_{uuid.uuid4().hex[:10]}" for _ in range(count)]
    with psycopg.connect(server, autocommit=True) as admin:
        for name in names:
            admin.execute(f'CREATE DATABASE "{name}"')
    base = server.rsplit("/", 1)[0]
    try:
        yield [f"{base}/{name}" for name in names]
    finally:
        with psycopg.connect(server, autocommit=True) as admin:
            for name in names:
                _drop(admin, name)


@contextlib.contextmanager
def live_database() -> Iterator[dict[str, str]]:
    """The ``GLINT_*`` settings that put live Glint processes (``tests.live``) on a fresh
    PostgreSQL database of the run's server when it has one (CI: ``scripts/test``), dropped
    afterwards; ``{}`` otherwise, and they keep SQLite in their data directory."""
    if not os.environ.get("GLINT_DATABASE_URL", "").startswith("postgresql"):
        yield {}
        return
    with fresh_databases(1) as (url,):
        yield {"GLINT_DATABASE_URL": url}


def _drop(admin, name: str) -> None:
    """Drop a test database once the Glint processes' connections to it have gone (the test's
    role may not end other sessions itself)."""
    deadline = time.monotonic() + 30
    while True:
        try:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
            return
        except psycopg.errors.ObjectInUse:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def run_at_once(model, threads) -> None:
    """Start ``threads`` (each with its own database session) while ``model``'s table is locked,
    release it once every one waits for the lock, and join them: they reach the table at the
    same moment, as processes racing for one row would."""
    from django.db import connection, transaction

    if connection.vendor != "postgresql":
        # The moment is forced with PostgreSQL's table lock. On SQLite (a run without
        # GLINT_DATABASE_URL; scripts/test always sets it) every transaction holds the one write
        # lock from its start, so racing sessions take turns by construction.
        pytest.skip("forcing a race needs PostgreSQL (scripts/test runs the suite on one)")
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"LOCK TABLE {model._meta.db_table} IN ACCESS EXCLUSIVE MODE")
        for thread in threads:
            thread.start()
        _wait_until_blocked(cursor, len(threads))
    for thread in threads:
        thread.join(30)


def _wait_until_blocked(cursor, sessions: int, seconds: float = 15) -> None:
    """Until ``sessions`` other database sessions wait for a lock (a test holding a table lock
    then knows they are all on their way to the same step)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        cursor.execute(
            "SELECT count(DISTINCT pid) FROM pg_locks WHERE NOT granted"
        )  # live, not a snapshot
        if cursor.fetchone()[0] >= sessions:
            return
        time.sleep(0.05)
    raise AssertionError(f"{sessions} sessions never all reached the lock")
