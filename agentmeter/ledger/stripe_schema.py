"""The Stripe sync's tables (schema version 8): who is which customer, and what was sent.

``stripe_customers`` maps a project's user to a Stripe customer id
(``agentmeter stripe map``). ``stripe_sync_log`` holds one row per Billing
Meter Event accepted by Stripe: the row is the proof that a period's usage
reached Stripe, so a re-run skips it. Its key includes ``livemode``: a
dry run against test mode must not make the live sync skip anything.
The value is kept as the exact text sent (Stripe takes a string integer).
Times are integer microseconds since the Unix epoch (UTC), as everywhere.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, Index, MetaData, String, Table

stripe_metadata = MetaData()

stripe_customers = Table(
    "stripe_customers",
    stripe_metadata,
    Column("project_id", String(64), primary_key=True),
    Column("user_id", String(256), primary_key=True),
    Column("customer_id", String(255), nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

stripe_sync_log = Table(
    "stripe_sync_log",
    stripe_metadata,
    Column("project_id", String(64), primary_key=True),
    Column("identifier", String(100), primary_key=True),  # Stripe's limit is 100 characters
    Column("livemode", Boolean, primary_key=True),
    Column("user_id", String(256), nullable=False),
    Column("customer_id", String(255), nullable=False),
    Column("event_name", String(100), nullable=False),
    Column("value_kind", String(16), nullable=False),  # "cost" | "tokens" | "api_calls"
    Column("granularity", String(8), nullable=False),  # "hour" | "day" | "month"
    Column("period_start", BigInteger, nullable=False),
    Column("period_end", BigInteger, nullable=False),
    Column("value", String(40), nullable=False),  # the integer text sent
    Column("sent_at", BigInteger, nullable=False),
    Column("stripe_request_id", String(255)),  # Stripe's Request-Id of the accepted call
    Index("ix_stripe_sync_log_period", "project_id", "event_name", "period_start"),
)
