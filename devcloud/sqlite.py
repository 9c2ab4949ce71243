"""SQLite settings that let Keystone and Glance serve concurrent requests on a small machine.

Both services keep their state in SQLite here. In SQLite's default rollback-journal mode a writer
locks out readers, and under load (many token requests while ``up`` creates users, or tests running
side by side) requests then fail with "database is locked". Write-ahead logging lets readers go on
while one writer commits, and a busy timeout makes writers wait for each other rather than fail. WAL
is a property of the database file, so it is set once after the schema is made.

That is not enough on its own: oslo.db starts every transaction with a plain (deferred) ``BEGIN``,
and Keystone's password login reads the user, then writes its ``last_active_at`` in the same
transaction. A read transaction that turns into a write cannot wait for the lock in WAL mode (its
snapshot may be stale), so SQLite fails it at once with "database is locked", busy timeout or
not, and Keystone has no option to skip that write. ``HOOK_SOURCE`` is imported by Keystone
before its application: it starts oslo.db's *writer* transactions with ``BEGIN IMMEDIATE``, which
takes the write lock up front and so does wait on the busy timeout. Readers keep the deferred
``BEGIN`` and never wait (SQLite's busy wait polls with sleeps of up to 100 ms, so making every
transaction take the lock starved token requests under load). Keystone can then serve several
requests at once. Glance imports it too: its ``web-download`` task thread writes the image row
when the import ends while the client that watched the image turn active already sends its own
update, and one of the two failed with a 500 the same way.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

BUSY_TIMEOUT_SECONDS = 30
HOOK_MODULE = "devcloud_sqlite_hook"
HOOK_SOURCE = '''\
"""Written by devcloud (devcloud/sqlite.py): oslo.db writer transactions begin IMMEDIATE.

oslo.db turns pysqlite's own BEGIN off and emits a plain one in a "begin" listener on each engine,
skipped when ``conn.info["in_transaction"]`` is set (and cleared again on commit and rollback).
This class-level listener runs before those engine-level ones. Whether the transaction will
write is known only to oslo.db's transaction context (its ``mode``), so the context's session and
connection scopes note it in a thread-local while they run: the BEGIN happens inside them, when
the first statement needs a connection.
"""
import contextlib
import threading

from oslo_db.sqlalchemy import enginefacade
from sqlalchemy import event
from sqlalchemy.engine import Engine

_scope = threading.local()


def _noting_writers(scope):
    @contextlib.contextmanager
    def noted(self, *args, **kwargs):
        outer = getattr(_scope, "writing", False)
        _scope.writing = self.mode is enginefacade._WRITER
        try:
            with scope(self, *args, **kwargs) as handle:
                yield handle
        finally:
            _scope.writing = outer
    return noted


enginefacade._TransactionContext._session = _noting_writers(\
enginefacade._TransactionContext._session)
enginefacade._TransactionContext._connection = _noting_writers(\
enginefacade._TransactionContext._connection)


@event.listens_for(Engine, "begin")
def _begin_immediate(conn):
    if getattr(_scope, "writing", False) and conn.dialect.name == "sqlite" and \
"in_transaction" not in conn.info:
        conn.exec_driver_sql("BEGIN IMMEDIATE")
        conn.info["in_transaction"] = True
'''


def connection_url(db_file: Path) -> str:
    """The SQLAlchemy URL for ``db_file``, with a busy timeout for every connection."""
    return f"sqlite:///{db_file}?timeout={BUSY_TIMEOUT_SECONDS}"


def use_wal(db_file: Path) -> None:
    """Switch ``db_file`` to write-ahead logging (persistent; harmless to repeat)."""
    with sqlite3.connect(db_file) as db:
        db.execute("PRAGMA journal_mode=WAL")


def write_hook(directory: Path) -> None:
    """Put the ``BEGIN IMMEDIATE`` hook module into ``directory`` (on the service's path)."""
    (directory / f"{HOOK_MODULE}.py").write_text(HOOK_SOURCE)
