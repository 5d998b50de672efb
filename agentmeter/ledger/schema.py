"""The ledger's tables, and the ordered steps that create and upgrade them.

The schema is versioned by a one-row ``schema_version`` table. On open,
every step newer than the stored version runs, in order, in one
transaction (on PostgreSQL under an advisory lock, so servers starting
together do not race). A new ledger is created at the current version
directly; the steps upgrade older ones. No step loses a row.

Times are integer microseconds since the Unix epoch (UTC). Money columns
are :class:`ExactDecimal`. Events are not tied to a project row by a
foreign key: the ledger is append-heavy and the server checks access.
An event id is unique within its project (primary key ``(project_id, id)``).
"""

from __future__ import annotations

import json
from collections.abc import Callable

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    false,
    inspect,
    select,
    text,
    true,
    update,
)
from sqlalchemy.schema import CreateColumn

from .alert_schema import alert_metadata, rebuild_spend_totals
from .dialect import ExactDecimal
from .rollup_schema import AGENT_USER, DETAIL, FIRST_ROLLUPS, rebuild_rollups, rollup_metadata
from .stripe_schema import stripe_metadata
from .version import SCHEMA_VERSION

metadata = MetaData()

schema_version = Table(
    "schema_version",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("version", Integer, nullable=False),
)

projects = Table(
    "projects",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("description", Text),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("key_hash", String(64), primary_key=True),  # sha256 hex; keys are never stored
    Column("kind", String(16), nullable=False),  # "admin" | "project"
    Column("project_id", String(64), ForeignKey("projects.id", ondelete="CASCADE")),
    Column("prefix", String(24), nullable=False),  # enough to tell keys apart in a listing
    Column("created_at", BigInteger, nullable=False),
)

events = Table(
    "events",
    metadata,
    Column("id", String(128), nullable=False),
    Column("project_id", String(64), nullable=False),
    Column("agent_id", String(256), nullable=False),
    Column("user_id", String(256), nullable=False),
    Column("payment_type", String(32), nullable=False),
    Column("event_type", String(32), nullable=False),
    Column("ts", BigInteger, nullable=False),
    Column("recorded_at", BigInteger, nullable=False),
    Column("api_calls", BigInteger, nullable=False, default=0),
    Column("tokens_in", BigInteger, nullable=False, default=0),
    Column("tokens_out", BigInteger, nullable=False, default=0),
    Column("unit_price", ExactDecimal),
    Column("input_token_price", ExactDecimal),
    Column("output_token_price", ExactDecimal),
    Column("amount", ExactDecimal),
    Column("description", Text),
    Column("total_cost", ExactDecimal, nullable=False),
    # The event's model, else metadata["model"]: kept for reports by model.
    Column("model", String(200)),
    Column("metadata", Text, nullable=False),  # JSON object
    # Version 4: token classes (cached input is a part of tokens_in, cache
    # writes come on top; a class price NULL is billed at the input price),
    # and whether the event was recorded at 0 for want of a price.
    Column("cached_tokens_in", BigInteger, nullable=False, server_default=text("0")),
    Column("cache_write_tokens", BigInteger, nullable=False, server_default=text("0")),
    Column("cached_input_token_price", ExactDecimal),
    Column("cache_write_token_price", ExactDecimal),
    Column("unpriced", Boolean, nullable=False, server_default=false()),
    PrimaryKeyConstraint("project_id", "id", name="events_pkey"),
    Index("ix_events_project_ts", "project_id", "ts"),
    Index("ix_events_project_user_ts", "project_id", "user_id", "ts"),
    Index("ix_events_project_agent_ts", "project_id", "agent_id", "ts"),
)
# Only the unpriced events, few or none: a write of any other event leaves it be.
unpriced_index = Index(
    "ix_events_project_unpriced",
    events.c.project_id,
    events.c.model,
    sqlite_where=events.c.unpriced == true(),
    postgresql_where=events.c.unpriced == true(),
)

user_meters = Table(
    "user_meters",
    metadata,
    Column("project_id", String(64), primary_key=True),
    Column("user_id", String(256), primary_key=True),
    Column("threshold_amount", ExactDecimal),  # NULL: no budget set
    Column("current_usage", ExactDecimal, nullable=False),
    Column("last_reset_at", BigInteger),
    Column("updated_at", BigInteger, nullable=False),
)

