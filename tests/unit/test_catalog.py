"""The price catalog (agentmeter.core.catalog): list prices to the cent, the names
users send, and no longer name ever taking a shorter model's price."""

from __future__ import annotations

import socket
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agentmeter.core import catalog
from agentmeter.core.catalog import model_prices
from agentmeter.pricing import token_cost

MILLION = 1_000_000


def cost(model: str, tokens_in: int, tokens_out: int) -> Decimal:
    prices = model_prices(model, prompt_tokens=tokens_in)
    assert prices is not None, model
    return token_cost(tokens_in, tokens_out, prices.input, prices.output)


# Magic Box's flat table, per 1M tokens in / out (Gemini below its 128k tier).
LIST_PRICES = [
    ("claude-3-5-sonnet", "3", "15"),
    ("claude-3-opus", "15", "75"),
    ("gpt-4", "30", "60"),
    ("gpt-4-turbo", "10", "30"),
    ("gemini-1.5-pro", "1.25", "5"),
    ("gemini-1.5-flash", "0.075", "0.30"),
]


@pytest.mark.parametrize(("model", "per_million_in", "per_million_out"), LIST_PRICES)
def test_the_six_list_prices_to_the_cent(model, per_million_in, per_million_out):
    tokens_in, tokens_out = 100_000, 50_000  # under Gemini's 128k-token tier
    expected = (
        Decimal(per_million_in) * tokens_in + Decimal(per_million_out) * tokens_out
    ) / MILLION
    assert cost(model, tokens_in, tokens_out) == expected


def test_the_first_report_gpt_4_at_its_list_price_not_the_defaults():
    """1M + 1M tokens of gpt-4 cost 90, not the 5.00 the generic defaults gave."""
    assert cost("gpt-4", MILLION, MILLION) == Decimal("90")


@pytest.mark.parametrize(
    ("model", "below", "above"),
    [
        ("gemini-1.5-pro", ("1.25", "5"), ("2.5", "10")),
        ("gemini-1.5-flash", ("0.075", "0.3"), ("0.15", "0.6")),
    ],
)
def test_a_prompt_past_128k_tokens_prices_the_whole_call_at_the_higher_tier(model, below, above):
    at_limit = model_prices(model, prompt_tokens=128_000)
    past_it = model_prices(model, prompt_tokens=128_001)
    assert at_limit is not None
    assert past_it is not None
    assert (at_limit.input * MILLION, at_limit.output * MILLION) == tuple(map(Decimal, below))
    assert (past_it.input * MILLION, past_it.output * MILLION) == tuple(map(Decimal, above))
    assert (
        cost(model, 200_000, 10_000)
        == (Decimal(above[0]) * 200_000 + Decimal(above[1]) * 10_000) / MILLION
    )


@pytest.mark.parametrize(
    ("name", "same_as"),
    [
        ("gpt-4o-2024-08-06", "gpt-4o"),
        ("GPT-4o", "gpt-4o"),
        ("gpt-4-0613", "gpt-4"),
        ("gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
        ("claude-3-5-sonnet-20241022", "claude-3-5-sonnet"),
        ("claude-3-5-sonnet-latest", "claude-3-5-sonnet"),
        ("openai/gpt-4o", "gpt-4o"),
        ("anthropic/claude-3-opus", "claude-3-opus"),
        ("anthropic.claude-3-5-sonnet-20240620-v1:0", "claude-3-5-sonnet"),
        ("us.anthropic.claude-3-5-sonnet-20240620-v1:0", "claude-3-5-sonnet"),
        ("bedrock/anthropic.claude-3-haiku-20240307-v1:0", "claude-3-haiku"),
        ("claude-3-5-sonnet@20240620", "claude-3-5-sonnet"),
        ("models/gemini-1.5-pro-002", "gemini-1.5-pro"),
        ("vertex_ai/gemini-1.5-pro", "gemini-1.5-pro"),
        ("  gpt-4  ", "gpt-4"),
    ],
)
def test_snapshot_and_provider_prefixed_names_take_their_model_price(name, same_as):
    found, expected = model_prices(name), model_prices(same_as)
    assert found is not None, name
    assert found == expected


@pytest.mark.parametrize(
    ("name", "not_as"),
    [
        ("gpt-4o-mini", "gpt-4o"),
        ("gpt-4", "gpt-4o"),
        ("gpt-4o", "gpt-4"),
        ("gpt-4-turbo", "gpt-4"),
        ("claude-3-5-haiku", "claude-3-5-sonnet"),
    ],
)
def test_a_near_miss_never_takes_the_other_models_price(name, not_as):
    found, other = model_prices(name), model_prices(not_as)
    assert found is not None
    assert other is not None
    assert found.model != other.model
    assert (found.input, found.output) != (other.input, other.output)


@pytest.mark.parametrize(
    "name",
    [
        "gemini-1.5-flash-8b",  # the library maps it to gemini-1.5-flash, at twice its price
        "gpt-4o-custom",
        "gpt-4x",
        "my-model",
        "openai/not-a-model",
        "",
        "   ",
    ],
)
def test_a_longer_or_unknown_name_is_unpriced_not_priced_as_another(name):
    assert model_prices(name) is None


def test_cached_and_cache_write_rates_are_their_own():
    openai = model_prices("gpt-4o")
    anthropic = model_prices("claude-3-5-sonnet")
    assert openai is not None
    assert anthropic is not None
    assert openai.cached_input * MILLION == Decimal("1.25")
    assert openai.cache_write is None  # OpenAI charges no cache writes
    assert anthropic.cached_input * MILLION == Decimal("0.3")
    assert anthropic.cache_write * MILLION == Decimal("3.75")


def test_lookups_never_touch_the_network(monkeypatch):
    catalog.catalog_entry.cache_clear()

    def refuse(*args, **kwargs):
        raise AssertionError("the catalog tried to connect")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    assert model_prices("claude-3-opus") is not None
    assert model_prices("no-such-model") is None


@given(st.text(max_size=80))
def test_any_name_gives_prices_or_none(name):
    found = model_prices(name)
    assert found is None or (found.input >= 0 and found.output >= 0)


def test_an_embedding_model_is_priced_by_its_input_alone():
    """Regression: a model with an input price and no output price (embeddings)
    was unknown, so every embeddings call was recorded unpriced."""
    prices = model_prices("gemini-embedding-001")
    assert prices is not None
    assert prices.input == Decimal("0.15") / 1_000_000
    assert prices.output == 0
    assert model_prices("dall-e-3") is None  # priced per image: still not a token model
