"""Events and answers: the union, computed cost, ids, times, and the JSON form."""

from __future__ import annotations

import json
import re
import time
import uuid
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pydantic
import pytest

from agentmeter import (
    AgentMeterValidationError,
    APIRequestPayEvent,
    BatchResult,
    BillingRecord,
    BillingStatus,
    EventType,
    InstantPayEvent,
    MeterEvent,
    MeterEventResponse,
    MeterStats,
    PaymentType,
    Project,
    RejectedEvent,
    TokenBasedPayEvent,
    UserMeter,
)
from agentmeter.core import jsonio as _json
from agentmeter.core.ids import derived_event_id, new_event_id
from agentmeter.core.wire import parse_timeframe
from agentmeter.models import parse_event

UUID7 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
COMMON = {"project_id": "proj_1", "agent_id": "agent_1", "user_id": "user_1"}


def api_event(**changes):
    return APIRequestPayEvent(**{**COMMON, "api_calls": 3, "unit_price": "0.01", **changes})


def token_event(**changes):
    fields = {
        **COMMON,
        "tokens_in": 1000,
        "tokens_out": 500,
        "input_token_price": "0.004",
        "output_token_price": "0.0001",
    }
    return TokenBasedPayEvent(**{**fields, **changes})


def instant_event(**changes):
    return InstantPayEvent(**{**COMMON, "amount": "2.50", "description": "report", **changes})


EVENTS = [api_event, token_event, instant_event]


# ------------------------------------------------------- the union, round trip


@pytest.mark.parametrize("make", EVENTS)
def test_round_trip_through_the_json_form(make):
    event = make(metadata={"model": "gpt-4o", "nested": {"n": 1}})
    data = event.to_dict()

    assert json.loads(json.dumps(data)) == data  # plain JSON
    assert type(event).from_dict(data) == event
    again = MeterEvent.from_dict(data)
    assert type(again) is type(event)
    assert again == event
    assert parse_event(json.loads(_json.dumps(event.to_dict()))) == event


def test_the_payment_type_picks_the_class():
    for make, payment_type, event_type in [
        (api_event, PaymentType.API_REQUEST_PAY, EventType.API_CALL),
        (token_event, PaymentType.TOKEN_BASED_PAY, EventType.TOKEN_USAGE),
        (instant_event, PaymentType.INSTANT_PAY, EventType.INSTANT_PAYMENT),
    ]:
        data = make().to_dict()
        assert (data["payment_type"], data["event_type"]) == (
            payment_type.value,
            event_type.value,
        )
        assert MeterEvent.from_dict(data).payment_type is payment_type


@pytest.mark.parametrize("payment_type", ["card_pay", None, 3])
def test_an_unknown_payment_type_is_refused(payment_type):
    data = api_event().to_dict()
    data["payment_type"] = payment_type

    with pytest.raises(AgentMeterValidationError) as raised:
        MeterEvent.from_dict(data)
    assert raised.value.field == "payment_type"
    assert "payment_type" in str(raised.value)


def test_a_missing_payment_type_is_refused():
    data = api_event().to_dict()
    del data["payment_type"]

    with pytest.raises(AgentMeterValidationError) as raised:
        parse_event(data)
    assert raised.value.field == "payment_type"


def test_the_json_form_is_exact():
    event = token_event(timestamp=datetime(2025, 1, 31, 23, 59, 59, tzinfo=timezone.utc))
    data = event.to_dict()

    assert data["input_token_price"] == "0.004"
    assert data["output_token_price"] == "0.0001"
    assert data["total_cost"] == "4.0500"
    assert data["timestamp"] == "2025-01-31T23:59:59Z"
    assert data["tokens_in"] == 1000


def test_money_is_written_as_its_own_decimal_text():
    event = instant_event(amount=Decimal("1E-7"))

    assert event.to_dict()["amount"] == "0.0000001"
    assert '"amount":"0.0000001"' in _json.dumps(event.to_dict())
    assert _json.dumps(Decimal("1E-7")) == '"0.0000001"'
    assert _json.dumps(Decimal("1E+3")) == '"1000"'
    assert instant_event(amount="1E+2").amount == Decimal("100")


def test_metadata_json_form_is_always_json():
    class Thing:
        def __str__(self):
            return "a thing"

    metadata = {
        "price": Decimal("1E-7"),
        "at": datetime(2025, 1, 31, 12, 0),
        "pair": (1, 2),
        "thing": Thing(),
        "ratio": 0.5,
        "nested": {"list": [1, None, "x"]},
    }
    event = instant_event(metadata=metadata)

    assert event.metadata["price"] == Decimal("1E-7")  # the event keeps what it was given
    assert event.to_dict()["metadata"] == {
        "price": "0.0000001",
        "at": "2025-01-31T12:00:00Z",
        "pair": [1, 2],
        "thing": "a thing",
        "ratio": 0.5,
        "nested": {"list": [1, None, "x"]},
    }


