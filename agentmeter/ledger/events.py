"""Writing events: each id stored once per project, atomically with its user-meter update.

A batch is one transaction: insert-or-ignore on the primary key
``(project_id, id)`` (no read-then-write race, on SQLite or PostgreSQL), then
one exact increment of ``current_usage`` per (project, user) for the events
that were new. An id sent again is compared with what is stored: the same
content is a duplicate (answered with the stored result), other content is
an idempotency conflict (nothing changes).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, Boolean, Connection, select, text

from ..core.webhook_models import THRESHOLD_CROSSED, AlertSettings
from ..models import MeterEvent
from ..pricing import MONEY_CONTEXT, ZERO, money_text
from . import driver_sql
from .alerts import announce_crossings
from .base import LedgerBase, from_micros, now_micros
from .dialect import ExactDecimal, in_statements, insert_for, money_add
from .rollups import add_rollups
from .rows import STORED_COLUMNS, differing_fields, event_row
from .schema import events, user_meters
from .spend import add_spend
from .webhook_store import subscriptions

EventKey = tuple[str, str]  # (project_id, id): an id is unique within its project


@dataclass(frozen=True)
class StoredEvent:
    """What the ledger holds for an event id after a write."""

    id: str
    project_id: str
    cost: Decimal
    ts: int  # microseconds; most answers only count, so the datetime is made on demand
    duplicate: bool
    # Wire names of the fields that differ from the event stored under this id:
    # not empty means the id was reused for other content, and nothing was stored.
    conflicts: tuple[str, ...] = ()

    @property
    def timestamp(self) -> datetime:
        return from_micros(self.ts)


class EventWrites(LedgerBase):
    def record_events(
        self,
        batch: Sequence[MeterEvent],
        metadata: Sequence[str] | None = None,
        *,
        wait: bool = True,
    ) -> list[StoredEvent]:
        """Store the events not stored yet; answer for each what the ledger holds.

        ``metadata``: each event's metadata as JSON, when the caller has it already.
        ``wait=False``: begin at once or raise :class:`~.nowait.WouldWait` (see
        :meth:`~.base.LedgerBase.writing`).
        """
        if not batch:
            return []
        recorded_at = now_micros()
        texts = metadata if metadata is not None else [None] * len(batch)
        rows = [
            event_row(event, recorded_at, text) for event, text in zip(batch, texts, strict=True)
        ]
        # A time the sender left out is the ledger's "now": a resend gets another.
        times_given = ["timestamp" in event.model_fields_set for event in batch]
        with self.writing(wait=wait) as connection:
            new_keys = self._insert_new(connection, rows)
            new_rows = _first_new(rows, new_keys)
            charges = self._charge_meters(connection, new_rows, recorded_at)
            self._watch(connection, charges, new_rows, recorded_at)
            stored = self._stored(connection, [r for r in rows if _key(r) not in new_keys])
        return _outcomes(rows, times_given, new_keys, stored)

    def _insert_new(self, connection: Connection, rows: list[dict[str, Any]]) -> set[EventKey]:
        # Inserting in key order makes concurrent batches lock rows in the same
        # order (the primary key's), so two servers storing overlapping batches
        # cannot deadlock.
        rows = sorted(rows, key=_key)
        if self.dialect == "postgresql":
            return _insert_new_postgresql(connection, rows)
        if self.dialect == "sqlite":
            return _insert_new_sqlite(connection, rows)
        statement = (
            insert_for(self.dialect, events)
            .on_conflict_do_nothing(index_elements=["project_id", "id"])
            .returning(events.c.project_id, events.c.id)
        )
        return {(row.project_id, row.id) for row in connection.execute(statement, rows)}

    def _charge_meters(
        self, connection: Connection, new_rows: Iterable[dict[str, Any]], now: int
    ) -> dict[tuple[str, str], Decimal]:
        """Add the rows this write stored to their users' meters; return the charges."""
        charges: dict[tuple[str, str], Decimal] = defaultdict(lambda: ZERO)
        for row in new_rows:
            user = (row["project_id"], row["user_id"])
            charges[user] = MONEY_CONTEXT.add(charges[user], row["total_cost"])
        add_usages(connection, self.dialect, charges, now)
        return charges

    def _watch(
        self,
        connection: Connection,
        charges: Mapping[tuple[str, str], Decimal],
        new_rows: list[dict[str, Any]],
        now: int,
    ) -> None:
        """What this write changes beside its events, in its transaction: the
        alerts it sets off (:mod:`.alerts`), spend totals, usage rollups."""
        listening = subscriptions(connection, {project for project, _ in charges})
        watched = {
            key: cost for key, cost in charges.items() if (key[0], THRESHOLD_CROSSED) in listening
        }
        settings: dict[str, AlertSettings] = {}  # each project's, read once for this write
        announce_crossings(connection, self.dialect, watched, now, settings)
        add_spend(connection, self.dialect, new_rows, now, listening, settings)
        add_rollups(connection, self.dialect, new_rows)

    def _stored(
        self, connection: Connection, rows: list[dict[str, Any]]
    ) -> dict[EventKey, dict[str, Any]]:
        """The stored rows (the compared fields) under the keys of ``rows``."""
        if not rows:
            return {}
        found: dict[EventKey, dict[str, Any]] = {}
        columns = [events.c[name] for name in STORED_COLUMNS]
        for project_id, ids in _ids_by_project(rows).items():
            # project_id first: the primary key's order, so the lookup uses its index.
            query = select(*columns).where(events.c.project_id == project_id, events.c.id.in_(ids))
            found.update(
                ((row.project_id, row.id), row._asdict()) for row in connection.execute(query)
            )
        return found


