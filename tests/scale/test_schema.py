"""The schema is created on first start, versioned, and upgraded without losing data."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import pytest
from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    inspect,
    select,
    update,
)

from agentmeter.ledger import SCHEMA_VERSION, Ledger
from agentmeter.ledger.dialect import ExactDecimal
from agentmeter.ledger.schema import (
    api_keys,
    billing_records,
    projects,
    schema_version,
    user_meters,
)
from agentmeter.models import APIRequestPayEvent, InstantPayEvent


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/ledger.db"
    return request.getfixturevalue("postgres_databases")("schema")


def _event() -> APIRequestPayEvent:
    return APIRequestPayEvent(project_id="p", agent_id="a", user_id="u", unit_price="0.5")


def test_first_open_creates_the_current_version(ledger_url):
    ledger = Ledger.open(ledger_url)
    with ledger.reading() as connection:
        assert connection.execute(select(schema_version.c.version)).scalar_one() == SCHEMA_VERSION
    ledger.close()


def test_reopening_keeps_every_row(ledger_url):
    ledger = Ledger.open(ledger_url)
    ledger.record_events([_event(), _event()])
    ledger.close()
    again = Ledger.open(ledger_url)
    assert again.stats("p", "all").total_events == 2
    again.close()


def test_a_ledger_newer_than_the_code_is_refused_clearly(ledger_url):
    ledger = Ledger.open(ledger_url)
    with ledger.writing() as connection:
        connection.execute(update(schema_version).values(version=SCHEMA_VERSION + 1))
    ledger.close()
    with pytest.raises(RuntimeError, match="newer than this agentmeter"):
        Ledger.open(ledger_url)


# ------------------------------------------------- upgrade from version 1

# The events table exactly as version 1 (agentmeter before issue 11) made it:
# the event id alone was the primary key, so ids were global across projects.
_v1 = MetaData()
_V1_EVENTS = Table(
    "events",
    _v1,
    Column("id", String(128), primary_key=True),
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
    Column("model", String(200)),
    Column("metadata", Text, nullable=False),
    Index("ix_events_project_ts", "project_id", "ts"),
    Index("ix_events_project_user_ts", "project_id", "user_id", "ts"),
    Index("ix_events_project_agent_ts", "project_id", "agent_id", "ts"),
)
_T0 = 1_741_608_000_000_000  # 2025-03-10T12:00:00Z in micros


def _v1_row(number: int, project_id: str) -> dict:
    return {
        "id": f"ev-{number:04d}",
        "project_id": project_id,
        "agent_id": "agent",
        "user_id": f"user-{number % 3}",
        "payment_type": "instant_pay",
        "event_type": "instant_payment",
        "ts": _T0 + number * 1_000_000,
        "recorded_at": _T0,
        "api_calls": 0,
        "tokens_in": 0,
        "tokens_out": 0,
        "unit_price": None,
        "input_token_price": None,
        "output_token_price": None,
        "amount": Decimal("0.01") * number,
        "description": f"row {number}",
        "total_cost": Decimal("0.01") * number,
        "model": None,
        "metadata": f'{{"n":{number}}}',
    }


def _make_version_1_ledger(url: str, rows: list[dict]) -> None:
    engine = create_engine(url)
    with engine.begin() as connection:
        for table in (schema_version, projects, api_keys, user_meters, billing_records):
            table.create(connection)
        _V1_EVENTS.create(connection)
        connection.execute(schema_version.insert().values(id=1, version=1))
        connection.execute(_V1_EVENTS.insert(), rows)
    engine.dispose()


def test_a_version_1_ledger_is_upgraded_keeping_every_row(ledger_url):
    rows = [_v1_row(n, "p" if n % 2 else "q") for n in range(1, 201)]
    _make_version_1_ledger(ledger_url, rows)

    ledger = Ledger.open(ledger_url)
    try:
        with ledger.reading() as connection:
            version = connection.execute(select(schema_version.c.version)).scalar_one()
            stored = connection.execute(select(_V1_EVENTS)).mappings().all()
            key = inspect(connection).get_pk_constraint("events")["constrained_columns"]
            indexes = {index["name"] for index in inspect(connection).get_indexes("events")}
        # Every row and every column as it was, money to the last digit.
        assert version == SCHEMA_VERSION == 10
        assert sorted((dict(row) for row in stored), key=lambda r: r["id"]) == rows
        assert sorted(key) == ["id", "project_id"]
        assert {index.name for index in _V1_EVENTS.indexes} <= indexes
        expected = sum(Decimal("0.01") * n for n in range(1, 201) if n % 2)
        assert ledger.stats("p", "all").total_cost == expected

        # After it: an old id is a duplicate in its project, and free in another.
        old = InstantPayEvent(
            id="ev-0001",
            project_id="p",
            agent_id="agent",
            user_id="user-1",
            amount="0.01",
            description="row 1",
            timestamp=datetime(2025, 3, 10, 12, 0, 1, tzinfo=timezone.utc),
            metadata={"n": 1},
        )
        elsewhere = old.model_copy(update={"project_id": "q"})
        outcomes = ledger.record_events([old, elsewhere])
        assert [(o.project_id, o.duplicate, o.conflicts) for o in outcomes] == [
            ("p", True, ()),
            ("q", False, ()),
        ]
    finally:
        ledger.close()
    again = Ledger.open(ledger_url)  # a second open finds nothing to do
    assert again.stats("q", "all").total_events == 101
    again.close()
