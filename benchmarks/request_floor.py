"""The least a durable ledger does per event, as a route of the bare app.

``POST /store`` takes the event body as a dict (like the bare app's
``POST /echo``) and stores it the way no ledger can do with less: the event
row in a table with the ledger's own schema (its primary key and three
lookup indexes), the user's meter raised by the cost, one transaction,
``BEGIN IMMEDIATE`` ... ``COMMIT`` with WAL and ``synchronous=FULL``, on the
event loop, through the ``sqlite3`` driver with no Python of ours between the
statements. No key check, no validation, no rollups, no spend totals, no
alert lookup. ``server_requests.py`` sets its CPU per request beside
agentmeter's and the bare ``POST``'s: what a single event costs at the
least, on the machine of the run.
"""

from __future__ import annotations

import json
import sqlite3
import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

from agentmeter.ledger import Ledger
from agentmeter.ledger import events as ledger_events
from agentmeter.ledger.schema import events
from agentmeter.ledger.sqlite_money import register
from agentmeter.pricing import money_text

# The ledger's own statements for these two (events.py), so the least write
# stores exactly what agentmeter's does.
_COLUMNS = [column.name for column in events.columns]
_INSERT = ledger_events._SQLITE_INSERT
_ADD_USAGE = ledger_events._SQLITE_ADD_USAGE

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def create_floor_ledger(path: Path) -> None:
    """A ledger file at this schema version (made by the ledger itself), then closed."""
    Ledger.open(f"sqlite:///{path}").close()


def stored_count(path: Path) -> int:
    with sqlite3.connect(path) as database:
        count: int = database.execute("SELECT count(*) FROM events").fetchone()[0]
    return count


def add_store_route(app: Any, path: Path) -> None:
    """``POST /store`` on ``app`` (a FastAPI app), writing to the ledger file at ``path``."""
    database = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    database.execute("PRAGMA journal_mode=WAL")
    database.execute("PRAGMA synchronous=FULL")
    register(database)  # decimal_add, as on the ledger's own connections

    @app.post("/store", status_code=201)
    async def store(body: dict[str, Any]) -> dict[str, Any]:
        cost = money_text(Decimal(body["unit_price"]) * body["api_calls"])
        now = time.time_ns() // 1000
        database.execute("BEGIN IMMEDIATE")
        try:
            inserted = database.execute(_INSERT, _row(body, cost, now)).rowcount
            if inserted:
                database.execute(_ADD_USAGE, (body["project_id"], body["user_id"], cost, now))
            database.execute("COMMIT")
        except BaseException:
            database.execute("ROLLBACK")
            raise
        return {"success": True, "event_id": body["id"], "cost": cost}


def _row(body: dict[str, Any], cost: str, now: int) -> tuple[Any, ...]:
    moment = datetime.fromisoformat(body["timestamp"].replace("Z", "+00:00"))
    values: dict[str, Any] = {
        "id": body["id"],
        "project_id": body["project_id"],
        "agent_id": body["agent_id"],
        "user_id": body["user_id"],
        "payment_type": body["payment_type"],
        "event_type": "api_call",
        "ts": (moment - _EPOCH) // timedelta(microseconds=1),
        "recorded_at": now,
        "api_calls": body["api_calls"],
        "tokens_in": 0,
        "tokens_out": 0,
        "unit_price": body["unit_price"],
        "total_cost": cost,
        "metadata": json.dumps(body.get("metadata") or {}, separators=(",", ":")),
        "cached_tokens_in": 0,
        "cache_write_tokens": 0,
        "unpriced": 0,
    }
    return tuple(values.get(name) for name in _COLUMNS)
