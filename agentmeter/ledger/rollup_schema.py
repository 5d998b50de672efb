"""The usage rollups' tables (schema version 7): exact sums per period and one dimension.

One table per (grain, dimension): per hour and model, per hour and agent,
per day and user. Each row holds a project's events, API calls, tokens and
exact cost for one bucket and one value; reports whose grouping and range
fit a table read it instead of scanning every event (see :mod:`.rollups`).
Why one dimension a table: with thousands of users, agents and models a row
per hour and *combination* is about as many rows as events; one dimension
at a time compresses at any scale.

A value is stored as ``"v:" + value``, and a missing one (an event without
a model) as ``""``: primary key columns cannot be NULL on PostgreSQL.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import BigInteger, Column, Connection, MetaData, String, Table, case, func, select

from .dialect import DAY_MICROS, HOUR_MICROS, ExactDecimal, money_sum, period_start

rollup_metadata = MetaData()


def _table(name: str, width: int) -> Table:
    return Table(
        name,
        rollup_metadata,
        Column("project_id", String(64), primary_key=True),
        Column("bucket", BigInteger, primary_key=True),  # the period's start, micros
        Column("value", String(width + 2), primary_key=True),
        Column("events", BigInteger, nullable=False),
        Column("api_calls", BigInteger, nullable=False),
        Column("tokens_in", BigInteger, nullable=False),
        Column("tokens_out", BigInteger, nullable=False),
        Column("cost", ExactDecimal, nullable=False),
    )


@dataclass(frozen=True)
class Rollup:
    table: Table
    grain: int  # micros: an hour or a day
    column: str  # the events column it keeps apart


ROLLUPS = (
    Rollup(_table("usage_hour_model", 200), HOUR_MICROS, "model"),
    Rollup(_table("usage_hour_agent", 256), HOUR_MICROS, "agent_id"),
    Rollup(_table("usage_day_user", 256), DAY_MICROS, "user_id"),
)
SUMS = ("events", "api_calls", "tokens_in", "tokens_out", "cost")


def encode(value: str | None) -> str:
    return "" if value is None else "v:" + value


def encoded(column: Any) -> Any:
    """``encode`` in SQL, for an events column."""
    return func.coalesce("v:" + column, "")


def decoded(column: Any) -> Any:
    """The stored value back: NULL for ``""``."""
    return case((column == "", None), else_=func.substr(column, 3))


def rebuild_rollups(connection: Connection, events: Table) -> None:
    """Every rollup row from the stored ``events`` (schema step 7, ``ledger check --repair``)."""
    for rollup in ROLLUPS:
        connection.execute(rollup.table.delete())
        rows = expected_rows(connection, events, rollup)
        for start in range(0, len(rows), 5000):
            connection.execute(rollup.table.insert(), rows[start : start + 5000])


def expected_rows(connection: Connection, events: Table, rollup: Rollup) -> list[dict[str, Any]]:
    """The rows ``rollup`` should hold, summed from the stored ``events``."""
    dialect = connection.dialect.name
    bucket = period_start(events.c.ts, rollup.grain).label("bucket")
    value = encoded(events.c[rollup.column]).label("value")
    query = select(
        events.c.project_id,
        bucket,
        value,
        func.count().label("events"),
        func.coalesce(func.sum(events.c.api_calls), 0).label("api_calls"),
        func.coalesce(func.sum(events.c.tokens_in), 0).label("tokens_in"),
        func.coalesce(func.sum(events.c.tokens_out), 0).label("tokens_out"),
        money_sum(dialect, events.c.total_cost).label("cost"),
    ).group_by(events.c.project_id, bucket, value)
    return [dict(row._mapping) for row in connection.execute(query)]
