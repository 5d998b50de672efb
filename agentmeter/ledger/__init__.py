"""The ledger: where events, user meters, projects, keys and bills are stored.

One code path for the reference server and the embedded mode, on SQLite
(default) or PostgreSQL::

    ledger = Ledger.open("sqlite:///ledger.db")
    ledger.record_events([event])      # idempotent on (project_id, event.id)
    ledger.stats("proj_1", "7 days")

Each name loads on first use (PEP 562), so importing one module of the
ledger (``ledger.version``, ``ledger.fast_reports``) loads no SQLAlchemy.
"""

import importlib
from typing import TYPE_CHECKING, Any

from .version import SCHEMA_VERSION

if TYPE_CHECKING:
    from .admin import KeyRecord, hash_key, new_api_key
    from .events import StoredEvent
    from .sessions import DashboardSession
    from .store import Ledger
    from .stripe_store import SyncLogEntry

_HOMES = {
    "DashboardSession": "sessions",
    "KeyRecord": "admin",
    "Ledger": "store",
    "StoredEvent": "events",
    "SyncLogEntry": "stripe_store",
    "hash_key": "admin",
    "new_api_key": "admin",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value


__all__ = [
    "SCHEMA_VERSION",
    "DashboardSession",
    "KeyRecord",
    "Ledger",
    "StoredEvent",
    "SyncLogEntry",
    "hash_key",
    "new_api_key",
]
