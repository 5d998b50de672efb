"""One-row reads that never wait, for a caller that must not block (the server's event loop).

Handing a read to a worker thread costs the server about 0.1 ms of CPU on a
2-vCPU VM (a thread woken, the loop woken back), more than an indexed read of
one row on SQLite takes (about 10 µs). So the reads every budget check makes
may run on the event loop, on terms that keep it from blocking:

- each thread gets its own SQLite connection, outside the pool (a pool that
  is empty would make the caller wait for a connection);
- with ``busy_timeout`` 0 and ``query_only``: a read that would have to wait
  for a lock fails at once instead, and the connection can never write;
- any failure raises :class:`WouldWait`, and the caller makes the same read
  the usual way, on a worker thread, which waits and reports errors as always.

A read in WAL mode takes no lock a writer holds, so it sees the last commit and
does not wait for a write in progress. Only a SQLite file qualifies: an
in-memory database or a PostgreSQL server always raises :class:`WouldWait`.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Engine


class WouldWait(Exception):
    """The read cannot be done at once here: do it on a worker thread."""


class NoWaitReads:
    """Per-thread SQLite connections on ``database`` (a file path) that refuse to wait."""

    def __init__(self, database: str | None) -> None:
        self.database = database
        self._local = threading.local()
        self._opened: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._pid = os.getpid()

    @classmethod
    def for_engine(cls, engine: Engine) -> NoWaitReads:
        """Reads on the engine's SQLite file; for any other database, reads that always refuse."""
        database = engine.url.database
        on_file = (
            engine.dialect.name == "sqlite"
            and bool(database)
            and database != ":memory:"
            and not str(database).startswith("file:")
            and "mode=memory" not in str(engine.url)
        )
        return cls(database if on_file else None)

    def read_one(self, sql: str, params: Sequence[Any]) -> tuple[Any, ...] | None:
        """The first row of ``sql``, read now, or :class:`WouldWait`."""
        if self.database is None:
            raise WouldWait
        try:
            row: tuple[Any, ...] | None = self._connection().execute(sql, params).fetchone()
        except sqlite3.Error as exc:  # busy, locked, or anything else: the thread path decides
            raise WouldWait from exc
        return row

    def _connection(self) -> sqlite3.Connection:
        pid = os.getpid()
        mine: tuple[int, sqlite3.Connection] | None = getattr(self._local, "connection", None)
        if mine is not None and mine[0] == pid:  # not a connection of the parent of a fork
            return mine[1]
        assert self.database is not None
        connection = sqlite3.connect(
            self.database, timeout=0, isolation_level=None, check_same_thread=False
        )
        connection.execute("PRAGMA query_only=ON")
        self._local.connection = (pid, connection)
        with self._lock:
            if self._pid != pid:  # a forked child: the parent's connections are not its to close
                self._opened, self._pid = [], pid
            self._opened.append(connection)
        return connection

    def close(self) -> None:
        with self._lock:
            opened, self._opened = self._opened, []
        for connection in opened:
            connection.close()
        self._local = threading.local()


__all__ = ["NoWaitReads", "WouldWait"]