def test_metadata_keys_must_be_strings():
    with pytest.raises(AgentMeterValidationError) as raised:
        instant_event(metadata={1: "one"})
    assert raised.value.field.startswith("metadata")


def test_json_numbers_are_read_as_decimals():
    assert _json.loads('{"cost": 0.1}') == {"cost": Decimal("0.1")}
    with pytest.raises(ValueError):
        _json.dumps(float("nan"))


def test_dict_style_access_of_0_2_keeps_working():
    event = api_event()

    assert event["user_id"] == "user_1"
    assert event.get("unit_price") == Decimal("0.01")
    assert event.get("nope", "fallback") == "fallback"
    with pytest.raises(KeyError):
        event["nope"]


# --------------------------------------------------------------- total cost


def test_total_cost_is_computed_from_the_event_own_fields():
    assert api_event().total_cost == Decimal("0.03")
    assert token_event().total_cost == Decimal("4.05")
    assert instant_event().total_cost == Decimal("2.50")


def test_total_cost_given_by_a_caller_is_ignored():
    assert api_event(total_cost="999").total_cost == Decimal("0.03")

    data = api_event().to_dict()
    data["total_cost"] = "999"
    assert MeterEvent.from_dict(data).total_cost == Decimal("0.03")


def test_total_cost_cannot_be_set():
    event = api_event()
    with pytest.raises(pydantic.ValidationError):
        event.total_cost = Decimal("999")
    assert event.total_cost == Decimal("0.03")


@pytest.mark.parametrize("make", EVENTS)
def test_events_are_frozen(make):
    event = make()
    for field in ("id", "user_id", "timestamp"):
        with pytest.raises(pydantic.ValidationError):
            setattr(event, field, getattr(event, field))


def test_a_copy_with_changes_recomputes_nothing_it_should_not():
    event = api_event()
    copy = event.model_copy(update={"user_id": "user_2"})
    assert (copy.id, copy.user_id, copy.total_cost) == (event.id, "user_2", event.total_cost)


def test_token_event_total_tokens():
    assert token_event().total_tokens == 1500


# ---------------------------------------------------------------------- ids


def test_ids_are_uuid7_made_at_birth():
    event = api_event()

    assert UUID7.match(event.id)
    parsed = uuid.UUID(event.id)
    assert (parsed.version, parsed.variant) == (7, uuid.RFC_4122)


def test_the_id_holds_the_birth_time_in_milliseconds():
    before = time.time_ns() // 1_000_000
    event_id = new_event_id()
    after = time.time_ns() // 1_000_000

    assert before <= uuid.UUID(event_id).int >> 80 <= after


def test_ids_are_unique_over_many():
    ids = [new_event_id() for _ in range(20_000)]
    assert len(set(ids)) == len(ids)
    assert all(UUID7.match(event_id) for event_id in ids[:1000])


def test_ids_are_never_remade():
    event = api_event()
    data = event.to_dict()

    assert event.id == event.id  # a field, not a property that mints a new one
    assert MeterEvent.from_dict(data).id == event.id
    assert event.model_copy().id == event.id
    assert api_event().id != event.id


def test_a_given_id_is_kept_and_checked():
    assert api_event(id="run:42_a.b-c").id == "run:42_a.b-c"
    for bad in ("", "has space", "-leading-dash", "x" * 129):
        with pytest.raises(AgentMeterValidationError) as raised:
            api_event(id=bad)
        assert raised.value.field == "id"


def test_derived_ids_are_stable():
    assert derived_event_id("langchain", "run-1") == derived_event_id("langchain", "run-1")
    assert derived_event_id("langchain", "run-1") != derived_event_id("langchain", "run-2")


# -------------------------------------------------------------------- times


def test_the_default_timestamp_is_aware_utc():
    stamp = api_event().timestamp
    assert stamp.tzinfo is not None
    assert stamp.utcoffset() == timedelta(0)


def test_a_naive_time_is_read_as_utc():
    stamp = api_event(timestamp=datetime(2025, 1, 31, 12, 0)).timestamp
    assert stamp == datetime(2025, 1, 31, 12, 0, tzinfo=timezone.utc)
    assert stamp.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    "given",
    [
        datetime(2025, 1, 31, 14, 0, tzinfo=timezone(timedelta(hours=2))),
        "2025-01-31T14:00:00+02:00",
        "2025-01-31T12:00:00Z",
        "2025-01-31T12:00:00",
        "2025-01-31T07:00:00-05:00",
    ],
)
def test_other_offsets_are_converted_to_utc(given):
    stamp = api_event(timestamp=given).timestamp
    assert stamp == datetime(2025, 1, 31, 12, 0, tzinfo=timezone.utc)
    assert stamp.tzinfo == timezone.utc


