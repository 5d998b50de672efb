"""Token classes stored by the ledger, on every backend (HTTP on SQLite, embedded,
HTTP on PostgreSQL): the server's own cost by WIRE.md's formula, the classes read
back, resends compared on them; and a version 3 ledger upgraded to version 4."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    create_engine,
    inspect,
    select,
)

from agentmeter.core.wire import EventQuery
from agentmeter.errors import ConflictError, UnprocessableEntityError
from agentmeter.ledger import SCHEMA_VERSION, Ledger
from agentmeter.ledger.dialect import ExactDecimal
from agentmeter.ledger.schema import (
    api_keys,
    billing_records,
    events,
    model_prices,
    price_settings,
    projects,
    schema_version,
    user_meters,
)
from agentmeter.models import TokenBasedPayEvent

from .conftest import BASE_TIME

# 600 uncached x 0.003 + 400 cached x 0.0003 + 50 written x 0.00375 + 10 out x 0.01
CLASSES = {
    "tokens_in": 1000,
    "tokens_out": 10,
    "input_token_price": "0.003",
    "output_token_price": "0.01",
    "cached_tokens_in": 400,
    "cache_write_tokens": 50,
    "cached_input_token_price": "0.0003",
    "cache_write_token_price": "0.00375",
    "model": "claude-3-5-sonnet",
}
CLASS_COST = Decimal("2.2075")


def token_event(client, **fields) -> TokenBasedPayEvent:
    values = {
        "id": f"ev-{uuid.uuid4()}",
        "project_id": client.project_id,
        "agent_id": "agent-1",
        "user_id": "user-1",
        "timestamp": BASE_TIME,
        **CLASSES,
        **fields,
    }
    return TokenBasedPayEvent(**values)


def _own(client) -> dict[str, str]:
    return {"project_id": client.project_id}


def test_an_event_with_token_classes_is_stored_at_the_exact_cost(client):
    event = token_event(client)
    assert event.total_cost == CLASS_COST

    answer = client.record_event(event)

    assert (answer.cost, answer.duplicate) == (CLASS_COST, False)
    [stored] = client.get_events()
    assert stored.total_cost == CLASS_COST
    assert (stored.cached_tokens_in, stored.cache_write_tokens) == (400, 50)
    assert (stored.cached_input_token_price, stored.cache_write_token_price) == (
        Decimal("0.0003"),
        Decimal("0.00375"),
    )
    assert client.get_user_meter("user-1").current_usage == CLASS_COST
    stats = client.get_meter_stats(timeframe="all")
    assert (stats.total_tokens_in, stats.total_cost) == (1000, CLASS_COST)  # tokens_in as is
    [row] = client.get_report(granularity="month", group_by=["model"])
    assert (row.model, row.tokens_in, row.cost) == ("claude-3-5-sonnet", 1000, CLASS_COST)


def test_the_server_computes_the_cost_itself(client):
    """A total_cost sent with the event is not the server's; the formula is."""
    body = {**token_event(client).to_dict(), "total_cost": "999"}
    answer = client.transport.request("POST", "/api/meter/event", body=body)
    assert Decimal(answer["cost"]) == CLASS_COST


def test_a_class_without_its_own_price_is_billed_at_the_input_price(client):
    event = token_event(client, cached_input_token_price=None, cache_write_token_price=None)
    client.record_event(event)
    [stored] = client.get_events()
    # (1000 + 50) x 0.003 + 10 x 0.01: the 0.2 formula, with cache writes on top
    assert stored.total_cost == Decimal("3.25")
    assert stored.cached_input_token_price is None
    raw = client.transport.request("GET", "/api/meter/events", params=_own(client))[0]
    assert "cached_input_token_price" not in raw
    assert "cache_write_token_price" not in raw
    assert (raw["cached_tokens_in"], raw["cache_write_tokens"]) == (400, 50)


