"""Reading the ledger: events, stats and reports, aggregated in SQL, summed exactly.

Time ranges are half-open: ``start <= timestamp < end``, so consecutive
periods never count an event twice.
"""

from __future__ import annotations

import functools
import json
import math
from collections import namedtuple
from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Select,
    and_,
    bindparam,
    func,
    or_,
    select,
)

from ..core.checks import INT_LIMIT, MAX_METADATA_DEPTH
from ..core.wire import EventQuery, ReportQuery, parse_timeframe
from ..models import MeterStats, ReportRow
from ..pricing import ZERO, money_text, to_total
from . import driver_sql
from .base import LedgerBase, now_micros, to_micros
from .dialect import ExactDecimal, money_order, money_sum, period_expr
from .micros import period_label as period_label
from .micros import wire_time
from .report_groups import Grouping
from .rollups import choose, facts
from .schema import events
from .stats_sql import project_totals, window_params

# The largest OFFSET SQLite and PostgreSQL take (a signed 64-bit integer).
MAX_SQL_INTEGER = 2**63 - 1
_UNREADABLE_CHARS = 10_000  # of an old row's unreadable metadata, shown as text
_TYPE_FIELDS: dict[str, tuple[str, ...]] = {
    "api_request_pay": ("api_calls", "unit_price"),
    "token_based_pay": ("tokens_in", "tokens_out", "input_token_price", "output_token_price"),
    "instant_pay": ("amount", "description"),
}


def event_dict(row: Any) -> dict[str, Any]:
    """A stored event in its wire form."""
    item: dict[str, Any] = {
        "id": row.id,
        "project_id": row.project_id,
        "agent_id": row.agent_id,
        "user_id": row.user_id,
        "payment_type": row.payment_type,
        "event_type": row.event_type,
        "timestamp": wire_time(row.ts),
        "metadata": stored_metadata(row.metadata),
        "total_cost": money_text(row.total_cost),
    }
    for field in _TYPE_FIELDS[row.payment_type]:
        value = getattr(row, field)
        item[field] = money_text(value) if isinstance(value, Decimal) else value
    if item.get("description") is None and row.payment_type == "instant_pay":
        item["description"] = ""
    if row.payment_type == "token_based_pay":  # its model and token classes, when it has them
        if row.model is not None:
            item["model"] = row.model
        for field in ("cached_tokens_in", "cache_write_tokens"):
            if getattr(row, field):
                item[field] = getattr(row, field)
        for field in ("cached_input_token_price", "cache_write_token_price"):
            if getattr(row, field) is not None:
                item[field] = money_text(getattr(row, field))
    return item


UNREADABLE_METADATA = "_unreadable_metadata"


def stored_metadata(text: str) -> dict[str, Any]:
    """A row's metadata, readable by any client even if stored before the input checks.

    Such a row may hold NaN or 1e999 (read as text), a lone surrogate (read
    as its escape, ``\\ud800``), or what no reader takes at all (not a JSON
    object, nested past the limit): that reads as its text under
    ``_unreadable_metadata``. One old row never breaks a listing."""
    try:
        parsed = _METADATA_DECODER.decode(text)
        if parsed is None:
            return {}
        if isinstance(parsed, dict):
            return cast(dict[str, Any], _readable(parsed, 1))
    except (ValueError, RecursionError):
        pass
    printable = text[:_UNREADABLE_CHARS].encode("utf-8", "backslashreplace").decode("utf-8")
    return {UNREADABLE_METADATA: printable}


# NaN, Infinity and -Infinity are read as their text; one decoder for every row.
_METADATA_DECODER = json.JSONDecoder(parse_constant=str)


def _readable(value: Any, depth: int) -> Any:
    if isinstance(value, str):
        if value.isascii():  # most text: no lone surrogate to escape
            return value
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= INT_LIMIT:
        return str(value)
    if isinstance(value, (dict, list)) and depth > MAX_METADATA_DEPTH:
        raise ValueError("nested too deep")
    if isinstance(value, dict):
        return {_readable(key, depth): _readable(item, depth + 1) for key, item in value.items()}
    if isinstance(value, list):
        return [_readable(item, depth + 1) for item in value]
    return value


def _int_sum(column: Any) -> ColumnElement[Any]:
    return func.coalesce(func.sum(column), 0)