billing_records = Table(
    "billing_records",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("project_id", String(64), nullable=False, index=True),
    Column("period_start", BigInteger, nullable=False),
    Column("period_end", BigInteger, nullable=False),
    Column("amount", ExactDecimal, nullable=False),
    Column("status", String(16), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

# A project's own prices (per 1,000,000 tokens), in front of the catalog.
model_prices = Table(
    "model_prices",
    metadata,
    Column("project_id", String(64), primary_key=True),
    Column("model", String(200), primary_key=True),
    Column("input", ExactDecimal, nullable=False),
    Column("output", ExactDecimal, nullable=False),
    Column("cached_input", ExactDecimal),  # NULL: billed as input
    Column("cache_write", ExactDecimal),
    Column("updated_at", BigInteger, nullable=False),
)

# A project's markup on catalog prices (not on its own prices), in percent.
price_settings = Table(
    "price_settings",
    metadata,
    Column("project_id", String(64), primary_key=True),
    Column("markup_percent", ExactDecimal, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

# Version 5: dashboard sign-ins. Only the token's SHA-256 is kept (the browser
# has the token), and the hash of the key that signed in, so revoking the key
# ends its sessions. Expired rows are purged by expires_at.
dashboard_sessions = Table(
    "dashboard_sessions",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("kind", String(16), nullable=False),  # "admin" | "project"
    Column("project_id", String(64)),  # NULL for an admin session
    Column("key_hash", String(64), nullable=False),
    Column("csrf_token", String(64), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Index("ix_dashboard_sessions_expires_at", "expires_at"),
)


_EVENT_INDEXES = ("ix_events_project_ts", "ix_events_project_user_ts", "ix_events_project_agent_ts")


def _create_current(connection: Connection) -> None:
    metadata.create_all(
        connection,
        tables=[
            projects,
            api_keys,
            events,
            user_meters,
            billing_records,
            model_prices,
            price_settings,
            dashboard_sessions,
        ],
    )
    alert_metadata.create_all(connection)
    rollup_metadata.create_all(connection)
    stripe_metadata.create_all(connection)


def _scope_event_ids_by_project(connection: Connection) -> None:
    """Version 2: the events' key becomes (project_id, id), every row kept."""
    if connection.dialect.name == "postgresql":
        name = connection.execute(
            text(
                "SELECT conname FROM pg_constraint "
                "WHERE conrelid = 'events'::regclass AND contype = 'p'"
            )
        ).scalar_one()
        connection.execute(
            text(f'ALTER TABLE events DROP CONSTRAINT "{name}", ADD PRIMARY KEY (project_id, id)')
        )
        return
    # SQLite cannot change a primary key: build the table anew and copy the rows.
    for index in _EVENT_INDEXES:
        connection.execute(text(f"DROP INDEX IF EXISTS {index}"))
    connection.execute(text("ALTER TABLE events RENAME TO events_v1"))
    events.create(connection)  # today's table: later steps find their columns there
    old_columns = {column["name"] for column in inspect(connection).get_columns("events_v1")}
    columns = ", ".join(column.name for column in events.columns if column.name in old_columns)
    connection.execute(text(f"INSERT INTO events ({columns}) SELECT {columns} FROM events_v1"))  # noqa: S608
    connection.execute(text("DROP TABLE events_v1"))


def _add_project_prices(connection: Connection) -> None:
    """Version 3: a project's own model prices and markup (new tables only)."""
    metadata.create_all(connection, tables=[model_prices, price_settings])


TOKEN_CLASS_COLUMNS = (
    "cached_tokens_in",
    "cache_write_tokens",
    "cached_input_token_price",
    "cache_write_token_price",
)


def _add_token_classes(connection: Connection) -> None:
    """Version 4: the token-class columns and the ``unpriced`` mark on events.

    New columns with defaults (0, NULL, false), so every row stays as it was;
    then the events recorded unpriced so far (``"unpriced": true`` in their
    metadata) get their mark, and the index of unpriced events is made."""
    present = {column["name"] for column in inspect(connection).get_columns("events")}
    for name in (*TOKEN_CLASS_COLUMNS, "unpriced"):
        if name not in present:  # a version 1 ledger got today's table in step 2
            definition = CreateColumn(events.c[name]).compile(dialect=connection.dialect)
            connection.execute(text(f"ALTER TABLE events ADD COLUMN {definition}"))
    candidates = connection.execute(
        select(events.c.project_id, events.c.id, events.c.metadata).where(
            events.c.metadata.like('%"unpriced":true%')  # as metadata_text writes it
        )
    )
    for row in candidates.all():
        if is_unpriced(row.metadata):
            connection.execute(
                update(events)
                .where(events.c.project_id == row.project_id, events.c.id == row.id)
                .values(unpriced=True)
            )
    unpriced_index.create(connection, checkfirst=True)


def _add_dashboard_sessions(connection: Connection) -> None:
    """Version 5: the dashboard's sessions (a new table only, no row touched)."""
    metadata.create_all(connection, tables=[dashboard_sessions])


def _add_alerts(connection: Connection) -> None:
    """Version 6: alert rules and marks, spend totals, webhook endpoints and
    deliveries (new tables only). Today's spend totals start from the events
    already stored, so a limit set later compares with the whole period."""
    alert_metadata.create_all(connection)
    rebuild_spend_totals(connection, events)


def _add_rollups(connection: Connection) -> None:
    """Version 7: usage rollups per hour and model, hour and agent, day and
    user, built from the events already stored (new tables only)."""
    rollup_metadata.create_all(connection, tables=[rollup.table for rollup in FIRST_ROLLUPS])
    rebuild_rollups(connection, events, FIRST_ROLLUPS)


def _add_stripe_sync(connection: Connection) -> None:
    """Version 8: the Stripe customer map and sync log (new tables only)."""
    stripe_metadata.create_all(connection)


def _add_detail_rollup(connection: Connection) -> None:
    """Version 9: the hourly rollup per user, agent, model and payment type,
    built from the events already stored (a new table only)."""
    DETAIL.table.create(connection)
    rebuild_rollups(connection, events, (DETAIL,))


def _add_agent_user_rollup(connection: Connection) -> None:
    """Version 10: the hourly rollup per agent and user, built from the events
    already stored (a new table only)."""
    AGENT_USER.table.create(connection, checkfirst=True)  # rebuilt whole either way
    rebuild_rollups(connection, events, (AGENT_USER,))


def is_unpriced(metadata_text: str) -> bool:
    """Whether stored metadata marks its event as recorded at 0 for want of a price."""
    try:
        parsed = json.loads(metadata_text)
    except (ValueError, RecursionError):
        return False
    return isinstance(parsed, dict) and parsed.get("unpriced") is True


# Ordered upgrade steps: (version it produces, step). Append only; a new
# ledger skips them (it is created at the current version).
STEPS: list[tuple[int, Callable[[Connection], None]]] = [
    (2, _scope_event_ids_by_project),
    (3, _add_project_prices),
    (4, _add_token_classes),
    (5, _add_dashboard_sessions),
    (6, _add_alerts),
    (7, _add_rollups),
    (8, _add_stripe_sync),
    (9, _add_detail_rollup),
    (10, _add_agent_user_rollup),
]


def migrate(connection: Connection) -> int:
    """Bring the schema up to :data:`SCHEMA_VERSION`; return the version it was at."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(74151201)"))
    schema_version.create(connection, checkfirst=True)
    stored = connection.execute(select(schema_version.c.version)).scalar_one_or_none()
    start = stored or 0
    if start > SCHEMA_VERSION:
        raise RuntimeError(
            f"the ledger's schema is version {start}, newer than this agentmeter "
            f"({SCHEMA_VERSION}); upgrade agentmeter"
        )
    if stored is None:
        _create_current(connection)
        connection.execute(schema_version.insert().values(id=1, version=SCHEMA_VERSION))
        return start
    for version, step in STEPS:
        if version > start:
            step(connection)
    if start < SCHEMA_VERSION:
        connection.execute(schema_version.update().values(version=SCHEMA_VERSION))
    return start
