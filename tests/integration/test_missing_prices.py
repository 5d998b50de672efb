"""``GET /api/prices/missing``: a project's events recorded at 0 for want of a price,
by model, on every backend (HTTP on SQLite, embedded, HTTP on PostgreSQL)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
import requests

from agentmeter import AgentMeterTracker
from agentmeter.errors import (
    AgentMeterValidationError,
    PermissionDeniedError,
    UnprocessableEntityError,
)
from agentmeter.models import TokenBasedPayEvent, UnpricedModel

from .conftest import BASE_TIME


def missing(client, **query) -> list[UnpricedModel]:
    return client.get_missing_prices(**query)


def unpriced(client, named: str | None, tokens_in: int, at, **fields) -> TokenBasedPayEvent:
    """Recorded at 0 for want of a price; ``named`` goes in the metadata (as the SDK does)."""
    metadata = {"unpriced": True} if named is None else {"model": named, "unpriced": True}
    return TokenBasedPayEvent(
        id=f"ev-{uuid.uuid4()}",
        project_id=client.project_id,
        agent_id="agent-1",
        user_id="user-1",
        tokens_in=tokens_in,
        tokens_out=tokens_in // 10,
        input_token_price=0,
        output_token_price=0,
        timestamp=at,
        metadata=metadata,
        **fields,
    )


def priced(client, model: str, at) -> TokenBasedPayEvent:
    return TokenBasedPayEvent(
        project_id=client.project_id,
        agent_id="agent-1",
        user_id="user-1",
        tokens_in=1000,
        tokens_out=100,
        input_token_price="0.000003",
        output_token_price="0.000015",
        timestamp=at,
        metadata={"model": model},
    )


def test_none_when_every_event_is_priced(client):
    assert missing(client) == []
    client.record_events([priced(client, "gpt-4o", BASE_TIME)])
    assert missing(client) == []


def test_unpriced_events_are_listed_by_model_with_their_tokens(client):
    day = timedelta(days=1)
    result = client.record_events(
        [
            unpriced(client, "house-b", 100, BASE_TIME),
            unpriced(client, "house-a", 200, BASE_TIME + day),
            unpriced(client, "house-a", 300, BASE_TIME + 2 * day),
            unpriced(client, "house-a", 50, BASE_TIME - 30 * day),  # an earlier month
            priced(client, "house-a", BASE_TIME),  # priced later: not missing
        ]
    )
    assert result.accepted == 5

    found = missing(client)

    assert [(m.model, m.events, m.tokens_in, m.tokens_out) for m in found] == [
        ("house-a", 3, 550, 55),
        ("house-b", 1, 100, 10),
    ]
    assert (found[0].first_seen, found[0].last_seen) == (BASE_TIME - 30 * day, BASE_TIME + 2 * day)
    # start <= time < end, like every other period
    march = missing(client, start_date=BASE_TIME, end_date=BASE_TIME + 2 * day)
    assert [(m.model, m.events, m.tokens_in) for m in march] == [
        ("house-a", 1, 200),
        ("house-b", 1, 100),
    ]
    assert missing(client, start_date=(BASE_TIME + 2 * day).isoformat()) == [
        UnpricedModel(
            model="house-a",
            events=1,
            tokens_in=300,
            tokens_out=30,
            first_seen=BASE_TIME + 2 * day,
            last_seen=BASE_TIME + 2 * day,
        )
    ]
    # Neither the report nor the stats change: tokens_in counts every token.
    assert client.get_meter_stats(timeframe="all").total_tokens_in == 1650


def test_an_unpriced_event_the_model_names_top_level_is_listed_under_it(client):
    event = unpriced(client, None, 40, BASE_TIME, model="top-level-model")
    client.record_event(event)
    assert [(m.model, m.events) for m in missing(client)] == [("top-level-model", 1)]


def test_the_wire_answer(client):
    client.record_event(unpriced(client, "house-a", 10, BASE_TIME))
    answer = client.transport.request(
        "GET", "/api/prices/missing", params={"project_id": client.project_id}
    )
    assert answer == {
        "models": [
            {
                "model": "house-a",
                "events": 1,
                "tokens_in": 10,
                "tokens_out": 1,
                "first_seen": "2025-03-10T12:00:00Z",
                "last_seen": "2025-03-10T12:00:00Z",
            }
        ]
    }


def test_a_model_named_missing_can_still_be_priced(client):
    """GET /api/prices/missing is its own route; PUT and DELETE of a model named
    "missing" still reach the model routes."""
    client.set_price("missing", input="1", output="2")
    assert [row.model for row in client.get_prices().prices] == ["missing"]
    assert missing(client) == []
    assert client.delete_price("missing") == {"deleted": True}


def test_a_bad_date_is_refused_naming_the_field(client):
    with pytest.raises(AgentMeterValidationError, match="start_date"):
        missing(client, start_date="yesterday")
    with pytest.raises(UnprocessableEntityError) as caught:
        client.transport.request(
            "GET",
            "/api/prices/missing",
            params={"project_id": client.project_id, "end_date": "soon"},
        )
    assert [detail["field"] for detail in caught.value.details] == ["end_date"]


def test_the_tracker_s_unpriced_events_are_found(client):
    tracker = AgentMeterTracker(client, outbox=None)
    tracker.track_token_based_pay(
        70, 30, user_id="u", model="mystery-model-9", on_unknown_model="record"
    )
    assert tracker.flush(timeout=30)
    tracker.close()
    [found] = missing(client)
    assert (found.model, found.events, found.tokens_in, found.tokens_out) == (
        "mystery-model-9",
        1,
        70,
        30,
    )


def test_a_project_key_reads_its_own_project_only(http_backend):
    mine, theirs = http_backend.new_project(), http_backend.new_project()
    with http_backend.connect(theirs) as their_client:
        their_client.record_event(unpriced(their_client, "theirs", 5, BASE_TIME))
    with http_backend.connect(mine) as client:
        client.record_event(unpriced(client, "mine", 5, BASE_TIME))
        assert [m.model for m in missing(client)] == ["mine"]
        with pytest.raises(PermissionDeniedError):
            missing(client, project_id=theirs.id)
        # Without project_id the key's own project is read.
        key = mine.api_key.get_secret_value()
        answer = requests.get(
            f"{http_backend.server.url}/api/prices/missing",
            headers={"Authorization": f"Bearer {key}"},
            timeout=10,
        )
        assert [m["model"] for m in answer.json()["models"]] == ["mine"]
    assert [m.model for m in missing(http_backend.admin, project_id=theirs.id)] == ["theirs"]
    unauthenticated = requests.get(f"{http_backend.server.url}/api/prices/missing", timeout=10)
    assert unauthenticated.status_code == 401


def test_the_cost_of_unpriced_events_is_zero(client):
    client.record_event(unpriced(client, "house-a", 1000, BASE_TIME))
    assert client.get_meter_stats(timeframe="all").total_cost == Decimal(0)
