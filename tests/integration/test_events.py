"""Recording events (single and batch), idempotency, and listing them with every filter.

Each test runs against the live server and in embedded mode (``client`` fixture).
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from agentmeter import __version__
from agentmeter.errors import ConflictError, PayloadTooLargeError
from agentmeter.models import (
    APIRequestPayEvent,
    EventType,
    InstantPayEvent,
    PaymentType,
    TokenBasedPayEvent,
)

from .conftest import BASE_TIME


def api_event(client, price="0.001", calls=1, at=None, **fields):
    if at is not None:
        fields["timestamp"] = at
    fields.setdefault("agent_id", client.agent_id)
    fields.setdefault("user_id", "user-1")
    return APIRequestPayEvent(
        project_id=client.project_id, api_calls=calls, unit_price=price, **fields
    )


def token_event(client, tokens_in, tokens_out, in_price, out_price, at=None, **fields):
    if at is not None:
        fields["timestamp"] = at
    fields.setdefault("agent_id", client.agent_id)
    fields.setdefault("user_id", "user-1")
    return TokenBasedPayEvent(
        project_id=client.project_id,
        tokens_in=tokens_in,
        tokens_out=tokens_out,
        input_token_price=in_price,
        output_token_price=out_price,
        **fields,
    )


def instant_event(client, amount, at=None, **fields):
    if at is not None:
        fields["timestamp"] = at
    fields.setdefault("agent_id", client.agent_id)
    fields.setdefault("user_id", "user-1")
    return InstantPayEvent(project_id=client.project_id, amount=amount, **fields)


def totals(client):
    """(event count, exact total cost) of the client's project, all time."""
    stats = client.get_meter_stats(timeframe="all")
    return stats.total_events, stats.total_cost


# ------------------------------------------------------------------ health


def test_health(client):
    assert client.health_check() == {"status": "healthy", "version": __version__}


# ----------------------------------------------------------- single events


def test_record_api_request_pay(client):
    answer = client.record_api_request_pay(
        api_calls=3, unit_price="0.003", user_id="user-1", metadata={"route": "/chat"}
    )

    assert answer.success is True
    assert answer.duplicate is False
    assert answer.cost == Decimal("0.009")
    [stored] = client.get_events()
    assert stored.id == answer.event_id
    assert stored.payment_type is PaymentType.API_REQUEST_PAY
    assert stored.event_type is EventType.API_CALL
    assert (stored.api_calls, stored.unit_price) == (3, Decimal("0.003"))
    assert stored.total_cost == Decimal("0.009")
    assert (stored.project_id, stored.agent_id, stored.user_id) == (
        client.project_id,
        "agent-1",
        "user-1",
    )
    assert stored.metadata == {"route": "/chat"}
    assert stored.timestamp == answer.timestamp


def test_record_token_based_pay(client):
    answer = client.record_token_based_pay(
        tokens_in=1000,
        tokens_out=500,
        input_token_price="0.004",
        output_token_price=0.0001,  # a float goes through its shortest text
        user_id="user-1",
    )

    assert answer.cost == Decimal("4.05")
    [stored] = client.get_events()
    assert isinstance(stored, TokenBasedPayEvent)
    assert (stored.tokens_in, stored.tokens_out) == (1000, 500)
    assert stored.input_token_price == Decimal("0.004")
    assert stored.output_token_price == Decimal("0.0001")
    assert stored.total_cost == Decimal("4.05")
    assert stored.event_type is EventType.TOKEN_USAGE


def test_record_instant_pay(client):
    answer = client.record_instant_pay(amount="2.50", description="report", user_id="user-1")

    assert answer.cost == Decimal("2.50")
    [stored] = client.get_events()
    assert isinstance(stored, InstantPayEvent)
    assert (stored.amount, stored.description) == (Decimal("2.50"), "report")
    assert stored.event_type is EventType.INSTANT_PAYMENT


def test_the_server_computes_the_cost_of_all_three_types(client):
    client.record_api_request_pay(api_calls=7, unit_price="0.0003", user_id="u")
    client.record_token_based_pay(
        tokens_in=123,
        tokens_out=45,
        input_token_price="0.000004",
        output_token_price="0.000001",
        user_id="u",
    )
    client.record_instant_pay(amount="0.1", user_id="u")

    expected = Decimal("0.0021") + Decimal("0.000492") + Decimal("0.000045") + Decimal("0.1")
    assert totals(client) == (3, expected)
    assert client.get_user_meter("u").current_usage == expected


# ------------------------------------------------------------------ batches


def test_batch_stores_every_type(client):
    events = [
        api_event(client, "0.01", calls=2),
        token_event(client, 10, 20, "0.001", "0.002"),
        instant_event(client, "1.5"),
    ]

    result = client.record_events(events)

    assert (result.accepted, result.duplicates, result.rejected) == (3, 0, [])
    assert {event.id for event in client.get_events()} == {event.id for event in events}
    assert totals(client) == (3, Decimal("0.02") + Decimal("0.05") + Decimal("1.5"))


