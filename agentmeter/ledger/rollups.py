"""Usage rollups: kept with every write, read by the reports that fit them.

Writing: :func:`add_rollups` adds a write's new events to their rows (one
upsert per row, in key order, in the write's transaction: a rollup is never
behind its events, and duplicates add nothing, as they are not new).

Reading: :func:`facts` is what a report aggregates: the events of a project
in a time range, as rows of ``ts``, the grouping columns, ``n`` (events),
``api_calls``, ``tokens_in``, ``tokens_out`` and ``cost``. When the report's
grouping and filters touch only the dimensions one table keeps (the first
in ``ROLLUPS`` that does: the smallest) and its periods are whole buckets of
that table, the range's whole buckets come from the
rollup and only the partial buckets at its two ends from the events; the
sums are the same to the last digit (tests/unit/test_rollups.py).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Select, literal, null, select, union_all

from ..pricing import MONEY_CONTEXT, money_text
from . import driver_sql
from .dialect import HOUR_MICROS, in_statements, insert_for, money_add
from .rollup_layout import LAYOUTS, choose_layout, whole_buckets
from .rollup_schema import DETAIL_COLUMNS, ROLLUPS, SUMS, Rollup, decoded
from .schema import events

FACT_COLUMNS = ("user_id", "agent_id", "model", "payment_type")


def add_rollups(connection: Connection, dialect: str, rows: Iterable[Mapping[str, Any]]) -> None:
    """Add new events (their stored rows) to every rollup: summed once per hour
    and combination of the detail columns, then each rollup from those sums."""
    if dialect == "sqlite" and isinstance(rows, list) and len(rows) == 1:
        _add_one_sqlite(connection, rows[0])  # most writes: nothing to sum
        return
    hourly: dict[tuple[Any, ...], list[Any]] = defaultdict(_no_usage)
    for row in rows:
        ts = row["ts"]
        total = hourly[  # then DETAIL_COLUMNS, in their order
            row["project_id"], ts - ts % HOUR_MICROS,
            row["user_id"], row["agent_id"], row["model"], row["payment_type"],
        ]  # fmt: skip
        total[0] += 1
        total[1] += row["api_calls"]
        total[2] += row["tokens_in"]
        total[3] += row["tokens_out"]
        total[4] = MONEY_CONTEXT.add(total[4], row["total_cost"])
    for rollup in ROLLUPS:
        positions = [DETAIL_COLUMNS.index(name) for name in rollup.columns]
        sums: dict[tuple[Any, ...], list[Any]] = defaultdict(_no_usage)
        for (project_id, hour, *values), part in hourly.items():
            key = (project_id, hour - hour % rollup.grain, tuple(values[i] for i in positions))
            total = sums[key]
            for index in range(4):
                total[index] += part[index]
            total[4] = MONEY_CONTEXT.add(total[4], part[4])
        stored = [
            ((project_id, bucket, *rollup.stored_key(values)), total)
            for (project_id, bucket, values), total in sums.items()
        ]
        if stored:
            _upsert(connection, dialect, rollup, _in_key_order(rollup, stored))


def _add_one_sqlite(connection: Connection, row: Mapping[str, Any]) -> None:
    """One new event: each rollup's row straight from it, as :func:`add_rollups` sums it."""
    ts = row["ts"]
    sums = (1, row["api_calls"], row["tokens_in"], row["tokens_out"], money_text(row["total_cost"]))
    details = [row[name] for name in DETAIL_COLUMNS]
    for rollup, positions in _POSITIONS:
        key = rollup.stored_key(tuple(details[i] for i in positions))
        bucket = ts - ts % rollup.grain
        sql = _SQLITE_UPSERTS[rollup.table.name]
        driver_sql.execute(connection, sql, (row["project_id"], bucket, *key, *sums))


def _no_usage() -> list[Any]:
    return [0, 0, 0, 0, Decimal(0)]


def _in_key_order(
    rollup: Rollup, stored: list[tuple[tuple[Any, ...], list[Any]]]
) -> list[tuple[tuple[Any, ...], list[Any]]]:
    """Concurrent writers lock rows in one order: the primary key's (never None)."""
    unique = 2 + len(rollup.unique_names)  # project, bucket, then the rest of the key
    return sorted(stored, key=lambda item: item[0][:unique])


def _upsert(
    connection: Connection, dialect: str, rollup: Rollup, sums: list[tuple[Any, list[Any]]]
) -> None:
    table = rollup.table
    if dialect == "sqlite":  # the driver's executemany: no SQL compiled per row
        driver_sql.executemany(
            connection,
            _SQLITE_UPSERTS[table.name],
            [(*key, *total[:4], money_text(total[4])) for key, total in sums],
        )
        return
    names = ("project_id", "bucket", *rollup.key_names, *SUMS)
    for part in in_statements(sums):  # still in key order
        statement = insert_for(dialect, table).values(
            [dict(zip(names, (*key, *total), strict=True)) for key, total in part]
        )
        added = {name: table.c[name] + statement.excluded[name] for name in SUMS[:4]}
        added["cost"] = money_add(dialect, table.c.cost, statement.excluded.cost)
        connection.execute(
            statement.on_conflict_do_update(
                index_elements=["project_id", "bucket", *rollup.unique_names], set_=added
            )
        )