def test_an_event_without_classes_is_listed_as_before(client):
    plain = token_event(
        client,
        cached_tokens_in=0,
        cache_write_tokens=0,
        cached_input_token_price=None,
        cache_write_token_price=None,
        model=None,
    )
    client.record_event(plain)
    [raw] = client.transport.request("GET", "/api/meter/events", params=_own(client))
    classes = {"cached_tokens_in", "cache_write_tokens", "model"}
    assert classes.isdisjoint(raw)
    assert {"cached_input_token_price", "cache_write_token_price"}.isdisjoint(raw)
    assert Decimal(raw["total_cost"]) == Decimal("3.1")


def test_a_resend_is_a_duplicate_and_other_classes_are_a_conflict(client):
    event = token_event(client)
    client.record_event(event)

    again = client.record_event(event)
    assert (again.duplicate, again.cost) == (True, CLASS_COST)

    for change in (
        {"cached_tokens_in": 300},
        {"cache_write_tokens": 0},
        {"cached_input_token_price": "0.0004"},
        {"cache_write_token_price": None},
        {"model": "gpt-4o"},
    ):
        forged = token_event(client, id=event.id, **change)
        with pytest.raises(ConflictError) as caught:
            client.record_event(forged)
        assert caught.value.status_code == 409
        assert caught.value.code == "idempotency_conflict"
        assert next(iter(change)) in str(caught.value)
        batch = client.record_events([forged])
        assert [r.error.code for r in batch.rejected] == ["idempotency_conflict"]

    same_money = token_event(client, id=event.id, cached_input_token_price="0.00030")
    assert client.record_event(same_money).duplicate  # money compares by value
    assert client.get_meter_stats(timeframe="all").total_events == 1
    assert client.get_user_meter("user-1").current_usage == CLASS_COST


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"cached_tokens_in": 1001}, "cached_tokens_in"),
        ({"cached_tokens_in": -1}, "cached_tokens_in"),
        ({"cache_write_tokens": 1.5}, "cache_write_tokens"),
        ({"cache_write_tokens": "many"}, "cache_write_tokens"),
        ({"cached_input_token_price": "-0.1"}, "cached_input_token_price"),
        ({"cache_write_token_price": "NaN"}, "cache_write_token_price"),
        ({"model": "m" * 201}, "model"),
        ({"model": ["gpt-4o"]}, "model"),
    ],
)
def test_invalid_class_fields_are_422_naming_the_field(client, changes, field):
    body = {**token_event(client).to_dict(), **changes}
    with pytest.raises(UnprocessableEntityError) as caught:
        client.transport.request("POST", "/api/meter/event", body=body)
    assert field in [detail["field"] for detail in caught.value.details]
    answer = client.transport.request("POST", "/api/meter/events/batch", body={"events": [body]})
    assert answer["accepted"] == 0
    assert field in [detail["field"] for detail in answer["rejected"][0]["error"]["details"]]
    assert client.get_events() == []


# ---------------------------------------------- upgrade from version 3


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/ledger.db"
    return request.getfixturevalue("postgres_databases")("upgrade_v3")


# The events table exactly as version 3 made it (before the token classes).
_v3 = MetaData()
_V3_EVENTS = Table(
    "events",
    _v3,
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
    Column("model", String(200)),
    Column("metadata", Text, nullable=False),
    PrimaryKeyConstraint("project_id", "id", name="events_pkey"),
    Index("ix_events_project_ts", "project_id", "ts"),
    Index("ix_events_project_user_ts", "project_id", "user_id", "ts"),
    Index("ix_events_project_agent_ts", "project_id", "agent_id", "ts"),
)
_T0 = 1_741_608_000_000_000  # 2025-03-10T12:00:00Z in micros