def test_batch_keeps_the_valid_events_and_names_the_invalid_ones(client):
    """The client cannot see metadata over 16 KiB: the server rejects that event only."""
    good = [api_event(client, "0.25"), instant_event(client, "0.5")]
    too_big = api_event(client, "9", metadata={"blob": "x" * (17 * 1024)})

    result = client.record_events([good[0], too_big, good[1]])

    assert (result.accepted, result.duplicates) == (2, 0)
    [rejected] = result.rejected
    assert (rejected.index, rejected.id) == (1, too_big.id)
    assert rejected.error.code == "validation_error"
    assert [detail["field"] for detail in rejected.error.details] == ["metadata"]
    assert {event.id for event in client.get_events()} == {good[0].id, good[1].id}
    assert totals(client) == (2, Decimal("0.75"))
    assert client.get_user_meter("user-1").current_usage == Decimal("0.75")


def test_batch_of_raw_bodies_rejects_each_invalid_event_by_field(client):
    """What another SDK might send: the wire answer names index, id and field."""
    base = {
        "project_id": client.project_id,
        "agent_id": "agent-1",
        "user_id": "user-1",
        "payment_type": "api_request_pay",
        "api_calls": 1,
    }
    good = api_event(client, "0.4")
    body = {
        "events": [
            {**base, "id": "bad-price", "unit_price": "abc"},
            good.to_dict(),
            {**base, "id": "bad-calls", "unit_price": "1", "api_calls": True},
            {**base, "id": "bad-type", "payment_type": "monthly_pay", "unit_price": "1"},
            {**base, "id": "no-price"},
            {**base, "id": "bad-time", "unit_price": "1", "timestamp": "yesterday"},
            "not an event",
        ]
    }

    answer = client.transport.request("POST", "/api/meter/events/batch", body=body)

    assert (answer["accepted"], answer["duplicates"]) == (1, 0)
    named = {
        item["id"]: (item["index"], [detail["field"] for detail in item["error"]["details"]])
        for item in answer["rejected"]
    }
    assert named == {
        "bad-price": (0, ["unit_price"]),
        "bad-calls": (2, ["api_calls"]),
        "bad-type": (3, ["payment_type"]),
        "no-price": (4, ["unit_price"]),
        "bad-time": (5, ["timestamp"]),
        None: (6, []),
    }
    assert [event.id for event in client.get_events()] == [good.id]


def test_a_batch_over_1000_events_is_refused_whole(client):
    events = [api_event(client, "0.001").to_dict() for _ in range(1001)]
    with pytest.raises(PayloadTooLargeError) as caught:
        client.transport.request("POST", "/api/meter/events/batch", body={"events": events})
    assert (caught.value.status_code, caught.value.code) == (413, "too_many_events")
    assert totals(client) == (0, Decimal(0))


def test_record_events_splits_large_batches(client):
    events = [api_event(client, "0.001", user_id=f"user-{i % 3}") for i in range(1205)]

    result = client.record_events(events)

    assert (result.accepted, result.duplicates, result.rejected) == (1205, 0, [])
    assert totals(client) == (1205, Decimal("1.205"))


# ------------------------------------------------------------- idempotency


def test_a_resent_event_changes_nothing(client):
    event = api_event(client, "0.125", calls=2)
    first = client.record_event(event)
    before = (totals(client), client.get_user_meter("user-1").current_usage)

    again = client.record_event(event)
    batch = client.record_events([event, event])

    assert first.duplicate is False
    assert again.duplicate is True
    assert again.event_id == event.id
    assert again.cost == Decimal("0.250")
    assert again.timestamp == first.timestamp
    assert (batch.accepted, batch.duplicates, batch.rejected) == (0, 2, [])
    after = (totals(client), client.get_user_meter("user-1").current_usage)
    assert after == before == ((1, Decimal("0.25")), Decimal("0.25"))
    [stored] = client.get_events()
    assert (stored.api_calls, stored.unit_price) == (2, Decimal("0.125"))


def test_an_id_resent_with_other_content_is_an_idempotency_conflict(client):
    # Updated for issue 11: this used to answer duplicate with the first event's cost.
    event = api_event(client, "0.125", calls=2)
    client.record_event(event)
    forged = api_event(client, "99", calls=5, id=event.id, at=event.timestamp)

    with pytest.raises(ConflictError) as caught:
        client.record_event(forged)
    batch = client.record_events([event, forged])

    assert caught.value.status_code == 409
    assert caught.value.code == "idempotency_conflict"
    assert "api_calls, unit_price differ" in str(caught.value)
    [rejected] = batch.rejected
    assert (batch.accepted, batch.duplicates) == (0, 1)
    assert (rejected.index, rejected.id) == (1, event.id)
    assert rejected.error.code == "idempotency_conflict"
    assert totals(client) == (1, Decimal("0.25"))
    assert client.get_user_meter("user-1").current_usage == Decimal("0.25")