def _key(row: Mapping[str, Any]) -> EventKey:
    return (row["project_id"], row["id"])


def _first_new(rows: Iterable[dict[str, Any]], new_keys: set[EventKey]) -> list[dict[str, Any]]:
    """The rows this write stored (an id twice in one batch: its first row)."""
    seen: set[EventKey] = set()
    chosen = []
    for row in rows:
        key = _key(row)
        if key in new_keys and key not in seen:
            seen.add(key)
            chosen.append(row)
    return chosen


def _ids_by_project(rows: Iterable[Mapping[str, Any]]) -> dict[str, list[str]]:
    """Each project's distinct event ids, sorted."""
    ids: dict[str, set[str]] = defaultdict(set)
    for row in rows:
        ids[row["project_id"]].add(row["id"])
    return {project_id: sorted(chunk) for project_id, chunk in ids.items()}


def _outcomes(
    rows: list[dict[str, Any]],
    times_given: list[bool],
    new_keys: set[EventKey],
    stored: dict[EventKey, dict[str, Any]],
) -> list[StoredEvent]:
    outcomes: list[StoredEvent] = []
    first_rows: dict[EventKey, dict[str, Any]] = {}
    for row, time_given in zip(rows, times_given, strict=True):
        key = _key(row)
        if key in new_keys and key not in first_rows:
            first_rows[key] = row
            outcomes.append(
                StoredEvent(row["id"], row["project_id"], row["total_cost"], row["ts"], False)
            )
            continue
        # Stored before, or an id twice in one batch: compare with the first.
        held = stored.get(key) or first_rows.get(key) or row
        outcomes.append(
            StoredEvent(
                row["id"],
                row["project_id"],
                held["total_cost"],
                held["ts"],
                True,
                differing_fields(held, row, time_given=time_given),
            )
        )
    return outcomes


def add_usages(
    connection: Connection, dialect: str, charges: Mapping[tuple[str, str], Decimal], now: int
) -> None:
    """``current_usage += cost`` for each (project, user), creating new meters,
    in one statement and in key order (one lock order for every writer)."""
    if not charges:
        return
    if dialect == "sqlite":
        driver_sql.executemany(
            connection,
            _SQLITE_ADD_USAGE,
            [(p, u, money_text(cost), now) for (p, u), cost in sorted(charges.items())],
        )
        return
    for part in in_statements(sorted(charges.items())):
        statement = insert_for(dialect, user_meters).values(
            [
                {
                    "project_id": project_id,
                    "user_id": user_id,
                    "threshold_amount": None,
                    "current_usage": cost,
                    "last_reset_at": None,  # never reset yet
                    "updated_at": now,
                }
                for (project_id, user_id), cost in part
            ]
        )
        statement = statement.on_conflict_do_update(
            index_elements=["project_id", "user_id"],
            set_={
                "current_usage": money_add(
                    dialect, user_meters.c.current_usage, statement.excluded.current_usage
                ),
                "updated_at": now,
            },
        )
        connection.execute(statement)


