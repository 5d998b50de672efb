"""The tables of alerts and webhooks (schema version 6).

Alerts are found in the transaction that records the events (so one crossing
gives one alert, however many servers race); each becomes a row of
``webhook_events`` and one ``webhook_deliveries`` row per subscribed endpoint,
in that same transaction: a delivery is durable before the writer answers.
Times are integer microseconds since the Unix epoch (UTC), as everywhere.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timezone
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    select,
)

from ..pricing import MONEY_CONTEXT, ZERO
from .base import from_micros, to_micros
from .dialect import DAY_MICROS, ExactDecimal, money_sum, period_start

PeriodKey = tuple[str, str, int]  # (project_id, "day" | "month", period start in micros)

alert_metadata = MetaData()

# A project's alert rules; no row: shares 50, 80, 100 and no spend limits.
alert_settings = Table(
    "alert_settings",
    alert_metadata,
    Column("project_id", String(64), primary_key=True),
    Column("threshold_shares", Text, nullable=False),  # a JSON list of decimal texts
    Column("daily_limit", ExactDecimal),
    Column("monthly_limit", ExactDecimal),
    Column("updated_at", BigInteger, nullable=False),
)

# The shares of a user's threshold already announced in the meter's period.
# Deleted when the meter is reset, and for shares a raised threshold re-arms.
alert_marks = Table(
    "alert_marks",
    alert_metadata,
    Column("project_id", String(64), primary_key=True),
    Column("user_id", String(256), primary_key=True),
    Column("share", String(40), primary_key=True),  # the share's decimal text
    Column("created_at", BigInteger, nullable=False),
)

# A project's exact spend per UTC day and month, kept with every write: the
# row's lock orders racing writers, so one of them sees the limit crossed.
spend_totals = Table(
    "spend_totals",
    alert_metadata,
    Column("project_id", String(64), primary_key=True),
    Column("period", String(8), primary_key=True),  # "day" | "month"
    Column("period_start", BigInteger, primary_key=True),
    Column("amount", ExactDecimal, nullable=False),
)

webhook_endpoints = Table(
    "webhook_endpoints",
    alert_metadata,
    Column("id", String(64), primary_key=True),
    Column("project_id", String(64), nullable=False, index=True),
    Column("url", String(2048), nullable=False),
    Column("event_types", Text, nullable=False),  # a JSON list
    Column("enabled", Boolean, nullable=False),
    Column("description", String(500)),
    Column("secret", String(100), nullable=False),  # whsec_...: needed to sign
    Column("created_at", BigInteger, nullable=False),
)

webhook_events = Table(
    "webhook_events",
    alert_metadata,
    Column("id", String(64), primary_key=True),
    Column("project_id", String(64), nullable=False),
    Column("type", String(64), nullable=False),
    Column("body", Text, nullable=False),  # the exact JSON every attempt sends
    Column("created_at", BigInteger, nullable=False),
)

webhook_deliveries = Table(
    "webhook_deliveries",
    alert_metadata,
    Column("id", String(64), primary_key=True),
    Column("event_id", String(64), nullable=False),
    Column("endpoint_id", String(64), nullable=False),
    Column("project_id", String(64), nullable=False),
    Column("event_type", String(64), nullable=False),
    Column("status", String(16), nullable=False),  # pending | delivered | failed
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", BigInteger),  # NULL once delivered or failed
    Column("lease_until", BigInteger),  # a sender holds it until then
    Column("last_status_code", Integer),
    Column("last_error", String(500)),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column("delivered_at", BigInteger),
    Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
    Index("ix_webhook_deliveries_project", "project_id", "created_at"),
)


def period_starts(ts: int) -> tuple[int, int]:
    """The starts of the UTC day and month holding ``ts`` (micros)."""
    day = ts - ts % DAY_MICROS
    moment = from_micros(day)
    return day, to_micros(datetime(moment.year, moment.month, 1, tzinfo=timezone.utc))


def rebuild_spend_totals(connection: Connection, events: Table) -> None:
    """Every day's and month's total from the stored ``events`` (schema step 6)."""
    totals = expected_spend(connection, events)
    connection.execute(spend_totals.delete())
    if totals:
        connection.execute(
            spend_totals.insert(),
            [
                {"project_id": p, "period": period, "period_start": s, "amount": amount}
                for (p, period, s), amount in sorted(totals.items())
            ],
        )


def expected_spend(connection: Connection, events: Table) -> dict[PeriodKey, Decimal]:
    """Each project's spend per UTC day and month, summed from the stored ``events``."""
    dialect = connection.dialect.name
    day = period_start(events.c.ts, DAY_MICROS).label("day")
    query = select(events.c.project_id, day, money_sum(dialect, events.c.total_cost)).group_by(
        events.c.project_id, day
    )
    totals: dict[PeriodKey, Decimal] = defaultdict(lambda: ZERO)
    for project_id, day_start, amount in connection.execute(query):
        _, month_start = period_starts(int(day_start))
        totals[(project_id, "day", int(day_start))] = Decimal(amount)
        key = (project_id, "month", month_start)
        totals[key] = MONEY_CONTEXT.add(totals[key], Decimal(amount))
    return dict(totals)
