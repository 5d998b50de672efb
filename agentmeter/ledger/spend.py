"""A project's exact spend per UTC day and month, kept with every write,
and the ``project.spend_exceeded`` alert when a write passes a limit.

Each write adds its new events' costs to the rows of the days and months
they fall in (one upsert per row, in key order: racing writers lock them in
the same order and take turns). A limit is checked for the current day and
month only: a late event for last month updates last month's total quietly.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Container, Iterable, Mapping
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, bindparam

from ..core.webhook_models import SPEND_EXCEEDED, AlertSettings
from ..pricing import MONEY_CONTEXT, ZERO, money_text
from . import driver_sql
from .alert_schema import PeriodKey, period_starts, spend_totals
from .alerts import settings_of
from .base import from_micros
from .dialect import DAY_MICROS, ExactDecimal, insert_for, money_add
from .webhook_store import enqueue


def add_spend(
    connection: Connection, dialect: str, rows: Iterable[Mapping[str, Any]], now: int,
    listening: Container[tuple[str, str]] = frozenset(),
    known: dict[str, AlertSettings] | None = None,
) -> None:  # fmt: skip
    """Add the new events' costs to their periods' totals; for the projects in
    ``listening`` for spend alerts, announce a current day or month that went
    past its limit in this write."""
    by_day: dict[tuple[str, int], Decimal] = defaultdict(lambda: ZERO)
    for row in rows:
        day_key = (row["project_id"], row["ts"] - row["ts"] % DAY_MICROS)
        by_day[day_key] = MONEY_CONTEXT.add(by_day[day_key], row["total_cost"])
    amounts: dict[PeriodKey, Decimal] = defaultdict(lambda: ZERO)
    for (project_id, day), amount in by_day.items():  # a few days per write, not a row each
        _, month = period_starts(day)
        amounts[(project_id, "day", day)] = amount
        key = (project_id, "month", month)
        amounts[key] = MONEY_CONTEXT.add(amounts[key], amount)
    if not any((project, SPEND_EXCEEDED) in listening for project, _, _ in amounts):
        _add_quietly(connection, dialect, amounts)  # no limit to check: no answer needed
        return
    current = dict(zip(("day", "month"), period_starts(now), strict=True))
    limits: dict[str, tuple[Decimal | None, Decimal | None]] = {}
    upsert = _upsert_statement(dialect)
    for key, amount in sorted(amounts.items()):
        project_id, period, start = key
        values = {"project_id": project_id, "period": period, "period_start": start}
        after = Decimal(connection.execute(upsert, {**values, "amount": amount}).scalar_one())
        if start != current[period] or (project_id, SPEND_EXCEEDED) not in listening:
            continue
        if project_id not in limits:
            settings = settings_of(connection, project_id, known)
            limits[project_id] = (settings.daily_limit, settings.monthly_limit)
        limit = limits[project_id][0 if period == "day" else 1]
        _check_limit(connection, key, limit, MONEY_CONTEXT.subtract(after, amount), after, now)


def _add_quietly(
    connection: Connection, dialect: str, amounts: Mapping[PeriodKey, Decimal]
) -> None:
    rows = [(*key, money_text(amount)) for key, amount in sorted(amounts.items())]
    if not rows:  # every event was a resend
        return
    if dialect == "sqlite":  # the driver's executemany: nothing compiled per row
        driver_sql.executemany(connection, _SQLITE_ADD, rows)
        return
    upsert = _upsert_statement(dialect)
    for project_id, period, start, amount in rows:
        values = {"project_id": project_id, "period": period, "period_start": start}
        connection.execute(upsert, {**values, "amount": Decimal(amount)})


_SQLITE_ADD = (
    "INSERT INTO spend_totals (project_id, period, period_start, amount) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (project_id, period, period_start) "
    "DO UPDATE SET amount = decimal_add(amount, excluded.amount)"
)


@functools.cache
def _upsert_statement(dialect: str) -> Any:
    """``amount += :amount`` for one period, returning the new amount (made once)."""
    statement = insert_for(dialect, spend_totals).values(
        project_id=bindparam("project_id"),
        period=bindparam("period"),
        period_start=bindparam("period_start"),
        amount=bindparam("amount", type_=ExactDecimal()),
    )
    return statement.on_conflict_do_update(
        index_elements=["project_id", "period", "period_start"],
        set_={"amount": money_add(dialect, spend_totals.c.amount, statement.excluded.amount)},
    ).returning(spend_totals.c.amount)


def _check_limit(
    connection: Connection, key: PeriodKey, limit: Decimal | None, before: Decimal,
    after: Decimal, now: int,
) -> None:  # fmt: skip
    project_id, period, start = key
    if limit is not None and before < limit <= after:
        data = {
            "period": period,
            "period_start": from_micros(start).isoformat().replace("+00:00", "Z"),
            "limit": money_text(limit),
            "spend": money_text(after),
        }
        enqueue(connection, project_id, SPEND_EXCEEDED, data, now)