class Queries(LedgerBase):
    def list_events(self, query: EventQuery) -> list[dict[str, Any]]:
        """Events matching every given filter, newest first."""
        if query.offset > MAX_SQL_INTEGER:  # no row lies that far; SQL cannot even say it
            return []
        if self.dialect == "sqlite":  # the dashboard's most frequent read: on the driver
            return [event_dict(row) for row in _sqlite_list(self.engine, query)]
        with self.reading() as connection:
            return [event_dict(row) for row in listed(connection, query)]

    def event_pages(
        self, query: EventQuery, page_size: int = 1000
    ) -> Iterator[list[dict[str, Any]]]:
        """Every event matching the query's filters (not its limit and offset),
        newest first, a page at a time: for exports of any size.

        Pages follow each other by key (time, then id), not by offset, so each
        costs the same however deep it lies; each is read in its own short
        transaction, so writers are never held up by a long export.
        """
        after: tuple[int, str] | None = None
        matching, params = _matching(query)
        while True:
            statement = matching
            if after is not None:
                ts, event_id = after
                statement = statement.where(
                    or_(events.c.ts < ts, and_(events.c.ts == ts, events.c.id < event_id))
                )
            statement = _newest_first(statement).limit(page_size)
            with self.reading() as connection:
                rows = connection.execute(statement, params).all()
            if not rows:
                return
            yield [event_dict(row) for row in rows]
            after = (rows[-1].ts, rows[-1].id)

    use_rollups = True  # tests turn it off to compare with the events' own sums

    def stats(self, project_id: str, timeframe: str) -> MeterStats:
        window = parse_timeframe(timeframe)
        # Every timeframe ends now: an event stamped later (within the allowed
        # clock skew, or before the server refused such times) waits for its time.
        now = now_micros()
        start = None if window is None else now - window // timedelta(microseconds=1)
        if self.use_rollups:  # one statement built once (stats_sql.py)
            totals = project_totals(self.engine, window_params(project_id, start, now + 1))
            return MeterStats(
                total_api_calls=totals.api_calls,
                total_tokens_in=totals.tokens_in,
                total_tokens_out=totals.tokens_out,
                total_cost=totals.cost,
                total_events=totals.events,
                timeframe=timeframe,
            )
        source = facts(project_id, start, now + 1, {}, None)
        with self.reading() as connection:
            row = connection.execute(select(*self._sums(source))).one()
        return MeterStats(
            total_api_calls=int(row.api_calls),
            total_tokens_in=int(row.tokens_in),
            total_tokens_out=int(row.tokens_out),
            total_cost=row.cost or Decimal(0),
            total_events=int(row.events),
            timeframe=timeframe,
        )

    def period_cost(self, project_id: str, start: datetime, end: datetime) -> Decimal:
        """The exact sum of event costs with ``start <= timestamp < end`` (whole
        hours from the rollups, the ends from the events)."""
        source = facts(
            project_id, to_micros(start), to_micros(end), {}, self._rollup([], {}, "hour")
        )
        with self.reading() as connection:
            total = connection.execute(select(money_sum(self.dialect, source.c.cost))).scalar_one()
        return Decimal(total or 0)

    def report(self, query: ReportQuery) -> list[ReportRow]:
        """One row per period and group, with exact cost sums (every project's
        rows, grouped by project first, when the query is ``all_projects``)."""
        grouping = Grouping.of(query, self.dialect)
        source = self._facts(query, grouping, query.granularity)
        period = period_expr(self.dialect, query.granularity, source.c.ts).label("period")
        group_columns = [source.c[key] for key in grouping.columns]
        statement = (
            select(period, *group_columns, *self._sums(source))
            .group_by(period, *group_columns)
            .order_by(period, *(column.asc().nulls_first() for column in group_columns))
        )
        with self.reading() as connection:
            result = connection.execute(statement).all()
        return _report_rows(result, query.granularity, grouping)

    def breakdown(
        self, query: ReportQuery, *, contains: str | None = None, limit: int = 10, offset: int = 0
    ) -> tuple[list[ReportRow], int]:
        """The report's sums over its whole range, one row per value of its one
        group key, costliest first; and how many such values there are.

        ``contains`` keeps the values holding that text (a dashboard's search).
        Rows carry ``period="all"``.
        """
        grouping = Grouping.of(query, self.dialect)
        (key,) = grouping.columns
        source = self._facts(query, grouping, None)
        column = source.c[key]
        sums = self._sums(source)
        statement = select(column, func.count().over().label("groups"), *sums).group_by(column)
        if contains:
            statement = statement.where(column.contains(contains, autoescape=True))
        cost = money_order(self.dialect, statement.selected_columns.cost)
        statement = statement.order_by(cost.desc(), column.asc().nulls_first())
        with self.reading() as connection:
            result = connection.execute(statement.limit(limit).offset(offset)).all()
        groups = int(result[0].groups) if result else 0
        return _report_rows(result, "all", grouping), groups

    def _facts(self, query: ReportQuery, grouping: Grouping, granularity: str | None) -> Any:
        filters = {"user_id": query.user_id, "agent_id": query.agent_id}
        start = None if query.start_date is None else to_micros(query.start_date)
        end = None if query.end_date is None else to_micros(query.end_date)
        rollup = (
            None if grouping.extra else self._rollup(grouping.rollup_keys, filters, granularity)
        )
        project_id = None if query.all_projects else query.project_id
        return facts(project_id, start, end, filters, rollup, grouping.extra)

    def _rollup(self, keys: list[str], filters: dict[str, Any], granularity: str | None) -> Any:
        return choose(keys, filters, granularity) if self.use_rollups else None

    def _sums(self, source: Any) -> list[Any]:
        return [
            _int_sum(source.c.n).label("events"),
            _int_sum(source.c.api_calls).label("api_calls"),
            _int_sum(source.c.tokens_in).label("tokens_in"),
            _int_sum(source.c.tokens_out).label("tokens_out"),
            money_sum(self.dialect, source.c.cost).label("cost"),
        ]


