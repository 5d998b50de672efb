"""The ledger: where events, user meters, projects, keys and bills are stored.

One code path for the reference server and the embedded mode, on SQLite
(default) or PostgreSQL::

    ledger = Ledger.open("sqlite:///ledger.db")
    ledger.record_events([event])      # idempotent on event.id
    ledger.stats("proj_1", "7 days")
"""

from __future__ import annotations

from sqlalchemy import Engine

from .admin import AdminStore, KeyRecord, hash_key, new_api_key
from .dialect import create_ledger_engine
from .events import EventWrites, StoredEvent
from .meters import MeterStore
from .queries import Queries
from .schema import SCHEMA_VERSION, migrate


class Ledger(EventWrites, MeterStore, AdminStore, Queries):
    """All ledger operations over one engine. Thread-safe; share one per process."""

    def __init__(self, engine: Engine, url: str) -> None:
        super().__init__(engine)
        self.url = url

    @classmethod
    def open(cls, url: str, *, pool_size: int = 5, synchronous: str = "FULL") -> Ledger:
        """Connect, then create or upgrade the schema."""
        engine = create_ledger_engine(url, pool_size=pool_size, synchronous=synchronous)
        ledger = cls(engine, url)
        with ledger.writing() as connection:
            migrate(connection)
        return ledger

    def close(self) -> None:
        self.engine.dispose()

    def __repr__(self) -> str:
        return f"Ledger({self.engine.url.render_as_string(hide_password=True)!r})"


__all__ = [
    "SCHEMA_VERSION",
    "KeyRecord",
    "Ledger",
    "StoredEvent",
    "hash_key",
    "new_api_key",
]