def test_a_date_is_midnight_utc():
    stamp = api_event(timestamp=date(2025, 1, 31)).timestamp
    assert stamp == datetime(2025, 1, 31, tzinfo=timezone.utc)


@pytest.mark.parametrize("bad", ["yesterday", "31/01/2025", 1738368000, None])
def test_a_bad_time_is_refused_naming_the_field(bad):
    with pytest.raises(AgentMeterValidationError) as raised:
        api_event(timestamp=bad)
    assert raised.value.field == "timestamp"


# --------------------------------------------------------------- user meter


def meter(threshold, usage):
    return UserMeter(project_id="p", user_id="u", threshold_amount=threshold, current_usage=usage)


def test_user_meter_under_its_threshold():
    m = meter("10", "2.5")
    assert (m.remaining_budget, m.usage_percentage, m.is_over_limit) == (
        Decimal("7.5"),
        Decimal("25.00"),
        False,
    )


def test_user_meter_at_and_over_its_threshold():
    at, over = meter("10", "10"), meter("10", "12.5")

    assert (at.remaining_budget, at.usage_percentage, at.is_over_limit) == (0, 100, False)
    assert (over.remaining_budget, over.usage_percentage, over.is_over_limit) == (
        0,
        Decimal("125.00"),
        True,
    )


def test_user_meter_without_a_threshold():
    m = UserMeter(project_id="p", user_id="u", current_usage="5")

    assert m.threshold_amount is None
    assert m.remaining_budget is None
    assert m.usage_percentage == 0
    assert m.is_over_limit is False


def test_user_meter_with_a_zero_threshold():
    m = meter("0", "0.01")
    assert (m.remaining_budget, m.usage_percentage, m.is_over_limit) == (0, 0, True)


def test_user_meter_percentage_is_rounded_half_even_to_two_places():
    assert meter("3", "1").usage_percentage == Decimal("33.33")
    assert meter("8", "0.01").usage_percentage == Decimal("0.12")  # 0.125: a tie, to even
    assert meter("8", "0.03").usage_percentage == Decimal("0.38")  # 0.375: a tie, to even
    assert meter("16", "0.0005").usage_percentage == Decimal("0.00")  # 0.003125


def test_user_meter_arithmetic_is_exact_at_the_extremes():
    tiny = Decimal("0.000000000000000001")
    big = Decimal("100000000000000")

    # 32 digits: the default 28-digit context would round this to 100000000000000.
    assert str(meter(big, tiny).remaining_budget) == "99999999999999.999999999999999999"
    assert meter(tiny, big).usage_percentage == Decimal("1E+34")
    assert meter(tiny, big).is_over_limit


# -------------------------------------------------------------- other models


def test_meter_stats():
    stats = MeterStats(
        total_api_calls=3, total_tokens_in=1000, total_tokens_out=24, total_cost="0.09"
    )

    assert stats.total_tokens == 1024
    assert stats.average_cost_per_call == Decimal("0.03")
    assert MeterStats().average_cost_per_call == 0
    assert MeterStats().timeframe == "30 days"


def test_meter_event_response_defaults():
    answer = MeterEventResponse(event_id="e1")
    assert (answer.success, answer.cost, answer.duplicate) == (True, 0, False)
    assert answer.timestamp.tzinfo is not None


def test_batch_result_ok():
    assert BatchResult(accepted=3).ok
    rejected = RejectedEvent(index=0, error={"code": "bad", "message": "no"})
    assert not BatchResult(rejected=[rejected]).ok


def test_project_api_key_is_secret():
    project = Project(id="p", name="n", api_key="am_proj_secret")

    assert project.api_key.get_secret_value() == "am_proj_secret"
    assert "am_proj_secret" not in repr(project)
    assert "am_proj_secret" not in json.dumps(project.to_dict())


def test_billing_record():
    record = BillingRecord(
        id="b",
        project_id="p",
        period_start="2025-01-01",
        period_end="2025-02-01T00:00:00+01:00",
        amount=12.3,
    )

    assert record.amount == Decimal("12.3")
    assert record.status is BillingStatus.PENDING
    assert record.period_end == datetime(2025, 1, 31, 23, tzinfo=timezone.utc)
    assert record.to_dict()["amount"] == "12.3"


def test_answers_ignore_fields_they_do_not_know():
    assert MeterStats(total_cost="1", future_field=True).total_cost == 1


@pytest.mark.parametrize(
    ("text", "hours"),
    [("1 hour", 1), ("24 hours", 24), ("7 days", 168), ("30 days", 720), ("12h", 12)],
)
def test_timeframes(text, hours):
    assert parse_timeframe(text) == timedelta(hours=hours)


def test_timeframe_all_and_bad():
    assert parse_timeframe("all") is None
    with pytest.raises(AgentMeterValidationError) as raised:
        parse_timeframe("a while")
    assert raised.value.field == "timeframe"
