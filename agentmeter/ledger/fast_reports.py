"""Reports and stats from the usage rollups, read with the database's own driver.

``agentmeter report --db`` spends its time starting, not querying: importing
SQLAlchemy and pydantic takes about 0.35 s here, while a report read from
the rollups takes milliseconds at any ledger size. :class:`RollupReader`
answers what the rollups fit (one project; groups and filters among user,
agent, model and payment type; ``stats``) with ``sqlite3`` or ``psycopg``
and the SQL below, and answers None to anything else: metadata groups,
every project, a ledger at another schema version, a URL or a value it
does not read, any database error. The caller then takes the full path
(the client over the ledger), which also gives every error its message.
Nothing here writes (SQLite connections are ``query_only``), and a project
with no row reads as no events, as on the full path.

The SQL is the full path's (``queries.py`` over ``rollups.facts``) spelled
out: the chosen rollup's whole buckets plus the events of the partial
buckets at both ends, grouped by period and groups, summed exactly
(SQLite's decimal texts in Python, PostgreSQL's NUMERIC in SQL) and ordered by the
database, NULL first. Both paths give the same rows to the last digit
(tests/unit/test_fast_reports.py).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, NamedTuple

from ..core.groups import GROUP_COLUMNS
from ..core.timeframes import parse_timeframe
from ..errors import AgentMeterValidationError
from ..pricing import MAX_DECIMAL_PLACES, MONEY_CONTEXT, ZERO, to_total
from .fast_connect import Connection, open_postgres, open_sqlite
from .micros import DAY_MICROS, HOUR_MICROS, MICROS, period_label, to_micros
from .rollup_layout import RollupLayout, choose_layout, whole_buckets
from .version import SCHEMA_VERSION

_SUMS = ("n", "api_calls", "tokens_in", "tokens_out", "cost")
_GROUP_FIELDS = ("user_id", "agent_id", "payment_type", "model")  # RolledRow's order
_GRAINS = {"hour": HOUR_MICROS, "day": DAY_MICROS}  # a period a rollup's buckets can be


class RolledRow(NamedTuple):
    """A report row with the fields of a ``ReportRow`` that such a report fills
    (a tuple: a report of an hour by agent and user has 20,000 of them)."""

    period: str
    events: int
    api_calls: int
    tokens_in: int
    tokens_out: int
    cost: Decimal
    user_id: str | None = None
    agent_id: str | None = None
    payment_type: str | None = None
    model: str | None = None
    project_id: str | None = None

    def group_value(self, column: str) -> str | None:
        value = getattr(self, column)
        return None if value is None else str(value)


@dataclass(frozen=True)
class RolledStats:
    """The totals of ``GET /api/meter/stats`` (a ``MeterStats``' fields)."""

    timeframe: str
    total_events: int
    total_api_calls: int
    total_tokens_in: int
    total_tokens_out: int
    total_cost: Decimal


class _Statement:
    """SQL text and its parameters, in the driver's placeholder style."""

    def __init__(self, postgres: bool) -> None:
        self.postgres = postgres
        self.params: list[Any] = []
        # psycopg reads "%" as a placeholder's start once parameters are given
        self.mod = "%%" if postgres else "%"

    def bind(self, value: Any) -> str:
        self.params.append(value)
        return "%s" if self.postgres else "?"

    def money_sum(self) -> str:
        """Exact on both: NUMERIC's SUM; on SQLite the texts, summed by :func:`_money`
        (a Python aggregate would be called once per row: tens of thousands of
        calls in an hourly report over three months)."""
        return "COALESCE(SUM(cost), 0)" if self.postgres else "group_concat(cost, ',')"


class RollupReader:
    """One read-only connection to a ledger at this schema version, for one project."""

    def __init__(self, connection: Connection, project_id: str) -> None:
        self.connection, self.postgres, self.errors = connection
        self.project_id = project_id

    @classmethod
    def open(cls, url: str, project_id: str) -> RollupReader | None:
        """A reader, or None when this ledger is for the full path (see above)."""
        if not _plain(project_id) or len(project_id) > 256:
            return None
        if url.startswith("sqlite:///"):
            connection = open_sqlite(url)
        elif url.startswith("postgresql+psycopg://"):  # as written: the full path says the rest
            connection = open_postgres(url)
        else:
            return None
        if connection is None:
            return None
        reader = cls(connection, project_id)
        if reader._current():
            return reader
        reader.close()
        return None

    def close(self) -> None:
        self.connection.close()

    def report(
        self, granularity: str, group_by: Sequence[str], start: datetime | None,
        end: datetime | None, user_id: str | None = None, agent_id: str | None = None,
    ) -> list[RolledRow] | None:  # fmt: skip
        """``GET /api/meter/report``'s rows for this project, or None (full path)."""
        columns = [GROUP_COLUMNS.get(group, "") for group in dict.fromkeys(group_by)]
        filters = {"user_id": user_id, "agent_id": agent_id}
        if "" in columns or granularity not in ("hour", "day", "month"):
            return None
        if not all(value is None or _plain(value) for value in filters.values()):
            return None
        layout = choose_layout(columns, filters, granularity)
        if layout is None:
            return None
        statement = _Statement(self.postgres)
        span = (
            None if start is None else to_micros(start),
            None if end is None else to_micros(end),
        )
        sql = _report_sql(statement, layout, columns, granularity, self.project_id, span, filters)
        found = self._rows(sql, statement.params)
        try:
            return None if found is None else _report_rows(found, columns, granularity)
        except (ArithmeticError, ValueError, AgentMeterValidationError):
            return None  # a stored sum no valid write makes: the full path says which

    def stats(self, timeframe: str, now: int) -> RolledStats | None:
        """``GET /api/meter/stats``' totals up to ``now`` (micros), or None."""
        try:
            window = parse_timeframe(timeframe)
        except AgentMeterValidationError:
            return None
        start = None if window is None else now - window // timedelta(microseconds=1)
        statement = _Statement(self.postgres)
        layout = choose_layout([], {}, None)
        assert layout is not None  # every rollup holds the totals
        facts = _facts(statement, layout, [], self.project_id, (start, now + 1), {})
        sums = _sum_columns(statement)
        found = self._rows(f"SELECT {sums} FROM ({facts}) AS facts", statement.params)  # noqa: S608
        if not found:
            return None
        events, api_calls, tokens_in, tokens_out, cost = found[0]
        try:
            total_cost = to_total(_money(cost) or ZERO, "total_cost")
        except (ArithmeticError, ValueError, AgentMeterValidationError):
            return None
        return RolledStats(
            timeframe=timeframe.strip(),
            total_events=int(events),
            total_api_calls=int(api_calls),
            total_tokens_in=int(tokens_in),
            total_tokens_out=int(tokens_out),
            total_cost=total_cost,
        )

    def _current(self) -> bool:
        # No project check: the full path reads an unknown project as no events.
        return self._rows("SELECT version FROM schema_version", []) == [(SCHEMA_VERSION,)]

    def _rows(self, sql: str, params: list[Any]) -> list[tuple[Any, ...]] | None:
        try:
            rows: list[tuple[Any, ...]] = self.connection.execute(sql, params).fetchall()
            return rows
        except self.errors:
            return None


def _micros(moment: datetime | None) -> int | None:
    return None if moment is None else to_micros(moment)


def _plain(value: str) -> bool:
    """Printable ASCII: what the full path's checks pass as it is (else it answers)."""
    return bool(value) and value.isascii() and value.isprintable()


def _sum_columns(statement: _Statement) -> str:
    # PostgreSQL sums BIGINTs as NUMERIC, read as a Decimal each: counts come back
    # as BIGINT instead (a sum past 2**63 fails, and the full path answers it).
    cast = "::bigint" if statement.postgres else ""
    counts = [f"COALESCE(SUM({name}), 0){cast}" for name in _SUMS[:-1]]
    return ", ".join([*counts, statement.money_sum()])


def _report_sql(
    statement: _Statement, layout: RollupLayout, columns: list[str], granularity: str,
    project_id: str, span: tuple[int | None, int | None], filters: dict[str, str | None],
) -> str:  # fmt: skip
    if _stored_as_reported(layout, columns, granularity, span):
        return _stored_rows(statement, layout, columns, project_id, span, filters)
    period = _period(statement, granularity)
    groups = ", ".join(["period", *columns])
    order = ", ".join(["period", *(f"{column} ASC NULLS FIRST" for column in columns)])
    facts = _facts(statement, layout, columns, project_id, span, filters)
    return (
        f"SELECT {period} AS period{''.join(', ' + c for c in columns)}, "  # noqa: S608
        f"{_sum_columns(statement)} FROM ({facts}) AS facts GROUP BY {groups} ORDER BY {order}"
    )


def _stored_as_reported(
    layout: RollupLayout, columns: list[str], granularity: str, span: tuple[int | None, int | None]
) -> bool:
    """Whether each row of ``layout`` is a report row as it is: keyed by exactly
    the report's groups (never NULL) per the report's period, over whole periods.
    Not the detail rollup: its key is a digest, and its model may be NULL."""
    first, last = whole_buckets(layout.grain, *span)
    return (
        layout.keyed_by_values
        and set(columns) == set(layout.columns)
        and layout.grain == _GRAINS.get(granularity)
        and (first, last) == span
        and (first is None or last is None or first < last)
    )


def _stored_rows(
    statement: _Statement, layout: RollupLayout, columns: list[str], project_id: str,
    span: tuple[int | None, int | None], filters: dict[str, str | None],
) -> str:  # fmt: skip
    """The report's SQL when :func:`_stored_as_reported`: no grouping, and (in the
    table's key order) no sorting either."""
    rolled = _rolled(statement, layout, columns, project_id, span, filters)
    shown = ", ".join(["ts AS period", *columns, *_SUMS])
    order = ", ".join(["ts", *columns])  # never NULL: no NULLS FIRST, so the key's order serves
    return f"SELECT {shown} FROM ({rolled}) AS facts ORDER BY {order}"  # noqa: S608


def _period(statement: _Statement, granularity: str) -> str:
    """The period of each fact, as ``dialect.period_expr`` writes it."""
    if granularity == "hour":
        return _floor(statement, HOUR_MICROS)
    if granularity == "day":
        return _floor(statement, DAY_MICROS)
    seconds = f"({_floor(statement, MICROS)}) / {MICROS}"
    if statement.postgres:
        return f"to_char(timezone('UTC', to_timestamp({seconds})), 'YYYY-MM')"
    return f"strftime('%Y-%m', {seconds}, 'unixepoch')"


def _floor(statement: _Statement, step: int) -> str:
    """``dialect.period_start``: a floor before 1970 too (SQL's % keeps the sign)."""
    mod = statement.mod
    return f"(ts - ((ts {mod} {step}) + {step}) {mod} {step})"


def _facts(
    statement: _Statement, layout: RollupLayout, columns: list[str], project_id: str,
    span: tuple[int | None, int | None], filters: dict[str, str | None],
) -> str:  # fmt: skip
    """``rollups.facts``: whole buckets from the rollup, the two ends from the events."""
    start, end = span
    first, last = whole_buckets(layout.grain, start, end)
    if first is not None and last is not None and first >= last:
        return _events(statement, columns, project_id, (start, end), filters)
    parts = [_rolled(statement, layout, columns, project_id, (first, last), filters)]
    if start is not None and first is not None and start < first:
        parts.append(_events(statement, columns, project_id, (start, first), filters))
    if end is not None and last is not None and last < end:
        parts.append(_events(statement, columns, project_id, (last, end), filters))
    return " UNION ALL ".join(parts)


def _rolled(
    statement: _Statement, layout: RollupLayout, columns: list[str], project_id: str,
    span: tuple[int | None, int | None], filters: dict[str, str | None],
) -> str:  # fmt: skip
    if layout.single:  # its one column is stored as "v:" + value, "" for none
        shown = [
            f"CASE WHEN value = '' THEN NULL ELSE substr(value, 3) END AS {c}" for c in columns
        ]
        kept = {layout.columns[0]: ("value", "v:")}
    else:
        shown = list(columns)
        kept = {column: (column, "") for column in layout.columns}
    where = [f"project_id = {statement.bind(project_id)}", *_within(statement, "bucket", span)]
    for name, wanted in filters.items():
        if wanted is not None:
            stored, prefix = kept[name]
            where.append(f"{stored} = {statement.bind(prefix + wanted)}")
    selected = ", ".join(["bucket AS ts", *shown, "events AS n", *_SUMS[1:]])
    return f"SELECT {selected} FROM {layout.name} WHERE {' AND '.join(where)}"  # noqa: S608


def _events(
    statement: _Statement, columns: list[str], project_id: str,
    span: tuple[int | None, int | None], filters: dict[str, str | None],
) -> str:  # fmt: skip
    where = [f"project_id = {statement.bind(project_id)}", *_within(statement, "ts", span)]
    for name, wanted in filters.items():
        if wanted is not None:
            where.append(f"{name} = {statement.bind(wanted)}")
    selected = ", ".join(["ts", *columns, "1 AS n", *_SUMS[1:-1], "total_cost AS cost"])
    return f"SELECT {selected} FROM events WHERE {' AND '.join(where)}"  # noqa: S608


def _within(statement: _Statement, column: str, span: tuple[int | None, int | None]) -> list[str]:
    start, end = span
    bounds = [] if start is None else [f"{column} >= {statement.bind(start)}"]
    return bounds if end is None else [*bounds, f"{column} < {statement.bind(end)}"]


def _report_rows(
    found: list[tuple[Any, ...]], columns: list[str], granularity: str
) -> list[RolledRow]:
    labels: dict[Any, str] = {}
    rows = []
    width = len(columns)
    picks = [columns.index(name) + 1 if name in columns else 0 for name in _GROUP_FIELDS]
    new_row = tuple.__new__  # RolledRow(...) less its argument handling: 21,600 rows
    for found_row in found:
        period = found_row[0]
        label = labels.get(period)
        if label is None:
            label = labels[period] = period_label(period, granularity)
        events, api_calls, tokens_in, tokens_out, cost = found_row[width + 1 :]
        groups = [found_row[pick] if pick else None for pick in picks]
        cost = _total(_money(cost))
        sums = (int(events), int(api_calls), int(tokens_in), int(tokens_out), cost)
        rows.append(new_row(RolledRow, (label, *sums, *groups, None)))  # project_id: None
    return rows


def _money(summed: Decimal | str | None) -> Decimal:
    """A money sum: NUMERIC's, or the exact sum of SQLite's comma-joined texts."""
    if isinstance(summed, Decimal):
        return summed
    if not summed:
        return ZERO
    if "," not in summed:  # one stored row (a rollup row read as it is): the same sum
        return MONEY_CONTEXT.add(ZERO, Decimal(summed))
    return functools.reduce(MONEY_CONTEXT.add, map(Decimal, summed.split(",")), ZERO)


def _total(money: Decimal) -> Decimal:
    """``to_total``'s canonical form, checked cheaply first: a sum of stored costs
    is finite and positive; zero (``0.000`` is shown as ``0``), an exponent out of
    the usual range and a value no valid write stores take the full check."""
    exponent = money.as_tuple().exponent
    if money > 0 and isinstance(exponent, int) and -MAX_DECIMAL_PLACES <= exponent <= 0:
        return money
    return to_total(money, "cost")
