"""The usage rollups' tables: exact sums per period and dimension (schema versions 7, 9, 10).

Version 7: one table per (grain, dimension), per hour and model, per hour
and agent, per day and user. Each row holds a project's events, API calls,
tokens and exact cost for one bucket and one value. One dimension a table
compresses at any scale: with thousands of users, agents and models, a row
per hour and *combination* can be about as many rows as events.

Version 9: ``usage_hour_detail``, a row per hour and combination of user,
agent, model and payment type: what reports grouped or filtered by two or
more of them (a day by model and user) read when no smaller table fits. Its
key is a digest of the four values (``detail_key``), because four long
identifiers could exceed what a PostgreSQL index entry holds; the values
themselves are plain columns.

Version 10: ``usage_hour_agent_user``, a row per hour, agent and user: what
a report of an hour by agent and user reads, instead of summing the detail's
rows across models and payment types on every report. Its key is the two
values themselves (two identifiers fit an index entry), so its rows come out
of the key in the report's order.

A one-dimension table stores a value as ``"v:" + value``, and a missing one
(an event without a model) as ``""``: primary key columns cannot be NULL on
PostgreSQL.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from sqlalchemy import BigInteger, Column, Connection, MetaData, String, Table, case, func, select

from .dialect import ExactDecimal, money_sum, period_start
from .rollup_layout import DETAIL_COLUMNS as DETAIL_COLUMNS
from .rollup_layout import LAYOUTS

rollup_metadata = MetaData()
SUMS = ("events", "api_calls", "tokens_in", "tokens_out", "cost")


def _sum_columns() -> list[Column[Any]]:
    return [
        Column("events", BigInteger, nullable=False),
        Column("api_calls", BigInteger, nullable=False),
        Column("tokens_in", BigInteger, nullable=False),
        Column("tokens_out", BigInteger, nullable=False),
        Column("cost", ExactDecimal, nullable=False),
    ]


def _table(name: str, width: int) -> Table:
    return Table(
        name,
        rollup_metadata,
        Column("project_id", String(64), primary_key=True),
        Column("bucket", BigInteger, primary_key=True),  # the period's start, micros
        Column("value", String(width + 2), primary_key=True),
        *_sum_columns(),
    )


detail_table = Table(
    "usage_hour_detail",
    rollup_metadata,
    Column("project_id", String(64), primary_key=True),
    Column("bucket", BigInteger, primary_key=True),
    Column("group_key", String(32), primary_key=True),  # detail_key of the four values
    Column("user_id", String(256), nullable=False),
    Column("agent_id", String(256), nullable=False),
    Column("model", String(200)),
    Column("payment_type", String(32), nullable=False),
    *_sum_columns(),
    sqlite_with_rowid=False,  # one B-tree to update per write, not a table and its key
)

agent_user_table = Table(
    "usage_hour_agent_user",
    rollup_metadata,
    Column("project_id", String(64), primary_key=True),
    Column("bucket", BigInteger, primary_key=True),
    Column("agent_id", String(256), primary_key=True),
    Column("user_id", String(256), primary_key=True),
    *_sum_columns(),
    sqlite_with_rowid=False,
)


@dataclass(frozen=True)
class Rollup:
    table: Table
    grain: int  # micros: an hour or a day
    columns: tuple[str, ...]  # the events columns it keeps apart

    @property
    def digested(self) -> bool:
        """Whether a row's group is keyed by ``detail_key`` of its values."""
        return "group_key" in self.table.c

    @property
    def key_names(self) -> tuple[str, ...]:
        """The table's columns after project and bucket that name a row's group."""
        if len(self.columns) == 1:
            return ("value",)
        return ("group_key", *self.columns) if self.digested else self.columns

    @property
    def unique_names(self) -> tuple[str, ...]:
        """The primary key's columns after project and bucket."""
        return self.key_names[:1] if self.digested else self.key_names

    def stored_key(self, values: tuple[Any, ...]) -> tuple[Any, ...]:
        """``key_names``' values for a group's values of ``columns``."""
        if len(self.columns) == 1:
            return (encode(values[0]),)
        return (detail_key(values), *values) if self.digested else values


_TABLES = {
    "usage_hour_model": _table("usage_hour_model", 200),
    "usage_hour_agent": _table("usage_hour_agent", 256),
    "usage_day_user": _table("usage_day_user", 256),
    agent_user_table.name: agent_user_table,
    detail_table.name: detail_table,
}
# In the planner's order (rollup_layout.LAYOUTS): the smallest table that answers first.
ROLLUPS = tuple(Rollup(_TABLES[layout.name], layout.grain, layout.columns) for layout in LAYOUTS)
DETAIL = ROLLUPS[-1]
AGENT_USER = ROLLUPS[-2]
FIRST_ROLLUPS = ROLLUPS[:3]  # schema version 7's: per hour and model, hour and agent, day and user


def detail_key(values: tuple[str | None, ...]) -> str:
    """A fixed-width key for a combination of values (128 bits of BLAKE2b over
    each value's length and text, so no two combinations share a text)."""
    text = "|".join("-" if value is None else f"{len(value)}:{value}" for value in values)
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def encode(value: str | None) -> str:
    return "" if value is None else "v:" + value


def encoded(column: Any) -> Any:
    """``encode`` in SQL, for an events column."""
    return func.coalesce("v:" + column, "")


def decoded(column: Any) -> Any:
    """The stored value back: NULL for ``""``."""
    return case((column == "", None), else_=func.substr(column, 3))


def rebuild_rollups(
    connection: Connection, events: Table, rollups: tuple[Rollup, ...] = ROLLUPS
) -> None:
    """Every row of ``rollups`` from the stored ``events`` (schema steps 7, 9
    and 10, ``ledger check --repair``)."""
    for rollup in rollups:
        connection.execute(rollup.table.delete())
        rows = expected_rows(connection, events, rollup)
        for start in range(0, len(rows), 5000):
            connection.execute(rollup.table.insert(), rows[start : start + 5000])


def expected_rows(connection: Connection, events: Table, rollup: Rollup) -> list[dict[str, Any]]:
    """The rows ``rollup`` should hold, summed from the stored ``events``."""
    dialect = connection.dialect.name
    bucket = period_start(events.c.ts, rollup.grain).label("bucket")
    if len(rollup.columns) == 1:
        groups = [encoded(events.c[rollup.columns[0]]).label("value")]
    else:
        groups = [events.c[name] for name in rollup.columns]
    query = select(
        events.c.project_id,
        bucket,
        *groups,
        func.count().label("events"),
        func.coalesce(func.sum(events.c.api_calls), 0).label("api_calls"),
        func.coalesce(func.sum(events.c.tokens_in), 0).label("tokens_in"),
        func.coalesce(func.sum(events.c.tokens_out), 0).label("tokens_out"),
        money_sum(dialect, events.c.total_cost).label("cost"),
    ).group_by(events.c.project_id, bucket, *groups)
    rows = [dict(row._mapping) for row in connection.execute(query)]
    if rollup.digested:
        for row in rows:
            row["group_key"] = detail_key(tuple(row[name] for name in rollup.columns))
    return rows
