"""A project's own prices and markup are what its token charges are billed at
(issue 13), on every backend: HTTP on SQLite, embedded, HTTP on PostgreSQL.

Direct calls read the project's table (cached for ``price_cache_ttl``); the
tracker prices from the cached table and settles an event priced before
the table was read when it is finalized, so the stored cost is right either way.
"""

from __future__ import annotations

import logging
from decimal import Decimal

import pytest

from agentmeter import meter_token_based_pay
from agentmeter.core.catalog import model_prices
from agentmeter.errors import AgentMeterValidationError

MILLION = 1_000_000


def stored_costs(client, count: int) -> list[Decimal]:
    events = client.get_events(limit=count)
    return sorted(event.total_cost for event in events)


def test_a_project_row_overrides_the_catalog_on_a_direct_call(client):
    assert client.record_token_based_pay(MILLION, MILLION, model="gpt-4").cost == 90
    client.set_price("gpt-4", input="10", output="20")
    assert client.record_token_based_pay(MILLION, MILLION, model="gpt-4").cost == 30


def test_a_row_prices_the_snapshots_of_its_model_too(client):
    client.set_price("gpt-4o", input="1", output="2")
    answer = client.record_token_based_pay(MILLION, MILLION, model="gpt-4o-2024-08-06")
    assert answer.cost == 3


def test_the_markup_applies_to_catalog_prices_and_never_to_rows(client):
    client.set_markup("20")
    client.set_price("gpt-4", input="10", output="20")
    listed = model_prices("claude-3-opus")
    assert listed is not None
    expected = (listed.input + listed.output) * MILLION * Decimal("1.2")
    assert client.record_token_based_pay(MILLION, MILLION, model="claude-3-opus").cost == expected
    assert expected == 108  # (15 + 75) x 1.2
    assert client.record_token_based_pay(MILLION, MILLION, model="gpt-4").cost == 30
    events = client.get_events(limit=2)
    marked = next(event for event in events if event.metadata["model"] == "claude-3-opus")
    assert marked.input_token_price == Decimal("0.000018")  # the price used is stored with it


def test_a_model_only_the_project_prices_is_billed_and_others_still_raise(client):
    with pytest.raises(AgentMeterValidationError, match="acme-llm"):
        client.record_token_based_pay(10, 10, model="acme-llm")
    client.set_price("acme-llm", input="4", output="8", cached_input="1")
    answer = client.record_token_based_pay(
        MILLION, MILLION, model="acme-llm", cached_tokens_in=MILLION // 2
    )
    assert answer.cost == Decimal("0.5") * 4 + Decimal("0.5") * 1 + 8


def test_the_tracker_settles_prices_read_after_its_first_events(client):
    client.set_markup("50")
    tracker = client.tracker
    for _ in range(3):  # the first is priced before the table was ever read
        tracker.track_token_based_pay(MILLION, MILLION, user_id="u1", model="gpt-4")
    assert tracker.flush(timeout=10)
    assert stored_costs(client, 3) == [135, 135, 135]  # 90 x 1.5


def test_a_price_change_reaches_a_client_after_its_ttl(backend, project):
    with (
        backend.connect(project) as billing,
        backend.connect(project, price_cache_ttl=0) as fresh,
    ):
        assert billing.record_token_based_pay(MILLION, MILLION, model="gpt-4").cost == 90
        fresh.set_price("gpt-4", input="1", output="1")
        # The other client keeps its table for price_cache_ttl (60 s by default).
        assert billing.record_token_based_pay(MILLION, MILLION, model="gpt-4").cost == 90
        assert fresh.record_token_based_pay(MILLION, MILLION, model="gpt-4").cost == 2
        billing.price_book.forget(project.id)
        assert billing.record_token_based_pay(MILLION, MILLION, model="gpt-4").cost == 2


def test_background_capture_bills_a_model_only_the_project_prices(client, caplog):
    client.set_price("house-model", input="2", output="6")

    @meter_token_based_pay(client, model="house-model")
    def answer(user_id: str) -> dict:
        return {"usage": {"prompt_tokens": MILLION, "completion_tokens": MILLION}}

    with caplog.at_level(logging.WARNING, logger="agentmeter"):
        answer(user_id="u1")
        assert client.flush(timeout=10)
    [event] = client.get_events(limit=1)
    assert event.total_cost == 8
    assert "unpriced" not in event.metadata
    assert "no price is known" not in caplog.text
