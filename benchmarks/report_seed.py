"""The events ``benchmarks/cli_report.py`` reports on, seeded straight into a ledger.

Three months (January to March 2025), two agents, five users, all three
payment types, costs with up to 8 decimal places, stored exactly as the
ledger stores them (decimal text on SQLite, NUMERIC on PostgreSQL). The exact
Decimal total of every cost is kept while seeding. Seeded rows skip the
ledger's write path, so the usage rollups are built afterwards from the
stored events (``Ledger.repair_rollups``, what ``agentmeter ledger check
--repair`` does).
"""

from __future__ import annotations

import json
import random
import sqlite3
from collections.abc import Iterator
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

from agentmeter.ledger import Ledger
from agentmeter.pricing import MONEY_CONTEXT, api_request_cost, money_text, token_cost

PROJECT = "proj_bench"
START = datetime(2025, 1, 1, tzinfo=timezone.utc)
END = datetime(2025, 4, 1, tzinfo=timezone.utc)
AGENTS = ("support-bot", "research-agent")
USERS = ("user-01", "user-02", "user-03", "user-04", "user-05")
UNIT_PRICES = tuple(Decimal(p) for p in ("0.001", "0.0025", "0.1"))
TOKEN_PRICES = {
    "gpt-4o": (Decimal("0.0000025"), Decimal("0.00001")),
    "claude-sonnet": (Decimal("0.000003"), Decimal("0.000015")),
}
AMOUNTS = tuple(Decimal(a) for a in ("0.01", "0.05", "1.10", "0.33333333"))
COLUMNS = (
    "id, project_id, agent_id, user_id, payment_type, event_type, ts, recorded_at, "
    "api_calls, tokens_in, tokens_out, unit_price, input_token_price, output_token_price, "
    "amount, description, total_cost, model, metadata"
)
INSERT = f"INSERT INTO events ({COLUMNS}) VALUES ({', '.join('?' * 19)})"


def micros(moment: datetime) -> int:
    return int(moment.timestamp()) * 1_000_000


class Seeded:
    """The rows of ``count`` events, and their exact total cost once read."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.total = Decimal(0)

    def rows(self) -> Iterator[tuple[Any, ...]]:
        rng = random.Random(20250101)
        start, span = micros(START), micros(END) - micros(START)
        models = list(TOKEN_PRICES)
        for index in range(self.count):
            ts = start + index * span // self.count
            agent, user = AGENTS[index % 2], USERS[rng.randrange(5)]
            common = (f"ev-{index:08d}", PROJECT, agent, user)
            kind = rng.random()
            if kind < 0.5:
                row, cost = _token_row(rng, models[index % 2], ts)
            elif kind < 0.85:
                row, cost = _api_row(rng, ts)
            else:
                row, cost = _instant_row(rng, ts)
            self.total = MONEY_CONTEXT.add(self.total, cost)
            yield (*common, *row)


def _token_row(rng: random.Random, model: str, ts: int) -> tuple[tuple[Any, ...], Decimal]:
    tokens_in, tokens_out = rng.randrange(50, 4000), rng.randrange(10, 1500)
    price_in, price_out = TOKEN_PRICES[model]
    cost = token_cost(tokens_in, tokens_out, price_in, price_out)
    row = ("token_based_pay", "token_usage", ts, ts, 0, tokens_in, tokens_out, None,
           money_text(price_in), money_text(price_out), None, None, money_text(cost), model,
           json.dumps({"model": model}))  # fmt: skip
    return row, cost


def _api_row(rng: random.Random, ts: int) -> tuple[tuple[Any, ...], Decimal]:
    calls, price = rng.randrange(1, 6), UNIT_PRICES[rng.randrange(3)]
    cost = api_request_cost(calls, price)
    row = ("api_request_pay", "api_call", ts, ts, calls, 0, 0, money_text(price), None, None,
           None, None, money_text(cost), None, "{}")  # fmt: skip
    return row, cost


def _instant_row(rng: random.Random, ts: int) -> tuple[tuple[Any, ...], Decimal]:
    cost = AMOUNTS[rng.randrange(4)]
    row = ("instant_pay", "instant_payment", ts, ts, 0, 0, 0, None, None, None,
           money_text(cost), "top-up", money_text(cost), None, "{}")  # fmt: skip
    return row, cost


def seed_sqlite(path: Path, count: int) -> Decimal:
    """Write ``count`` events into a fresh SQLite ledger; return their exact total."""
    Ledger.open(f"sqlite:///{path}").close()  # the schema, as the ledger makes it
    seeded = Seeded(count)
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA synchronous=OFF")
    connection.execute("BEGIN")
    batch: list[tuple[Any, ...]] = []
    for row in seeded.rows():
        batch.append(row)
        if len(batch) == 50_000:
            connection.executemany(INSERT, batch)
            batch.clear()
    connection.executemany(INSERT, batch)
    connection.execute("COMMIT")
    connection.execute("ANALYZE")
    connection.close()
    return seeded.total


def seed_postgres(url: str, count: int) -> Decimal:
    """Write ``count`` events into the PostgreSQL ledger at ``url`` (COPY); return
    their exact total. The database must hold no ledger yet."""
    Ledger.open(url).close()
    seeded = Seeded(count)
    engine = create_engine(url)
    try:
        raw = engine.raw_connection()
        try:
            with raw.cursor() as cursor:  # type: ignore[attr-defined]
                with cursor.copy(f"COPY events ({COLUMNS}) FROM STDIN") as copy:
                    for row in seeded.rows():
                        copy.write_row(row)
                cursor.execute("ANALYZE events")
            raw.commit()
        finally:
            raw.close()
    finally:
        engine.dispose()
    return seeded.total


def build_rollups(url: str) -> None:
    """The rollups and spend totals from the seeded events; on PostgreSQL then
    the planner's statistics, as autovacuum keeps them in a database in use
    (without them it takes a fresh rollup for a few rows, and sorts a report
    instead of reading it in key order)."""
    ledger = Ledger.open(url)
    try:
        ledger.repair_rollups()
        if ledger.dialect == "postgresql":
            with ledger.engine.connect() as connection:
                connection.execute(text("ANALYZE"))
                connection.commit()
    finally:
        ledger.close()
