"""The :class:`Ledger`: every store over one engine, and how a ledger is opened.

One code path for the reference server and the embedded mode, on SQLite
(default) or PostgreSQL::

    ledger = Ledger.open("sqlite:///ledger.db")
    ledger.record_events([event])      # idempotent on (project_id, event.id)
    ledger.stats("proj_1", "7 days")
"""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

from sqlalchemy import Connection, Engine, inspect, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError

from ..errors import AgentMeterConfigurationError, AgentMeterConnectionError
from .admin import AdminStore
from .alerts import AlertStore
from .dialect import create_ledger_engine
from .events import EventWrites
from .meters import MeterStore
from .prices import PriceStore
from .queries import Queries
from .rollup_check import RollupCheck
from .schema import migrate, schema_version
from .sessions import SessionStore
from .stripe_store import StripeStore
from .summaries import SummaryQueries
from .unpriced import UnpricedQueries
from .version import SCHEMA_VERSION
from .webhook_store import WebhookStore


class Ledger(
    EventWrites,
    MeterStore,
    AdminStore,
    SummaryQueries,
    Queries,
    PriceStore,
    UnpricedQueries,
    SessionStore,
    AlertStore,
    WebhookStore,
    RollupCheck,
    StripeStore,
):
    """All ledger operations over one engine. Thread-safe; share one per process."""

    def __init__(self, engine: Engine, url: str) -> None:
        super().__init__(engine)
        self.url = url

    @classmethod
    def open(
        cls, url: str, *, pool_size: int = 5, synchronous: str = "FULL", create: bool = True
    ) -> Ledger:
        """Connect, then create or upgrade the schema.

        ``create=False`` (read-only commands) refuses a missing or empty
        database instead of making a ledger there. A SQLite file that holds
        other tables but no ledger is always refused, before anything is written.
        Mistakes raise :class:`AgentMeterConfigurationError`; a database
        server that cannot be reached, :class:`AgentMeterConnectionError`.
        """
        sqlite_file = _sqlite_file(url)
        if sqlite_file is not None:
            _check_sqlite_file(sqlite_file, create=create)
        try:
            engine = create_ledger_engine(url, pool_size=pool_size, synchronous=synchronous)
        except (ArgumentError, ValueError) as exc:
            raise AgentMeterConfigurationError(f"not a ledger URL: {exc}") from None
        except OSError as exc:
            raise AgentMeterConfigurationError(
                f"cannot create the ledger's folder: {exc.strerror or exc} "
                f"({exc.filename or sqlite_file})"
            ) from None
        ledger = cls(engine, url)
        try:
            if not _is_current(ledger):
                with ledger.writing() as connection:
                    _check_is_ledger(connection, ledger, create=create or sqlite_file is None)
                    migrate(connection)
        except DBAPIError as exc:
            ledger.close()
            raise _open_error(exc, ledger) from None
        except BaseException:
            ledger.close()
            raise
        return ledger

    def close(self) -> None:
        self.nowait.close()
        if self.writer is not None:
            self.writer.close()
        self.engine.dispose()

    def __repr__(self) -> str:
        return f"Ledger({self.engine.url.render_as_string(hide_password=True)!r})"


def _sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL (None for memory, a ``file:`` URI or another database)."""
    if not url.startswith("sqlite"):
        return None
    try:
        database = make_url(url).database
    except ArgumentError:
        return None
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database).expanduser()


def _check_sqlite_file(path: Path, *, create: bool) -> None:
    """Look into an existing file read-only first: opening it for the ledger
    switches it to WAL mode, a write a file that is not a ledger must not get."""
    if not path.is_file() or path.stat().st_size == 0:
        if not create:
            raise AgentMeterConfigurationError(f"no ledger file at {path}")
        return
    try:
        read_only = f"{path.resolve().as_uri()}?mode=ro"
        with contextlib.closing(sqlite3.connect(read_only, uri=True)) as db:
            tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
    except sqlite3.Error as exc:
        raise AgentMeterConfigurationError(f"cannot open the ledger {path}: {exc}") from None
    if not tables and not create:
        raise AgentMeterConfigurationError(f"no ledger in {path} (it is empty)")
    if tables and "schema_version" not in tables:
        raise AgentMeterConfigurationError(
            f"{path} is not an agentmeter ledger (it holds other tables); nothing was written"
        )


def _is_current(ledger: Ledger) -> bool:
    """Whether the schema is at this version already: then opening takes no write
    lock (a read command on a busy or read-only ledger need not wait for one)."""
    with ledger.reading() as connection:
        if not inspect(connection).has_table("schema_version"):
            return False
        stored = connection.execute(select(schema_version.c.version)).scalar_one_or_none()
    return bool(stored == SCHEMA_VERSION)


def _check_is_ledger(connection: Connection, ledger: Ledger, *, create: bool) -> None:
    """Refuse, before writing, a database that is not a ledger (or no ledger yet)."""
    tables = set(inspect(connection).get_table_names())
    if "schema_version" in tables:
        return
    if tables and connection.dialect.name == "sqlite":
        raise AgentMeterConfigurationError(
            f"{_where(ledger)} is not an agentmeter ledger (it holds other tables); "
            "nothing was written"
        )
    if not create:
        raise AgentMeterConfigurationError(f"no ledger in {_where(ledger)} (it is empty)")


def _open_error(exc: DBAPIError, ledger: Ledger) -> Exception:
    reason = " ".join(str(exc.orig).split()) or type(exc.orig).__name__
    if ledger.engine.dialect.name == "sqlite":
        return AgentMeterConfigurationError(f"cannot open the ledger {_where(ledger)}: {reason}")
    return AgentMeterConnectionError(
        f"cannot reach the ledger {_where(ledger)}: {reason}", sent=False
    )


def _where(ledger: Ledger) -> str:
    return ledger.engine.url.render_as_string(hide_password=True)
