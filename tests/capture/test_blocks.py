"""``with`` / ``async with`` blocks: track_api_request_pay, track_token_based_pay,
track_instant_pay and track_usage, in the 0.2 positional form
``(client, project_id, agent_id, ...)``, billed once when the block ends."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from agentmeter import (
    PaymentType,
    UsageContext,
    track_api_request_pay,
    track_instant_pay,
    track_token_based_pay,
    track_usage,
)
from agentmeter.errors import AgentMeterValidationError


class Boom(Exception):
    pass


def run_block(block: UsageContext, mode: str, body) -> UsageContext:
    """Enter ``block`` with ``with`` or ``async with`` and run ``body(usage)`` inside."""
    if mode == "sync":
        with block as usage:
            body(usage)
        return usage

    async def main():
        async with block as usage:
            await asyncio.sleep(0)
            body(usage)
        return usage

    return asyncio.run(main())


MODES = ["sync", "async"]


@pytest.mark.parametrize("mode", MODES)
def test_api_request_block(mode, client, ledger, project):
    def body(usage):
        usage["api_calls"] = 3
        usage["metadata"]["operation"] = "search"

    block = track_api_request_pay(
        client, project.id, "search-agent", user_id="u1", unit_price="0.3"
    )
    usage = run_block(block, mode, body)

    ledger.settle()
    (event,) = ledger.events("u1")
    assert usage.event_id == event.id
    assert event.api_calls == 3
    assert event.unit_price == Decimal("0.3")
    assert event.agent_id == "search-agent"
    assert event.metadata["operation"] == "search"
    assert ledger.usage("u1") == Decimal("0.9")


@pytest.mark.parametrize("mode", MODES)
def test_api_request_block_defaults_to_one_call(mode, client, ledger, project):
    run_block(track_api_request_pay(client, project.id, "a", "u1", "0.07"), mode, lambda u: None)
    ledger.settle()
    assert ledger.usage("u1") == Decimal("0.07")


@pytest.mark.parametrize("mode", MODES)
def test_token_block(mode, client, ledger, project):
    def body(usage):
        assert usage["tokens_in"] == 0
        usage["tokens_in"] = 1000
        usage["tokens_out"] = 500
        usage["metadata"]["model"] = "gpt-4o"

    block = track_token_based_pay(
        client,
        project.id,
        "llm-agent",
        "u1",
        input_token_price="0.004",
        output_token_price="0.0001",
    )
    run_block(block, mode, body)

    ledger.settle()
    (event,) = ledger.events("u1")
    assert (event.tokens_in, event.tokens_out) == (1000, 500)
    assert event.metadata["model"] == "gpt-4o"
    assert ledger.usage("u1") == Decimal("4.05")


@pytest.mark.parametrize("mode", MODES)
def test_instant_block(mode, client, ledger, project):
    def body(usage):
        usage["amount"] = 9.99  # a float: billed as its shortest text, 9.99 exactly
        usage["description"] = "AI analysis"
        usage["metadata"]["feature"] = "ai_analysis"

    run_block(track_instant_pay(client, project.id, "a", user_id="u1"), mode, body)

    ledger.settle()
    (event,) = ledger.events("u1")
    assert event.amount == Decimal("9.99")
    assert event.description == "AI analysis"
    assert ledger.usage("u1") == Decimal("9.99")


@pytest.mark.parametrize("mode", MODES)
def test_instant_block_of_zero_records_nothing(mode, client, ledger, project):
    usage = run_block(track_instant_pay(client, project.id, "a", "u1"), mode, lambda u: None)
    set_to_zero = run_block(
        track_instant_pay(client, project.id, "a", "u1", amount="5"),
        mode,
        lambda u: u.__setitem__("amount", 0),
    )
    ledger.settle()
    assert usage.event_id is None
    assert set_to_zero.event_id is None
    assert ledger.events() == []


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("payment_type", "settings", "body", "expected"),
    [
        (
            PaymentType.API_REQUEST_PAY,
            {"unit_price": "0.25"},
            lambda u: u.__setitem__("api_calls", 2),
            Decimal("0.50"),
        ),
        (
            "token_based_pay",
            {"input_token_price": "0.5", "output_token_price": "1"},
            lambda u: (u.__setitem__("tokens_in", 2), u.__setitem__("tokens_out", 3)),
            Decimal("4.0"),
        ),
        (
            PaymentType.INSTANT_PAY,
            {"amount": "1.5", "description": "fee"},
            lambda u: None,
            Decimal("1.5"),
        ),
    ],
    ids=["api", "token", "instant"],
)
def test_track_usage_positional_form(
    mode, payment_type, settings, body, expected, client, ledger, project
):
    block = track_usage(client, project.id, "generic-agent", "u1", payment_type, **settings)
    run_block(block, mode, body)
    ledger.settle()
    (event,) = ledger.events("u1")
    assert event.payment_type is PaymentType(payment_type)
    assert event.agent_id == "generic-agent"
    assert ledger.usage("u1") == expected


def test_the_usage_object_is_dict_like(client, project):
    with track_api_request_pay(client, project.id, "a", "u1", unit_price="1") as usage:
        assert usage["api_calls"] == 1
        assert usage.get("missing", "default") == "default"
        assert set(usage) >= {"api_calls", "tokens_in", "tokens_out", "amount", "metadata"}
        usage["metadata"]["k"] = "v"
        assert usage["metadata"] == {"k": "v"}
        usage["api_calls"] = 0  # nothing used after all: a free event
    assert client.flush(timeout=10)


def test_the_user_can_be_chosen_inside_the_block(client, ledger, project):
    with track_instant_pay(client, project.id, "a", amount="2") as usage:
        usage["user_id"] = "decided-late"
    ledger.settle()
    assert ledger.usage("decided-late") == Decimal(2)


@pytest.mark.parametrize("mode", MODES)
def test_a_failing_block_reraises_and_bills_nothing(mode, client, ledger, project):
    raised = Boom("inside the block")

    def body(usage):
        usage["api_calls"] = 5
        raise raised

    with pytest.raises(Boom) as caught:
        run_block(track_api_request_pay(client, project.id, "a", "u1", "1"), mode, body)
    assert caught.value is raised
    assert caught.value.__context__ is None
    ledger.settle()
    assert ledger.events() == []


@pytest.mark.parametrize("mode", MODES)
def test_a_failing_block_with_bill_on_error(mode, client, ledger, project):
    def body(usage):
        usage["tokens_in"] = 10
        raise Boom("after the model answered")

    block = track_token_based_pay(
        client,
        project.id,
        "a",
        "u1",
        input_token_price="0.1",
        output_token_price="0.1",
        bill_on_error=True,
    )
    with pytest.raises(Boom):
        run_block(block, mode, body)
    ledger.settle()
    (event,) = ledger.events("u1")
    assert event.metadata["status"] == "error"
    assert event.metadata["error"] == "Boom"
    assert ledger.usage("u1") == Decimal("1.0")


def test_an_invalid_value_set_in_the_block_is_a_fault(client, ledger, project):
    with track_api_request_pay(client, project.id, "a", "u1", unit_price="1") as usage:
        usage["api_calls"] = -1
    ledger.settle()
    assert ledger.events() == []


def test_an_invalid_value_set_in_the_block_raises_with_strict(client, project):
    block = track_api_request_pay(client, project.id, "a", "u1", unit_price="1", strict=True)
    with pytest.raises(AgentMeterValidationError) as caught, block as usage:
        usage["api_calls"] = -1
    assert caught.value.field == "api_calls"


def test_blocks_accept_a_tracker(client, ledger, project, tmp_path):
    from agentmeter import AgentMeterTracker

    tracker = AgentMeterTracker(client, agent_id="t", outbox=tmp_path / "o.db")
    try:
        with track_instant_pay(tracker, project.id, None, "u1", amount="0.5"):
            pass
        ledger.settle(tracker)
        (event,) = ledger.events("u1")
        assert event.agent_id == "t"
    finally:
        tracker.close(timeout=5)


def test_invalid_prices_are_rejected_when_the_block_is_made(client, project):
    with pytest.raises(AgentMeterValidationError) as caught:
        track_token_based_pay(client, project.id, "a", "u1", input_token_price="-0.1")
    assert caught.value.field == "input_token_price"
    with pytest.raises(AgentMeterValidationError):
        track_usage(client, project.id, "a", "u1", "by_the_minute")