def test_the_same_id_twice_in_one_batch_is_stored_once(client):
    event = instant_event(client, "0.3")
    other = instant_event(client, "0.7")
    forged = instant_event(client, "5", id=event.id, at=event.timestamp)

    result = client.record_events([event, other, forged, event])

    [rejected] = result.rejected
    assert (result.accepted, result.duplicates) == (2, 1)
    assert (rejected.index, rejected.error.code) == (2, "idempotency_conflict")
    assert totals(client) == (2, Decimal("1.0"))
    assert client.get_user_meter("user-1").current_usage == Decimal("1.0")
    amounts = {stored.id: stored.amount for stored in client.get_events()}
    assert amounts == {event.id: Decimal("0.3"), other.id: Decimal("0.7")}


def test_event_ids_are_scoped_per_project(backend, client):
    # Updated for issue 11: another project's id used to be a 409 (and told that it exists).
    other_project = backend.new_project("other")
    with backend.connect(other_project, agent_id="agent-1") as other:
        event = api_event(client, "1")
        client.record_event(event)
        same_id = api_event(other, "2", id=event.id)

        answer = other.record_event(same_id)
        result = other.record_events([same_id, api_event(other, "3")])

        assert (answer.duplicate, answer.cost) == (False, Decimal("2"))
        assert (result.accepted, result.duplicates, result.rejected) == (1, 1, [])
        assert totals(other) == (2, Decimal("5"))
    assert totals(client) == (1, Decimal("1"))


# ---------------------------------------------------------------- listing


@pytest.fixture
def spread(client):
    """Six events an hour apart, of every type, two agents and two users."""
    at = [BASE_TIME + timedelta(hours=i) for i in range(6)]
    events = [
        api_event(client, "0.1", at=at[0], agent_id="a1", user_id="u1"),
        token_event(client, 100, 10, "0.001", "0.002", at=at[1], agent_id="a1", user_id="u2"),
        instant_event(client, "1", at=at[2], agent_id="a2", user_id="u1"),
        api_event(client, "0.2", at=at[3], agent_id="a2", user_id="u2"),
        token_event(client, 5, 5, "0.01", "0.01", at=at[4], agent_id="a1", user_id="u1"),
        instant_event(client, "2", at=at[5], agent_id="a2", user_id="u2"),
    ]
    assert client.record_events(events).accepted == 6
    return events


def ids(events):
    return [event.id for event in events]


def test_events_come_newest_first(client, spread):
    assert ids(client.get_events()) == ids(reversed(spread))


def test_events_filter_by_agent_user_and_types(client, spread):
    newest_first = list(reversed(spread))

    def expect(**match):
        return [e.id for e in newest_first if all(e.get(k) == v for k, v in match.items())]

    assert ids(client.get_events(agent_id="a1")) == expect(agent_id="a1")
    assert ids(client.get_events(user_id="u2")) == expect(user_id="u2")
    assert ids(client.get_events(agent_id="a2", user_id="u2")) == expect(
        agent_id="a2", user_id="u2"
    )
    for event_type, payment_type in [
        ("api_call", "api_request_pay"),
        ("token_usage", "token_based_pay"),
        ("instant_payment", "instant_pay"),
    ]:
        by_event = ids(client.get_events(event_type=event_type))
        by_payment = ids(client.get_events(payment_type=PaymentType(payment_type)))
        assert by_event == by_payment == expect(payment_type=PaymentType(payment_type))
        assert len(by_event) == 2
    assert client.get_events(agent_id="nobody") == []


def test_events_filter_by_a_half_open_time_range(client, spread):
    start, end = spread[1].timestamp, spread[4].timestamp

    assert ids(client.get_events(start_date=start, end_date=end)) == ids(
        reversed(spread[1:4])
    )  # start included, end excluded
    assert ids(client.get_events(start_date=spread[4].timestamp)) == ids(reversed(spread[4:]))
    assert ids(client.get_events(end_date=spread[1].timestamp)) == ids(spread[:1])
    # A date means its midnight (UTC); RFC 3339 text works too.
    day = BASE_TIME.date()
    assert len(client.get_events(start_date=day)) == 6
    assert client.get_events(end_date="2025-03-10T12:00:00Z") == []


def test_events_page_with_limit_and_offset(client, spread):
    newest_first = ids(reversed(spread))

    assert ids(client.get_events(limit=2)) == newest_first[:2]
    assert ids(client.get_events(limit=2, offset=2)) == newest_first[2:4]
    assert ids(client.get_events(limit=4, offset=4)) == newest_first[4:]
    assert client.get_events(offset=6) == []
    assert ids(client.get_events(limit=1000)) == newest_first
    # Beyond a 64-bit integer (what SQL takes): simply no events, not a 500.
    assert client.get_events(offset=2**64) == []


def test_events_keep_every_field(client, spread):
    stored = {event.id: event for event in client.get_events()}
    for sent in spread:
        assert stored[sent.id].to_dict() == sent.to_dict()
