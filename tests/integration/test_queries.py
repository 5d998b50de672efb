"""Stats, reports and user meters: exact Decimal sums, in both modes."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from agentmeter.errors import AgentMeterValidationError, UnprocessableEntityError
from agentmeter.models import APIRequestPayEvent, InstantPayEvent, TokenBasedPayEvent

from .conftest import BASE_TIME


def make(client, kind, at, user="u1", agent="a1", model=None, **fields):
    common = {
        "project_id": client.project_id,
        "agent_id": agent,
        "user_id": user,
        "timestamp": at,
        "metadata": {"model": model} if model else {},
    }
    if kind == "api":
        return APIRequestPayEvent(**common, **fields)
    if kind == "tokens":
        return TokenBasedPayEvent(**common, **fields)
    return InstantPayEvent(**common, **fields)


# ------------------------------------------------------------------- stats


def test_stats_of_an_empty_project_are_zero(client):
    stats = client.get_meter_stats(timeframe="all")
    assert (stats.total_events, stats.total_api_calls, stats.total_cost) == (0, 0, Decimal(0))
    assert (stats.total_tokens_in, stats.total_tokens_out) == (0, 0)


def test_stats_count_each_timeframe_exactly(client):
    now = datetime.now(timezone.utc)
    ages = {  # hours before now -> event
        0: make(client, "api", now, api_calls=3, unit_price="0.1"),
        2: make(
            client,
            "tokens",
            now - timedelta(hours=2),
            tokens_in=1000,
            tokens_out=10,
            input_token_price="0.000001",
            output_token_price="0.2",
        ),
        30: make(client, "instant", now - timedelta(hours=30), amount="0.000000000000000001"),
        240: make(client, "api", now - timedelta(days=10), api_calls=1, unit_price="0.7"),
        960: make(client, "instant", now - timedelta(days=40), amount="1000000.01"),
    }
    assert client.record_events(ages.values()).accepted == 5

    def expected(max_hours):
        chosen = [event for age, event in ages.items() if age < max_hours]
        return (
            len(chosen),
            sum((e.get("api_calls", 0) for e in chosen), 0),
            sum((e.get("tokens_in", 0) for e in chosen), 0),
            sum((e.get("tokens_out", 0) for e in chosen), 0),
            sum((e.total_cost for e in chosen), Decimal(0)),
        )

    for timeframe, hours in [
        ("1 hour", 1),
        ("24 hours", 24),
        ("48 hours", 48),
        ("7 days", 24 * 7),
        ("30 days", 24 * 30),
        ("3 days", 72),
        ("all", 10**6),
    ]:
        stats = client.get_meter_stats(timeframe=timeframe)
        got = (
            stats.total_events,
            stats.total_api_calls,
            stats.total_tokens_in,
            stats.total_tokens_out,
            stats.total_cost,
        )
        assert got == expected(hours), timeframe
        assert stats.timeframe == timeframe
    # 0.3 + 0.001 + 2 + 1e-18 + 0.7 + 1000000.01, to the last digit.
    assert client.get_meter_stats(timeframe="all").total_cost == Decimal(
        "1000003.011000000000000001"
    )
    assert client.get_meter_stats(timeframe="24 hours").total_cost == Decimal("2.301")


def test_stats_refuse_an_unknown_timeframe(client):
    with pytest.raises(AgentMeterValidationError) as at_call_site:
        client.get_meter_stats(timeframe="fortnight")
    assert at_call_site.value.field == "timeframe"
    # Sent anyway (as another SDK could): the server names the field too.
    params = {"project_id": client.project_id, "timeframe": "fortnight"}
    with pytest.raises(UnprocessableEntityError) as from_server:
        client.transport.request("GET", "/api/meter/stats", params=params)
    assert [detail["field"] for detail in from_server.value.details] == ["timeframe"]


# ------------------------------------------------------------------ reports


@pytest.fixture
def month_of_events(client):
    """Events over two months, three days and several hours, users, agents and models."""
    t = BASE_TIME  # 2025-03-10 12:00 UTC
    events = [
        make(client, "api", t, "u1", "a1", "gpt-4o", api_calls=2, unit_price="0.1"),
        make(
            client,
            "api",
            t + timedelta(minutes=59, seconds=59),
            "u1",
            "a1",
            "gpt-4o",
            api_calls=1,
            unit_price="0.2",
        ),
        make(
            client,
            "tokens",
            t + timedelta(hours=1),
            "u2",
            "a1",
            "claude",
            tokens_in=1000,
            tokens_out=100,
            input_token_price="0.000003",
            output_token_price="0.000015",
        ),
        make(
            client,
            "tokens",
            t + timedelta(hours=1, minutes=5),
            "u1",
            "a2",
            "gpt-4o",
            tokens_in=10,
            tokens_out=20,
            input_token_price="0.01",
            output_token_price="0.03",
        ),
        make(client, "instant", t + timedelta(hours=12), "u2", "a2", None, amount="0.005"),
        make(client, "instant", t + timedelta(days=1), "u1", "a1", "claude", amount="1.1"),
        make(
            client,
            "api",
            datetime(2025, 3, 31, 23, 59, 59, 999999, tzinfo=timezone.utc),
            "u2",
            "a2",
            "gpt-4o",
            api_calls=5,
            unit_price="0.3",
        ),
        make(
            client,
            "api",
            datetime(2025, 4, 1, tzinfo=timezone.utc),
            "u2",
            "a1",
            None,
            api_calls=1,
            unit_price="0.000000000000000007",
        ),
    ]
    assert client.record_events(events).accepted == len(events)
    return events


GROUP_FIELDS = {
    "user": "user_id",
    "agent": "agent_id",
    "payment_type": "payment_type",
    "model": "model",
}


def period_of(moment, granularity):
    if granularity == "hour":
        return moment.replace(minute=0, second=0, microsecond=0).isoformat().replace("+00:00", "Z")
    if granularity == "day":
        return moment.date().isoformat()
    return moment.strftime("%Y-%m")


def expected_report(events, granularity, group_by):
    rows = defaultdict(lambda: [0, 0, 0, 0, Decimal(0)])
    for event in events:
        groups = {
            "user_id": event.user_id,
            "agent_id": event.agent_id,
            "payment_type": event.payment_type.value,
            "model": event.metadata.get("model"),
        }
        key = (
            period_of(event.timestamp, granularity),
            *(groups[GROUP_FIELDS[group]] for group in group_by),
        )
        row = rows[key]
        row[0] += 1
        row[1] += event.get("api_calls", 0)
        row[2] += event.get("tokens_in", 0)
        row[3] += event.get("tokens_out", 0)
        row[4] += event.total_cost
    return {key: tuple(value) for key, value in rows.items()}


def as_table(rows, group_by):
    table = {}
    for row in rows:
        key = (row.period, *(getattr(row, GROUP_FIELDS[group]) for group in group_by))
        assert key not in table
        table[key] = (row.events, row.api_calls, row.tokens_in, row.tokens_out, row.cost)
    return table


@pytest.mark.parametrize("granularity", ["hour", "day", "month"])
@pytest.mark.parametrize(
    "group_by",
    [
        [],
        ["user"],
        ["agent"],
        ["payment_type"],
        ["model"],
        ["user", "model"],
        ["agent", "payment_type", "model", "user"],
    ],
    ids="-".join,
)
def test_report_sums_each_period_and_group_exactly(client, month_of_events, granularity, group_by):
    rows = client.get_report(granularity=granularity, group_by=group_by)

    assert as_table(rows, group_by) == expected_report(month_of_events, granularity, group_by)
    periods = [row.period for row in rows]
    assert periods == sorted(periods)
    assert sum((row.cost for row in rows), Decimal(0)) == sum(
        (event.total_cost for event in month_of_events), Decimal(0)
    )
    for row in rows:  # keys not grouped by are absent
        for group, field in GROUP_FIELDS.items():
            if group not in group_by:
                assert getattr(row, field) is None


def test_report_period_labels(client, month_of_events):
    assert [row.period for row in client.get_report(granularity="month")] == [
        "2025-03",
        "2025-04",
    ]
    days = [row.period for row in client.get_report(granularity="day")]
    assert days == ["2025-03-10", "2025-03-11", "2025-03-31", "2025-04-01"]
    hours = [row.period for row in client.get_report(granularity="hour")]
    assert hours[:3] == ["2025-03-10T12:00:00Z", "2025-03-10T13:00:00Z", "2025-03-11T00:00:00Z"]


def test_report_model_comes_from_metadata(client, month_of_events):
    rows = client.get_report(granularity="month", group_by="model")
    by_model = {(row.period, row.model): row.cost for row in rows}
    assert by_model == {
        ("2025-03", "gpt-4o"): Decimal("0.4") + Decimal("0.7") + Decimal("1.5"),
        ("2025-03", "claude"): Decimal("0.0045") + Decimal("1.1"),
        ("2025-03", None): Decimal("0.005"),
        ("2025-04", None): Decimal("0.000000000000000007"),
    }


def test_report_time_range_is_half_open_and_filters_apply(client, month_of_events):
    start = BASE_TIME + timedelta(hours=1)  # the third event, exactly
    end = datetime(2025, 3, 31, 23, 59, 59, 999999, tzinfo=timezone.utc)  # the seventh

    rows = client.get_report(granularity="month", start_date=start, end_date=end)

    assert as_table(rows, []) == expected_report(month_of_events[2:6], "month", [])
    only_u2 = client.get_report(granularity="month", user_id="u2", group_by=["agent"])
    chosen = [event for event in month_of_events if event.user_id == "u2"]
    assert as_table(only_u2, ["agent"]) == expected_report(chosen, "month", ["agent"])
    only_a2 = client.get_report(granularity="day", agent_id="a2")
    chosen = [event for event in month_of_events if event.agent_id == "a2"]
    assert as_table(only_a2, []) == expected_report(chosen, "day", [])


def test_report_of_an_empty_range_is_empty(client, month_of_events):
    assert client.get_report(start_date="2030-01-01", end_date="2030-02-01") == []


def test_report_refuses_unknown_group_and_granularity(client):
    for params, field in [
        ({"granularity": "week"}, "granularity"),
        ({"group_by": ["colour"]}, "group_by"),
    ]:
        query = {"project_id": client.project_id, **params}
        with pytest.raises(UnprocessableEntityError) as caught:
            client.transport.request("GET", "/api/meter/report", params=query)
        assert caught.value.details[0]["field"].startswith(field)


# ------------------------------------------------------------- user meters


def test_a_user_never_seen_has_zero_usage_and_no_threshold(client):
    meter = client.get_user_meter("nobody")
    assert (meter.project_id, meter.user_id) == (client.project_id, "nobody")
    assert meter.current_usage == Decimal(0)
    assert meter.threshold_amount is None
    assert meter.remaining_budget is None
    assert meter.is_over_limit is False


def test_set_increment_and_reset_a_user_meter(client):
    meter = client.set_user_meter(threshold_amount="10.10", user_id="u1")
    assert (meter.threshold_amount, meter.current_usage) == (Decimal("10.10"), Decimal(0))

    client.increment_user_meter(0.1, user_id="u1")
    meter = client.increment_user_meter("0.2", user_id="u1")
    assert meter.current_usage == Decimal("0.3")  # never 0.30000000000000004
    assert meter.remaining_budget == Decimal("9.80")

    before_reset = datetime.now(timezone.utc) - timedelta(seconds=1)
    meter = client.reset_user_meter(user_id="u1")
    assert meter.current_usage == Decimal(0)
    assert meter.threshold_amount == Decimal("10.10")  # a reset keeps the budget
    assert meter.last_reset_at is not None
    assert meter.last_reset_at >= before_reset

    meter = client.set_user_meter(threshold_amount=5, user_id="u1")
    assert meter.threshold_amount == Decimal(5)
    assert client.get_user_meter("u1") == meter
    meter = client.increment_user_meter("6", user_id="u1")
    assert meter.is_over_limit is True
    assert client.get_user_meter("u2").current_usage == Decimal(0)  # users are apart


def test_reset_of_an_unknown_user_creates_an_empty_meter(client):
    meter = client.reset_user_meter(user_id="fresh")
    assert (meter.current_usage, meter.threshold_amount) == (Decimal(0), None)
    assert meter.last_reset_at is not None


def test_recorded_events_add_their_cost_to_the_user_meter_exactly(client):
    client.set_user_meter(threshold_amount="1", user_id="u1")
    client.record_api_request_pay(api_calls=3, unit_price="0.1", user_id="u1")
    client.record_token_based_pay(
        tokens_in=7,
        tokens_out=3,
        input_token_price="0.000001",
        output_token_price="0.2",
        user_id="u1",
    )
    client.record_instant_pay(amount="0.000000000000000001", user_id="u1")
    client.record_instant_pay(amount="5", user_id="u2")
    client.increment_user_meter("0.05", user_id="u1")

    meter = client.get_user_meter("u1")
    assert meter.current_usage == Decimal("0.950007000000000001")
    assert meter.threshold_amount == Decimal("1")
    assert client.get_user_meter("u2").current_usage == Decimal("5")


def test_meter_inputs_are_validated_on_both_sides(client):
    with pytest.raises(AgentMeterValidationError) as at_call_site:
        client.increment_user_meter("-1", user_id="u1")
    assert at_call_site.value.field == "amount"
    for path, method, body, field in [
        ("/api/meter/increment", "POST", {"user_id": "u1", "amount": "-1"}, "amount"),
        ("/api/meter/increment", "POST", {"user_id": "u1", "amount": "NaN"}, "amount"),
        ("/api/meter", "PUT", {"user_id": "u1", "threshold_amount": "abc"}, "threshold_amount"),
        ("/api/meter", "PUT", {"user_id": "u1"}, "threshold_amount"),
        ("/api/meter/reset", "POST", {"user": "u1"}, "user_id"),
    ]:
        with pytest.raises(UnprocessableEntityError) as caught:
            client.transport.request(method, path, body={"project_id": client.project_id, **body})
        assert [detail["field"] for detail in caught.value.details] == [field], body
    assert client.get_user_meter("u1").current_usage == Decimal(0)
    assert client.get_user_meter("u1").threshold_amount is None


# ------------------------------------------------------- events by model


def test_events_are_listed_by_model_and_carry_it(client):
    """``GET /api/meter/events?model=`` keeps that model's events (the event's own
    model, else its metadata's), and a token event read back names its model."""
    at = datetime.now(timezone.utc) - timedelta(hours=1)
    prices = {"input_token_price": "0.000001", "output_token_price": "0.000002"}
    own = TokenBasedPayEvent(
        project_id=client.project_id, agent_id="a1", user_id="u1", timestamp=at, model="gpt-4o",
        tokens_in=10, tokens_out=5, **prices,
    )  # fmt: skip
    tagged = make(client, "tokens", at, model="gpt-4o", tokens_in=1, tokens_out=1, **prices)
    other = make(client, "tokens", at, model="claude-sonnet-4", tokens_in=1, tokens_out=1, **prices)
    assert client.record_events([own, tagged, other]).accepted == 3
    listed = client.get_events(model="gpt-4o")
    assert sorted(event.id for event in listed) == sorted([own.id, tagged.id])
    assert {event.model for event in listed} == {"gpt-4o"}
    assert client.get_events(model="no-such-model") == []