def _sqlite_upsert(rollup: Rollup) -> str:
    """The upsert's SQL text: built from the schema's own names, never from input."""
    names = ("project_id", "bucket", *rollup.key_names, *SUMS)
    increments = ", ".join(f"{name} = {name} + excluded.{name}" for name in SUMS[:4])
    return (
        f"INSERT INTO {rollup.table.name} ({', '.join(names)}) "  # noqa: S608
        f"VALUES ({', '.join('?' * len(names))}) "
        f"ON CONFLICT (project_id, bucket, {', '.join(rollup.unique_names)}) DO UPDATE SET "
        f"{increments}, cost = decimal_add(cost, excluded.cost)"
    )


_SQLITE_UPSERTS = {rollup.table.name: _sqlite_upsert(rollup) for rollup in ROLLUPS}
# Each rollup, and where its columns are among DETAIL_COLUMNS.
_POSITIONS = [(r, [DETAIL_COLUMNS.index(name) for name in r.columns]) for r in ROLLUPS]


def choose(
    keys: Iterable[str], filters: Mapping[str, Any], granularity: str | None
) -> Rollup | None:
    """The rollup that can answer a grouping by ``keys`` with ``filters`` (columns
    with a value) per ``granularity`` ("hour", "day", "month", None: no periods)."""
    layout = choose_layout(keys, filters, granularity)
    return None if layout is None else ROLLUPS[LAYOUTS.index(layout)]


def facts(
    project_id: str | None, start: int | None, end: int | None, filters: Mapping[str, Any],
    rollup: Rollup | None, extra: Mapping[str, Any] | None = None,
) -> Any:  # fmt: skip
    """The rows a report sums (a subquery), over ``start <= ts < end`` (micros).

    ``project_id`` None: every project's rows (each row carries its
    ``project_id``). ``extra``: more columns of the events (label ->
    expression), such as metadata values; they are read from the events only.
    """
    if rollup is None or extra:
        return _raw(project_id, start, end, filters, extra).subquery("facts")
    first, last = whole_buckets(rollup.grain, start, end)
    if first is not None and last is not None and first >= last:
        return _raw(project_id, start, end, filters).subquery("facts")
    parts = [_rolled(rollup, project_id, first, last, filters)]
    if start is not None and first is not None and start < first:
        parts.append(_raw(project_id, start, first, filters))
    if end is not None and last is not None and last < end:
        parts.append(_raw(project_id, last, end, filters))
    return union_all(*parts).subquery("facts")


def _raw(
    project_id: str | None, start: int | None, end: int | None, filters: Mapping[str, Any],
    extra: Mapping[str, Any] | None = None,
) -> Select[Any]:  # fmt: skip
    statement = select(
        events.c.ts,
        events.c.project_id,
        *(events.c[name] for name in FACT_COLUMNS),
        *(expression.label(label) for label, expression in (extra or {}).items()),
        literal(1).label("n"),
        events.c.api_calls,
        events.c.tokens_in,
        events.c.tokens_out,
        events.c.total_cost.label("cost"),
    )
    if project_id is not None:
        statement = statement.where(events.c.project_id == project_id)
    return _bounded(statement, events.c.ts, start, end, filters, dict(events.c.items()))


def _rolled(
    rollup: Rollup, project_id: str | None, start: int | None, end: int | None,
    filters: Mapping[str, Any],
) -> Select[Any]:  # fmt: skip
    table = rollup.table
    mapped = _kept_columns(rollup)
    columns = [mapped.get(name, null()).label(name) for name in FACT_COLUMNS]
    statement = select(
        table.c.bucket.label("ts"),
        table.c.project_id,
        *columns,
        table.c.events.label("n"),
        table.c.api_calls,
        table.c.tokens_in,
        table.c.tokens_out,
        table.c.cost,
    )
    if project_id is not None:
        statement = statement.where(table.c.project_id == project_id)
    return _bounded(statement, table.c.bucket, start, end, filters, mapped)


def _kept_columns(rollup: Rollup) -> dict[str, Any]:
    """Each events column ``rollup`` keeps, as an expression on its table."""
    if len(rollup.columns) == 1:
        return {rollup.columns[0]: decoded(rollup.table.c.value)}
    return {name: rollup.table.c[name] for name in rollup.columns}


def _bounded(
    statement: Select[Any], ts: Any, start: int | None, end: int | None,
    filters: Mapping[str, Any], columns: Mapping[str, Any],
) -> Select[Any]:  # fmt: skip
    if start is not None:
        statement = statement.where(ts >= start)
    if end is not None:
        statement = statement.where(ts < end)
    for name, wanted in filters.items():
        if wanted is not None:
            statement = statement.where(columns[name] == wanted)
    return statement