def _v3_row(number: int) -> dict:
    unpriced = number % 4 == 0
    model = f"model-{number % 3}"
    marks = {"model": model, "unpriced": True} if unpriced else {"model": model}
    metadata = json.dumps(marks, separators=(",", ":"))
    if number == 5:  # "unpriced" deeper down is not the mark
        metadata = '{"model":"model-2","nested":{"unpriced":true}}'
    price = Decimal(0) if unpriced else Decimal("0.000003")
    return {
        "id": f"ev-{number:04d}",
        "project_id": "p",
        "agent_id": "agent",
        "user_id": "user",
        "payment_type": "token_based_pay",
        "event_type": "token_usage",
        "ts": _T0 + number * 1_000_000,
        "recorded_at": _T0,
        "api_calls": 0,
        "tokens_in": 100 * number,
        "tokens_out": number,
        "unit_price": None,
        "input_token_price": price,
        "output_token_price": price,
        "amount": None,
        "description": None,
        "total_cost": price * 101 * number,
        "model": model,
        "metadata": metadata,
    }


def _make_version_3_ledger(url: str, rows: list[dict]) -> None:
    engine = create_engine(url)
    with engine.begin() as connection:
        for table in (schema_version, projects, api_keys, user_meters, billing_records):
            table.create(connection)
        for table in (model_prices, price_settings):
            table.create(connection)
        _V3_EVENTS.create(connection)
        connection.execute(schema_version.insert().values(id=1, version=3))
        connection.execute(_V3_EVENTS.insert(), rows)
    engine.dispose()


def test_a_version_3_ledger_is_upgraded_to_4_keeping_every_row(ledger_url):
    rows = [_v3_row(n) for n in range(1, 41)]
    _make_version_3_ledger(ledger_url, rows)

    ledger = Ledger.open(ledger_url)
    try:
        with ledger.reading() as connection:
            version = connection.execute(select(schema_version.c.version)).scalar_one()
            kept = connection.execute(select(_V3_EVENTS)).mappings().all()
            added = connection.execute(
                select(
                    events.c.id,
                    events.c.cached_tokens_in,
                    events.c.cache_write_tokens,
                    events.c.cached_input_token_price,
                    events.c.cache_write_token_price,
                    events.c.unpriced,
                )
            ).all()
            indexes = {index["name"] for index in inspect(connection).get_indexes("events")}
        assert version == SCHEMA_VERSION == 10
        assert sorted((dict(row) for row in kept), key=lambda r: r["id"]) == rows
        marked = {row.id for row in added if row.unpriced}
        assert marked == {f"ev-{n:04d}" for n in range(1, 41) if n % 4 == 0}
        assert {tuple(row[1:5]) for row in added} == {(0, 0, None, None)}
        assert "ix_events_project_unpriced" in indexes

        # Old rows read as they did, and resending one is a duplicate.
        listed = ledger.list_events(EventQuery(project_id="p", limit=1000))
        assert {"cached_tokens_in", "cache_write_tokens"}.isdisjoint(listed[0])
        old = TokenBasedPayEvent(
            id="ev-0001",
            project_id="p",
            agent_id="agent",
            user_id="user",
            tokens_in=100,
            tokens_out=1,
            input_token_price="0.000003",
            output_token_price="0.000003",
            timestamp=BASE_TIME + timedelta(seconds=1),
            metadata={"model": "model-1"},
        )
        [outcome] = ledger.record_events([old])
        assert (outcome.duplicate, outcome.conflicts) == (True, ())
        unpriced = ledger.unpriced_models("p")
        assert [(m.model, m.events, m.tokens_in) for m in unpriced] == [
            ("model-0", 3, 100 * (12 + 24 + 36)),
            ("model-1", 4, 100 * (4 + 16 + 28 + 40)),
            ("model-2", 3, 100 * (8 + 20 + 32)),
        ]

        # New events carry classes.
        fresh = TokenBasedPayEvent(project_id="p", agent_id="a", **CLASSES)
        [stored] = ledger.record_events([fresh])
        assert stored.cost == CLASS_COST
    finally:
        ledger.close()
    again = Ledger.open(ledger_url)  # a second open finds nothing to do
    assert again.stats("p", "all").total_events == 41
    again.close()
