"""SQL text sent straight to the SQLite driver, for the statements every request runs.

A statement through SQLAlchemy's ``Connection`` costs about 20 µs of Python
around the driver's own 3 to 5 (execution context, events, result wrapping);
a single-event write runs about eight of them and a key check or meter read
one, inside a transaction whose ``BEGIN`` and ``COMMIT`` cost as much again.
So the hot statements are fixed SQL text (built from the schema's names, never
from input) run on the driver's own connection: inside a write transaction
that SQLAlchemy began (``BEGIN IMMEDIATE``, so the write lock is held) and
commits; for a one-row read, on a pooled connection in autocommit (one
``SELECT`` is its own consistent snapshot, no ``BEGIN`` needed).

Driver errors are raised as SQLAlchemy's (``OperationalError`` and its
kin), as every other statement's are, so a locked or broken database is
answered the same way (503 from the server, a retry from the embedded transport).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError, StatementError


def _database_error(sql: str, exc: sqlite3.Error) -> StatementError:
    return DBAPIError.instance(sql, None, exc, sqlite3.Error)


def driver_of(connection: Connection) -> sqlite3.Connection:
    """The driver's own connection under ``connection``."""
    # pysqlite's DBAPI connection is the driver's; unlike driver_connection it
    # is still there once detached from the pool (writer.py).
    raw: sqlite3.Connection = connection.connection.dbapi_connection  # type: ignore[assignment]
    return raw


_driver = driver_of


def execute(connection: Connection, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
    """Run one statement in ``connection``'s transaction."""
    try:
        return _driver(connection).execute(sql, params)
    except sqlite3.Error as exc:
        raise _database_error(sql, exc) from exc


def executemany(connection: Connection, sql: str, rows: Iterable[Sequence[Any]]) -> None:
    """Run one statement per row of ``rows`` in ``connection``'s transaction."""
    try:
        _driver(connection).executemany(sql, rows)
    except sqlite3.Error as exc:
        raise _database_error(sql, exc) from exc


def read_one(engine: Engine, sql: str, params: Sequence[Any]) -> tuple[Any, ...] | None:
    """The first row of one ``SELECT`` on a pooled connection, outside a transaction."""
    try:
        raw = engine.raw_connection()
        try:
            driver: sqlite3.Connection = raw.driver_connection  # type: ignore[assignment]
            row: tuple[Any, ...] | None = driver.execute(sql, params).fetchone()
        finally:
            raw.close()
    except sqlite3.Error as exc:
        raise _database_error(sql, exc) from exc
    return row


def read_all(engine: Engine, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
    """Every row of one ``SELECT`` on a pooled connection, outside a transaction
    (one statement reads one consistent snapshot)."""
    try:
        raw = engine.raw_connection()
        try:
            driver: sqlite3.Connection = raw.driver_connection  # type: ignore[assignment]
            rows: list[tuple[Any, ...]] = driver.execute(sql, params).fetchall()
        finally:
            raw.close()
    except sqlite3.Error as exc:
        raise _database_error(sql, exc) from exc
    return rows