def add_usage(
    connection: Connection, dialect: str, project_id: str, user_id: str, cost: Decimal, now: int
) -> None:
    """``current_usage += cost`` for one user, creating the meter if it is new."""
    add_usages(connection, dialect, {(project_id, user_id): cost}, now)


# PostgreSQL: one INSERT ... SELECT FROM unnest(arrays) instead of thousands of
# bound parameters, which psycopg would otherwise convert one by one.
def _pg_array_type(column: Any) -> str:
    if isinstance(column.type, BigInteger):
        return "BIGINT[]"
    if isinstance(column.type, Boolean):
        return "BOOLEAN[]"
    if isinstance(column.type, ExactDecimal):
        return "NUMERIC[]"
    return "TEXT[]"


_COLUMNS = [column.name for column in events.columns]
_PG_INSERT = text(  # built from the schema's own names, never from input
    f"INSERT INTO events ({', '.join(_COLUMNS)}) SELECT * FROM unnest("  # noqa: S608
    + ", ".join(f"CAST(:{c.name} AS {_pg_array_type(c)})" for c in events.columns)
    + ") ON CONFLICT (project_id, id) DO NOTHING RETURNING project_id, id"
)


def _insert_new_postgresql(connection: Connection, rows: list[dict[str, Any]]) -> set[EventKey]:
    arrays = {name: [row[name] for row in rows] for name in _COLUMNS}
    return {(row.project_id, row.id) for row in connection.execute(_PG_INSERT, arrays)}


# SQLite: the write lock is held from BEGIN IMMEDIATE (see dialect.py), so
# "which ids exist" then "insert the others" cannot race; the insert goes
# straight to the driver's executemany, money already as decimal text.
_SQLITE_INSERT = (
    f"INSERT OR IGNORE INTO events ({', '.join(_COLUMNS)}) "  # noqa: S608 - our schema's names
    f"VALUES ({', '.join('?' for _ in _COLUMNS)})"
)
_SQLITE_CHUNK = 500  # bound parameters per IN (...) query
_MONEY_INDEXES = [
    index for index, column in enumerate(events.columns) if isinstance(column.type, ExactDecimal)
]


def _insert_new_sqlite(connection: Connection, rows: list[dict[str, Any]]) -> set[EventKey]:
    if len(rows) == 1:  # one event (most requests): its insert says whether it was new
        inserted = driver_sql.execute(connection, _SQLITE_INSERT, _sqlite_values(rows[0]))
        return {_key(rows[0])} if inserted.rowcount == 1 else set()
    existing: set[EventKey] = set()
    for project_id, ids in _ids_by_project(rows).items():
        for start in range(0, len(ids), _SQLITE_CHUNK):
            chunk = tuple(ids[start : start + _SQLITE_CHUNK])
            marks = ", ".join("?" for _ in chunk)
            # project_id first: the primary key's order, so the lookup uses its index.
            query = f"SELECT id FROM events WHERE project_id = ? AND id IN ({marks})"  # noqa: S608
            found = driver_sql.execute(connection, query, (project_id, *chunk)).fetchall()
            existing.update((project_id, event_id) for (event_id,) in found)
    new_keys: set[EventKey] = set()
    values = []
    for row in rows:
        key = _key(row)
        if key in existing or key in new_keys:
            continue
        new_keys.add(key)
        values.append(_sqlite_values(row))
    if values:
        driver_sql.executemany(connection, _SQLITE_INSERT, values)
    return new_keys


def _sqlite_values(row: Mapping[str, Any]) -> tuple[Any, ...]:
    """An event row as the insert's parameters, money as decimal text."""
    value = [row[name] for name in _COLUMNS]
    for index in _MONEY_INDEXES:
        if value[index] is not None:
            value[index] = money_text(value[index])
    return tuple(value)


_SQLITE_ADD_USAGE = (
    "INSERT INTO user_meters (project_id, user_id, threshold_amount, current_usage, "
    "last_reset_at, updated_at) VALUES (?, ?, NULL, ?, NULL, ?) "
    "ON CONFLICT (project_id, user_id) DO UPDATE SET "
    "current_usage = decimal_add(user_meters.current_usage, excluded.current_usage), "
    "updated_at = excluded.updated_at"
)