def _matching(query: EventQuery) -> tuple[Select[Any], dict[str, Any]]:
    """The events of the query's project that pass each of its filters, and the
    statement's parameters (the filters are bound by name)."""
    values = {
        "agent_id": query.agent_id,
        "user_id": query.user_id,
        "model": query.model,
        "event_type": None if query.event_type is None else query.event_type.value,
        "payment_type": None if query.payment_type is None else query.payment_type.value,
        "start": None if query.start_date is None else to_micros(query.start_date),
        "end": None if query.end_date is None else to_micros(query.end_date),
    }
    given = {name: value for name, value in values.items() if value is not None}
    return _filtered(tuple(given)), {"project_id": query.project_id, **given}


@functools.cache
def _filtered(names: tuple[str, ...]) -> Select[Any]:
    """The events of one project passing the filters ``names`` (made once per set)."""
    statement = select(events).where(events.c.project_id == bindparam("project_id"))
    for name in names:
        if name == "start":
            statement = statement.where(events.c.ts >= bindparam(name))
        elif name == "end":
            statement = statement.where(events.c.ts < bindparam(name))
        else:
            statement = statement.where(events.c[name] == bindparam(name))
    return statement


def _newest_first(statement: Select[Any]) -> Select[Any]:
    return statement.order_by(events.c.ts.desc(), events.c.id.desc())


def listed(connection: Connection, query: EventQuery) -> Any:
    """The rows of :meth:`Queries.list_events` (SQLite's are read by :func:`_sqlite_list`)."""
    statement, params = _matching(query)
    statement = _newest_first(statement).limit(query.limit).offset(query.offset)
    return connection.execute(statement, params)


# SQLite: the same statement compiled once per set of filters, its text run on
# the driver (``driver_sql``) and its rows made here, money as Decimal as
# ExactDecimal reads it: SQLAlchemy's execution and per-column processing cost
# about as much as making the answers.
_EventRow = namedtuple("_EventRow", [column.name for column in events.columns])  # type: ignore[misc]
_MONEY_AT = tuple(
    index for index, column in enumerate(events.columns) if isinstance(column.type, ExactDecimal)
)


@functools.cache
def _sqlite_list_text(names: tuple[str, ...]) -> tuple[str, tuple[str, ...]]:
    """The list's SQL text for the filters ``names``, and its parameters' names in order."""
    from sqlalchemy.dialects import sqlite

    compiled = _newest_first(_filtered(names)).compile(dialect=sqlite.dialect())
    assert compiled.positiontup is not None
    return f"{compiled.string} LIMIT ? OFFSET ?", tuple(compiled.positiontup)


def _sqlite_list(engine: Engine, query: EventQuery) -> list[Any]:
    """The rows of :meth:`Queries.list_events` on a SQLite ledger."""
    _, params = _matching(query)
    sql, names = _sqlite_list_text(tuple(name for name in params if name != "project_id"))
    values = [params[name] for name in names]
    rows = driver_sql.read_all(engine, sql, [*values, query.limit, query.offset])
    return [_EventRow._make(_with_decimals(row)) for row in rows]


def _with_decimals(row: tuple[Any, ...]) -> list[Any]:
    values = list(row)
    for index in _MONEY_AT:
        if values[index] is not None:
            values[index] = Decimal(values[index])
    return values


def _report_rows(result: Any, granularity: str, grouping: Grouping) -> list[ReportRow]:
    labels: dict[Any, str] = {}  # a period's label, made once for all its groups
    rows = []
    for row in result:
        period = getattr(row, "period", "all")
        label = labels.get(period)
        if label is None:
            label = labels[period] = period_label(period, granularity)
        rows.append(_report_row(row, label, grouping))
    return rows


def _report_row(row: Any, label: str, grouping: Grouping) -> ReportRow:
    # The ledger's own sums, already typed: built without validation (a report
    # of 20,000 rows would spend most of its time there); the cost is still
    # brought to its canonical form as validation would.
    groups = {**_NO_GROUPS, "metadata": {}, **grouping.row_fields(row)}  # every field given:
    return ReportRow.model_construct(  # pydantic's defaults are slow to look up
        period=label,
        events=int(row.events),
        api_calls=int(row.api_calls),
        tokens_in=int(row.tokens_in),
        tokens_out=int(row.tokens_out),
        cost=to_total(row.cost or ZERO, "cost"),
        **groups,
    )


_NO_GROUPS = dict.fromkeys(("project_id", "user_id", "agent_id", "payment_type", "model"))
