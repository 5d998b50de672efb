"""Token charges priced by their model (issue 13), on every backend (HTTP on
SQLite, embedded, HTTP on PostgreSQL): the model's list price, explicit prices
first, an unknown model never priced silently."""

from __future__ import annotations

from decimal import Decimal

import pytest

from agentmeter import AgentMeterTracker
from agentmeter.errors import AgentMeterValidationError

MILLION = 1_000_000


def test_the_first_report_gpt_4_bills_its_list_price_not_the_defaults(client):
    """Regression: 1M + 1M tokens with metadata model gpt-4 billed 5.00 (the generic
    defaults); gpt-4 lists at $30 in / $60 out per 1M tokens: 90."""
    answer = client.record_token_based_pay(
        tokens_in=MILLION, tokens_out=MILLION, metadata={"model": "gpt-4"}
    )
    assert answer.cost == Decimal("90")
    [event] = client.get_events()
    assert (event.input_token_price, event.output_token_price) == (
        Decimal("0.00003"),
        Decimal("0.00006"),
    )


def test_model_equals_prices_the_charge_and_is_stored_as_its_model(client):
    answer = client.record_token_based_pay(tokens_in=1000, tokens_out=100, model="claude-3-opus")
    assert answer.cost == Decimal("0.0225")  # 1000 x 15/1M + 100 x 75/1M
    [event] = client.get_events()
    assert event.metadata["model"] == "claude-3-opus"


def test_explicit_prices_win_over_the_model(client):
    answer = client.record_token_based_pay(
        tokens_in=10,
        tokens_out=10,
        input_token_price="0.1",
        output_token_price="0.2",
        model="gpt-4",
    )
    assert answer.cost == Decimal("3")


def test_no_model_keeps_the_default_prices(client):
    """0.2 behaviour: a charge that names no model uses the configured defaults."""
    answer = client.record_token_based_pay(tokens_in=1000, tokens_out=1000)
    assert answer.cost == Decimal("0.005")


def test_an_unknown_model_on_a_direct_call_raises_and_records_nothing(client):
    with pytest.raises(AgentMeterValidationError, match="'house-model-7'"):
        client.record_token_based_pay(tokens_in=10, tokens_out=10, model="house-model-7")
    with pytest.raises(AgentMeterValidationError, match="model"):
        client.record_token_based_pay(tokens_in=10, tokens_out=10, metadata={"model": "gpt-4x"})
    assert client.get_events() == []


def test_an_unknown_model_with_configured_defaults_uses_them(backend, project):
    with backend.connect(project, input_token_price="0.5", output_token_price="1") as client:
        answer = client.record_token_based_pay(tokens_in=2, tokens_out=1, model="house-model-7")
    assert answer.cost == Decimal("2")


def test_the_tracker_prices_by_model_and_raises_for_an_unknown_one(client):
    tracker = AgentMeterTracker(client, outbox=None)
    tracker.track_token_based_pay(1000, 100, user_id="u", model="gpt-4o-2024-08-06")
    with pytest.raises(AgentMeterValidationError, match="mystery"):
        tracker.track_token_based_pay(1, 1, user_id="u", model="mystery")
    unpriced = tracker.track_token_based_pay(
        7, 3, user_id="u", model="mystery", on_unknown_model="record"
    )
    assert tracker.flush(timeout=30)
    tracker.close()
    events = {event.id: event for event in client.get_events()}
    assert events[unpriced].total_cost == 0
    assert events[unpriced].metadata["unpriced"] is True
    assert events[unpriced].tokens_in == 7
    [priced] = [event for event in events.values() if event.id != unpriced]
    assert priced.total_cost == Decimal("0.0035")  # 1000 x 2.5/1M + 100 x 10/1M
