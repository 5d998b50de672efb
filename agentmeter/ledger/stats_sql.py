"""One project's stats over a timeframe ending now: three sums in one statement, built once.

Stats end now, and a live ledger's events are mostly in the current hour. Cut
at now, that hour used to be a partial bucket, summed event by event from the
events table (each cost through SQLite's exact ``decimal_sum``): 4 to 6 ms for
a few thousand events, besides building the rollup union with SQLAlchemy on
every call (``docs/benchmarks.md``, issue 21). Instead, the hourly rollup's
buckets are summed whole up to and including the current hour, then the
events stamped after now in that hour (an event may be stamped a little
ahead, within the allowed clock skew: rarely any) are taken off, and the
events of the partial hour at the window's start are added. The rollup holds
exactly the sums of its events (kept in their transaction), and integer and
``Decimal`` subtraction is exact, so the totals are the events' own, to the
last digit (tests/unit/test_stats_sql.py compares them).

The statement depends only on the dialect and on whether the window has a
start, so it is built and compiled once; on SQLite its text goes straight to
the driver, like the other statements every request runs (:mod:`.driver_sql`).
"""

from __future__ import annotations

import functools
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, Select, bindparam, func, literal_column, select, union_all

from ..core.report_totals import ReportTotals
from ..pricing import MONEY_CONTEXT
from . import driver_sql
from .dialect import money_sum
from .rollup_layout import whole_buckets
from .rollup_schema import ROLLUPS
from .schema import events

HOURLY = ROLLUPS[0]  # per hour and model: the smallest hourly rollup


class Totals(ReportTotals):
    def add_signed(self, row: Any, sign: int) -> None:
        """A part's sums (part, events, API calls, tokens, cost), added or taken off."""
        self.events += sign * int(row[1])
        self.api_calls += sign * int(row[2])
        self.tokens_in += sign * int(row[3])
        self.tokens_out += sign * int(row[4])
        cost = Decimal(row[5] or 0)
        self.cost = MONEY_CONTEXT.add(self.cost, cost if sign > 0 else -cost)


def window_params(project_id: str, start: int | None, end: int) -> dict[str, Any]:
    """The statement's parameters for ``start <= ts < end`` (micros; ``start`` None: no start)."""
    grain = HOURLY.grain
    first, last = whole_buckets(grain, start, end)
    assert last is not None  # the bucket holding ``end``: summed whole, its rest taken off
    params: dict[str, Any] = {"project_id": project_id, "last": last, "end": end}
    params["after"] = last + grain
    if start is not None:
        params["start"] = start
        params["first"] = first  # the first whole bucket
    return params


def project_totals(engine: Engine, params: dict[str, Any]) -> Totals:
    """The sums of the project's events in the window of ``params`` (:func:`window_params`)."""
    has_start = "start" in params
    rows: list[Any]
    if engine.dialect.name == "sqlite":
        sql, names, fixed = _sqlite_text(has_start)
        values = [params[name] if name in params else fixed[name] for name in names]
        rows = driver_sql.read_all(engine, sql, values)
    else:
        with engine.connect() as connection:
            rows = list(connection.execute(_statement(engine.dialect.name, has_start), params))
    totals = Totals()
    for row in rows:
        totals.add_signed(row, -1 if row[0] == "after" else 1)
    return totals


@functools.cache
def _statement(dialect: str, has_start: bool) -> Any:
    table = HOURLY.table
    project: Any = bindparam("project_id")
    rolled = select(
        literal_column("'rolled'").label("part"),
        func.coalesce(func.sum(table.c.events), 0).label("n"),
        *(func.coalesce(func.sum(table.c[name]), 0) for name in _COUNTS),
        money_sum(dialect, table.c.cost).label("cost"),
    ).where(table.c.project_id == project, table.c.bucket <= bindparam("last"))
    parts = [rolled]
    if has_start:
        parts[0] = rolled.where(table.c.bucket >= bindparam("first"))
        parts.append(_events("before", dialect, bindparam("start"), bindparam("first")))
    parts.append(_events("after", dialect, bindparam("end"), bindparam("after")))
    return union_all(*parts)


def _events(part: str, dialect: str, start: Any, end: Any) -> Select[Any]:
    return select(
        literal_column(f"'{part}'").label("part"),
        func.count().label("n"),
        *(func.coalesce(func.sum(events.c[name]), 0) for name in _COUNTS),
        money_sum(dialect, events.c.total_cost).label("cost"),
    ).where(events.c.project_id == bindparam("project_id"), events.c.ts >= start, events.c.ts < end)


_COUNTS = ("api_calls", "tokens_in", "tokens_out")


@functools.cache
def _sqlite_text(has_start: bool) -> tuple[str, tuple[str, ...], dict[str, Any]]:
    """The SQLite statement's text, its parameters' names in order, and the
    values of those fixed in the statement (the zeros of ``COALESCE``)."""
    from sqlalchemy.dialects import sqlite

    compiled = _statement("sqlite", has_start).compile(dialect=sqlite.dialect())
    assert compiled.positiontup is not None
    return compiled.string, tuple(compiled.positiontup), dict(compiled.params)


__all__ = ["Totals", "project_totals", "window_params"]
