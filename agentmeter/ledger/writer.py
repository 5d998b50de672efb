"""The SQLite ledger's writer: one connection kept for write transactions, begun on the driver.

SQLite has one writer at a time, and the ledger's writers of one process
already queue on its write lock (:class:`~.base.LedgerBase`). So they can
all share one connection, held for the ledger's lifetime, instead of taking
one from the pool per transaction: a pool checkout, its reset on return, the
``begin`` event and SQLAlchemy's commit machinery cost a single-event write
about as much CPU as its eight statements (see ``docs/benchmarks.md``).

``BEGIN IMMEDIATE`` and ``COMMIT`` go to the driver (errors raised as
SQLAlchemy's, so a locked database is still a 503); the statements in between
get the same SQLAlchemy :class:`Connection` as before, so code that runs
SQLAlchemy statements (alerts, idempotency lookups, migrations) works
unchanged: its autobegin finds the driver's transaction open and begins
nothing (``dialect._on_begin``), and its commit commits the driver's. Nothing
about durability changes: same connection settings (``synchronous``, WAL,
``busy_timeout``), one commit per transaction.

Only for a SQLite file: an in-memory database has one connection
(``StaticPool``), and PostgreSQL keeps a pooled connection per transaction.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import OperationalError

from . import driver_sql
from .nowait import WouldWait

logger = logging.getLogger("agentmeter")
_SQLITE_BUSY = 5  # sqlite3.SQLITE_BUSY, a primary result code (typeshed lacks the name)


class HeldWriter:
    """One connection for every write transaction on ``engine`` (callers serialize)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._held: Connection | None = None
        self._pid = os.getpid()
        self._busy_ms = 0  # the held connection's busy_timeout, while it is set to 0
        self._refusing = False  # whether it is set to 0 (the last write would not wait)

    @contextmanager
    def transaction(self, *, wait: bool = True) -> Iterator[Connection]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT`` (or a rollback on any exception).

        ``wait=False``: if another connection holds SQLite's write lock, raise
        :class:`~.nowait.WouldWait` at once instead of waiting ``busy_timeout``."""
        connection = self._connection()
        if wait:
            self._begin(connection)
        else:
            self._begin_now(connection)
        try:
            yield connection
            if connection.in_transaction():  # SQLAlchemy ran statements: its commit is ours
                connection.commit()
            else:
                driver_sql.execute(connection, "COMMIT")
        except BaseException:
            self._roll_back(connection)
            raise

    def _begin(self, connection: Connection) -> None:
        if self._refusing:  # after a write that would not wait: wait as configured again
            driver_sql.execute(connection, f"PRAGMA busy_timeout={self._busy_ms}")
            self._refusing = False
        driver_sql.execute(connection, "BEGIN IMMEDIATE")

    def _begin_now(self, connection: Connection) -> None:
        if not self._refusing:  # the setting is changed only when the kind of write changes
            row = driver_sql.execute(connection, "PRAGMA busy_timeout").fetchone()
            self._busy_ms = int(row[0])
            driver_sql.execute(connection, "PRAGMA busy_timeout=0")
            self._refusing = True
        try:
            driver_sql.execute(connection, "BEGIN IMMEDIATE")
        except OperationalError as exc:
            if getattr(exc.orig, "sqlite_errorcode", 0) & 0xFF == _SQLITE_BUSY:
                raise WouldWait("another connection holds the write lock") from None
            raise

    def _connection(self) -> Connection:
        if self._held is not None and self._pid == os.getpid():
            return self._held
        # Out of the pool for good (and a forked child's parent connection is
        # left alone): the connect event has set it up like every pooled one.
        raw = self.engine.raw_connection()
        raw.detach()
        self._held, self._pid = Connection(self.engine, raw), os.getpid()
        self._refusing = False
        return self._held

    def _roll_back(self, connection: Connection) -> None:
        try:
            if connection.in_transaction():
                connection.rollback()
            driver = driver_sql.driver_of(connection)
            if driver.in_transaction:
                driver.rollback()
            if not connection.invalidated:
                return
        except Exception:  # the rollback failed too: start over on a new connection
            logger.debug("ledger writer: rollback failed; reconnecting", exc_info=True)
        self.close()

    def forget(self) -> None:
        """In a forked child: the held connection is the parent's, never closed here."""
        self._held = None

    def close(self) -> None:
        held, self._held = self._held, None
        if held is not None and self._pid == os.getpid():
            try:
                held.close()
            except Exception:  # closing a broken connection: nothing left to save
                logger.debug("ledger writer: close failed", exc_info=True)


__all__ = ["HeldWriter"]
