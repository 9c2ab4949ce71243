"""SQLite settings that let Keystone and Glance serve concurrent requests on a small machine.

Both services keep their state in SQLite here. In SQLite's default rollback-journal mode a writer
locks out readers, and under load (many token requests while ``up`` creates users, or tests
running side by side) requests then fail with "database is locked". Write-ahead logging lets
readers go on while one writer commits, and a busy timeout makes writers wait for each other
rather than fail. WAL is a property of the database file, so it is set once after the schema is made.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

BUSY_TIMEOUT_SECONDS = 30


def connection_url(db_file: Path) -> str:
    """The SQLAlchemy URL for ``db_file``, with a busy timeout for every connection."""
    return f"sqlite:///{db_file}?timeout={BUSY_TIMEOUT_SECONDS}"


def use_wal(db_file: Path) -> None:
    """Switch ``db_file`` to write-ahead logging (persistent; harmless to repeat)."""
    with sqlite3.connect(db_file) as db:
        db.execute("PRAGMA journal_mode=WAL")
