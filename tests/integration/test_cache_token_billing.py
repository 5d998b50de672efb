"""Cache tokens billed at their own catalog prices, end to end (issue 13): a
decorated call returns a provider's response with cache reads and writes,
and the stored event holds each class and the exact cost, on every backend."""

from __future__ import annotations

from decimal import Decimal

import pytest

from agentmeter import meter_token_based_pay
from agentmeter.core.catalog import model_prices

ANTHROPIC = {
    "usage": {
        "input_tokens": 200,
        "output_tokens": 1000,
        "cache_read_input_tokens": 50_000,
        "cache_creation_input_tokens": 8_000,
    }
}
OPENAI = {
    "usage": {
        "prompt_tokens": 30_000,
        "completion_tokens": 500,
        "prompt_tokens_details": {"cached_tokens": 20_000},
    }
}
GEMINI = {
    "usageMetadata": {
        "promptTokenCount": 60_000,
        "candidatesTokenCount": 400,
        "thoughtsTokenCount": 100,
        "cachedContentTokenCount": 40_000,
    }
}


@pytest.mark.parametrize(
    ("model", "response", "classes"),
    [
        # tokens_in, tokens_out, cached (inside tokens_in), cache writes (on top)
        ("claude-3-5-sonnet-20241022", ANTHROPIC, (50_200, 1000, 50_000, 8_000)),
        ("gpt-4o", OPENAI, (30_000, 500, 20_000, 0)),
        ("gemini-1.5-flash", GEMINI, (60_000, 500, 40_000, 0)),
    ],
)
def test_a_decorated_call_bills_each_token_class_at_its_price(client, model, response, classes):
    @meter_token_based_pay(client, model=model)
    def ask(user_id: str) -> dict:
        return response

    ask(user_id="u1")
    assert client.flush(timeout=10)
    [event] = client.get_events(limit=1)
    tokens_in, tokens_out, cached, written = classes
    assert (event.tokens_in, event.tokens_out) == (tokens_in, tokens_out)
    assert (event.cached_tokens_in, event.cache_write_tokens) == (cached, written)
    listed = model_prices(model, prompt_tokens=tokens_in)
    assert listed is not None
    assert listed.cached_input is not None
    assert listed.cached_input < listed.input  # a cache read is cheaper: it must show
    write_price = listed.input if listed.cache_write is None else listed.cache_write
    expected = (
        (tokens_in - cached) * listed.input
        + cached * listed.cached_input
        + written * write_price
        + tokens_out * listed.output
    )
    assert event.total_cost == expected
    assert (
        event.total_cost
        < tokens_in * listed.input + written * write_price + tokens_out * listed.output
    )


def test_anthropic_cache_prices_to_the_cent(client):
    """claude-3-5-sonnet: $3 in, $15 out, $0.30 cache read, $3.75 cache write per 1M."""
    answer = client.record_token_based_pay(
        1_100_000,
        1_000_000,
        model="claude-3-5-sonnet-20241022",
        cached_tokens_in=1_000_000,
        cache_write_tokens=1_000_000,
    )
    assert answer.cost == Decimal("0.3") + Decimal("0.30") + Decimal("3.75") + 15
