"""What differs between SQLite and PostgreSQL, in one place.

Money is exact on both: PostgreSQL stores it as ``NUMERIC`` and sums it
natively; SQLite has no exact decimal type, so money is stored as decimal
text and summed/added by two small functions registered on every SQLite
connection (``decimal_sum``, ``decimal_add``), which use Python's Decimal.
Times are stored as integer microseconds since the Unix epoch (UTC) on both.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import (
    BigInteger,
    Engine,
    Numeric,
    String,
    TypeDecorator,
    create_engine,
    event,
    func,
    literal,
    literal_column,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.pool import StaticPool
from sqlalchemy.sql.elements import ColumnElement

from ..errors import AgentMeterConfigurationError
from ..pricing import money_text
from . import driver_sql, sqlite_money
from .micros import DAY_MICROS as DAY_MICROS
from .micros import HOUR_MICROS as HOUR_MICROS
from .micros import MICROS as MICROS
from .sqlite_money import decimal_key as decimal_key


class ExactDecimal(TypeDecorator[Decimal]):
    """Money: NUMERIC on PostgreSQL, decimal text on SQLite; Decimal in Python."""

    impl = String(64)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(Numeric(asdecimal=True))
        return dialect.type_descriptor(String(64))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        if dialect.name == "postgresql":
            return value
        return money_text(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        return value if isinstance(value, Decimal) else Decimal(value)


def money_order(dialect_name: str, column: Any) -> ColumnElement[Any]:
    """An expression to ORDER BY a money column (or sum) by its value."""
    if dialect_name == "sqlite":
        return func.decimal_key(column)
    return column  # type: ignore[no-any-return]


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def create_ledger_engine(url: str, *, pool_size: int = 5, synchronous: str = "FULL") -> Engine:
    """An engine with the ledger's settings for the URL's database."""
    if is_sqlite(url):
        return _sqlite_engine(url, synchronous)
    if url.startswith("postgresql"):
        return create_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)
    raise AgentMeterConfigurationError(
        f"unsupported ledger URL scheme in {url.split('://')[0]!r}: use sqlite:///path.db "
        "or postgresql+psycopg://user:pass@host/db"
    )


def _sqlite_engine(url: str, synchronous: str) -> Engine:
    in_memory = url in ("sqlite://", "sqlite:///:memory:") or "mode=memory" in url
    options: dict[str, Any] = {"connect_args": {"timeout": 30, "check_same_thread": False}}
    if in_memory:
        options["poolclass"] = StaticPool  # one shared in-memory database
    engine = create_engine(url, **options)
    database = engine.url.database
    if not in_memory and database and not database.startswith("file:"):
        # SQLite makes the file but not its directory (~/.agentmeter on a fresh machine).
        Path(database).parent.mkdir(parents=True, exist_ok=True)
        _create_private_file(Path(database))

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
        # Transactions are begun explicitly (see _on_begin), not by the driver.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        if not in_memory:
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()
        sqlite_money.register(dbapi_connection)

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # A writer takes the lock up front, so a read-then-write never fails
        # to upgrade; readers use a plain (deferred) BEGIN.
        # Straight to the driver: SQLAlchemy's statement machinery would cost as
        # much as a one-row read (see driver_sql.py); errors still come as its own.
        if driver_sql.driver_of(connection).in_transaction:
            return  # the held writer began it on the driver (writer.py)
        mode = connection.get_execution_options().get("ledger_write")
        driver_sql.execute(connection, "BEGIN IMMEDIATE" if mode else "BEGIN")

    return engine


def _create_private_file(path: Path) -> None:
    """Make a missing ledger file readable by its owner only (0600, whatever the umask).

    SQLite gives the -wal and -shm files the mode of the database file.
    """
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return  # an existing ledger keeps the mode its owner gave it
    try:
        os.fchmod(descriptor, 0o600)
    finally:
        os.close(descriptor)


def money_sum(dialect_name: str, column: Any) -> ColumnElement[Decimal]:
    """An exact SUM of a money column (0 over no rows)."""
    if dialect_name == "sqlite":
        return func.decimal_sum(column, type_=ExactDecimal())
    return func.coalesce(func.sum(column), 0, type_=ExactDecimal())


def money_add(dialect_name: str, column: Any, value: Any) -> ColumnElement[Decimal]:
    """``column + value`` computed exactly inside the database."""
    # A Decimal is bound as ExactDecimal: as a plain Numeric, pysqlite would
    # receive it as a float. (``value`` may also be a column expression.)
    amount = literal(value, ExactDecimal()) if isinstance(value, Decimal) else value
    if dialect_name == "sqlite":
        return func.decimal_add(column, amount, type_=ExactDecimal())
    # ExactDecimal is text-based on SQLite, so SQLAlchemy would read "+" as
    # string concatenation; spell the numeric operator out.
    return func.coalesce(column, 0).op("+", return_type=ExactDecimal())(amount)


def period_start(ts_column: Any, step: int) -> ColumnElement[Any]:
    """The start of the ``step``-micros period holding each timestamp, before 1970 too.

    SQL's ``/`` and ``%`` round toward zero on SQLite and PostgreSQL, which would
    put 1969-12-31T12:30Z in the hour of 13:00; the remainder is made
    non-negative first, so this is a floor on both.
    """
    size = literal_column(
        str(step), BigInteger()
    )  # inline: GROUP BY must repeat the very same text
    return ts_column - ((ts_column % size) + size) % size  # type: ignore[no-any-return]


def period_expr(dialect_name: str, granularity: str, ts_column: Any) -> ColumnElement[Any]:
    """The start of each event's hour/day (micros) or its month (``YYYY-MM``)."""
    if granularity == "hour":
        return period_start(ts_column, HOUR_MICROS)
    if granularity == "day":
        return period_start(ts_column, DAY_MICROS)
    # A whole number of seconds: the division is exact, so it cannot round.
    seconds = period_start(ts_column, MICROS) // literal_column(str(MICROS), BigInteger())
    if dialect_name == "sqlite":
        return func.strftime("%Y-%m", seconds, "unixepoch")
    return func.to_char(func.timezone("UTC", func.to_timestamp(seconds)), "YYYY-MM")


T = TypeVar("T")

# Rows per multi-row INSERT: PostgreSQL takes at most 65,535 parameters in
# one statement, and a rollup row has 12.
ROWS_PER_STATEMENT = 1000


def in_statements(rows: Sequence[T]) -> Iterator[Sequence[T]]:
    """``rows`` in consecutive parts of at most :data:`ROWS_PER_STATEMENT`."""
    for start in range(0, len(rows), ROWS_PER_STATEMENT):
        yield rows[start : start + ROWS_PER_STATEMENT]


def insert_for(dialect: str, table: Any) -> Any:
    """The dialect's INSERT, which has ``on_conflict_do_nothing/update`` on both."""
    # Imported here: the PostgreSQL dialect's modules take longer to load than
    # a report on a small SQLite ledger takes to run.
    if dialect == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert(table)
    from sqlalchemy.dialects import sqlite

    return sqlite.insert(table)
