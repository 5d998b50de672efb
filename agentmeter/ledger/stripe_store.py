"""The Stripe sync's storage: users' customer ids, and the log of meter events sent.

A user's customer is the mapped one (``agentmeter stripe map``), else the
``stripe_customer_id`` metadata of the user's most recent event that has
that key. The sync log is written one row per accepted meter event, in its
own transaction right after Stripe's answer, so a run that stops half-way
keeps the proof of every event that did reach Stripe.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import Connection, delete, select

from .base import LedgerBase, now_micros
from .dialect import insert_for
from .schema import events
from .stripe_schema import stripe_customers, stripe_sync_log

CUSTOMER_METADATA_KEY = "stripe_customer_id"


@dataclass(frozen=True)
class SyncLogEntry:
    """One meter event Stripe accepted. Times are UTC microseconds."""

    project_id: str
    identifier: str
    livemode: bool
    user_id: str
    customer_id: str
    event_name: str
    value_kind: str
    granularity: str
    period_start: int
    period_end: int
    value: str
    sent_at: int = 0
    stripe_request_id: str | None = None


class StripeStore(LedgerBase):
    def map_stripe_customer(self, project_id: str, user_id: str, customer_id: str) -> None:
        """Map (or re-map) a user to a Stripe customer id."""
        row = {
            "project_id": project_id,
            "user_id": user_id,
            "customer_id": customer_id,
            "updated_at": now_micros(),
        }
        statement = insert_for(self.dialect, stripe_customers).values(**row)
        statement = statement.on_conflict_do_update(
            index_elements=["project_id", "user_id"],
            set_={"customer_id": customer_id, "updated_at": row["updated_at"]},
        )
        with self.writing() as connection:
            connection.execute(statement)

    def unmap_stripe_customer(self, project_id: str, user_id: str) -> bool:
        """Forget a user's mapping; whether there was one."""
        table = stripe_customers.c
        with self.writing() as connection:
            result = connection.execute(
                delete(stripe_customers).where(
                    table.project_id == project_id, table.user_id == user_id
                )
            )
        return result.rowcount > 0

    def stripe_customers(self, project_id: str) -> dict[str, str]:
        """The project's mapped users: user id -> customer id, by user id."""
        table = stripe_customers.c
        query = (
            select(table.user_id, table.customer_id)
            .where(table.project_id == project_id)
            .order_by(table.user_id)
        )
        with self.reading() as connection:
            return {row.user_id: row.customer_id for row in connection.execute(query)}

    def stripe_customers_from_metadata(
        self, project_id: str, user_ids: Iterable[str]
    ) -> dict[str, str]:
        """For each user, the ``stripe_customer_id`` text of their most recent
        event that carries one (users without such an event are left out)."""
        found: dict[str, str] = {}
        with self.reading() as connection:
            for user_id in user_ids:
                value = _latest_customer_metadata(connection, project_id, user_id)
                if value is not None:
                    found[user_id] = value
        return found

    def stripe_sync_log(
        self, project_id: str, event_name: str, livemode: bool, start: int, end: int
    ) -> list[SyncLogEntry]:
        """The events sent for ``event_name`` whose periods overlap ``[start, end)``."""
        table = stripe_sync_log.c
        query = select(stripe_sync_log).where(
            table.project_id == project_id,
            table.event_name == event_name,
            table.livemode == livemode,
            table.period_start < end,
            table.period_end > start,
        )
        with self.reading() as connection:
            return [SyncLogEntry(**row._mapping) for row in connection.execute(query)]

    def record_stripe_sync(self, entry: SyncLogEntry) -> None:
        """Log one accepted meter event (a resend with ``--force`` replaces its row)."""
        row = {**entry.__dict__, "sent_at": entry.sent_at or now_micros()}
        statement = insert_for(self.dialect, stripe_sync_log).values(**row)
        kept = ("project_id", "identifier", "livemode")
        statement = statement.on_conflict_do_update(
            index_elements=list(kept),
            set_={name: value for name, value in row.items() if name not in kept},
        )
        with self.writing() as connection:
            connection.execute(statement)


def _latest_customer_metadata(
    connection: Connection,
    project_id: str,
    user_id: str,
) -> str | None:
    query = (
        select(events.c.metadata)
        .where(
            events.c.project_id == project_id,
            events.c.user_id == user_id,
            events.c.metadata.contains(f'"{CUSTOMER_METADATA_KEY}"', autoescape=True),
        )
        .order_by(events.c.ts.desc(), events.c.id.desc())
    )
    # A few candidates: the text match may be a nested key or a value, not the top-level key.
    for (text,) in connection.execute(query.limit(20)):
        try:
            metadata = json.loads(text)
        except (ValueError, RecursionError):
            continue
        value = metadata.get(CUSTOMER_METADATA_KEY) if isinstance(metadata, dict) else None
        if isinstance(value, str):
            return value
    return None
