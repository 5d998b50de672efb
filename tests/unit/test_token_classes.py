"""Token classes on token events: cached input (a part of tokens_in) and cache
writes (on top of it), each at its own price, else at the input price.

The cost must equal the straightforward Decimal formula exactly; an event
without classes must read on the wire exactly as before (0.2 servers see
nothing new); the hot-path builder and the model agree on what is valid.
"""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Context, Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentmeter import AgentMeterValidationError, TokenBasedPayEvent
from agentmeter.core.build import event_cost, finalize, token_event
from agentmeter.models import parse_event
from agentmeter.pricing import MAX_COUNT, token_cost

EXACT = Context(prec=200)  # far wider than any product of two money values
COMMON = {"project_id": "p", "agent_id": "a", "user_id": "u"}
MOMENT = datetime(2025, 3, 10, 12, 0, tzinfo=timezone.utc)
EXAMPLES = settings(max_examples=300, deadline=None)
CLASS_KEYS = {
    "model",
    "cached_tokens_in",
    "cache_write_tokens",
    "cached_input_token_price",
    "cache_write_token_price",
}


@st.composite
def money(draw):
    """A valid price: below 10**15, at most 18 decimal places."""
    places = draw(st.integers(0, 18))
    unscaled = draw(st.integers(0, 10 ** (15 + places) - 1))
    return Decimal(f"{unscaled}E-{places}")


@st.composite
def charges(draw):
    """(tokens_in, tokens_out, cached, written, in, out, cached price|None, write price|None)."""
    tokens_in = draw(st.integers(0, MAX_COUNT))
    cached = draw(st.integers(0, tokens_in))
    return (
        tokens_in,
        draw(st.integers(0, MAX_COUNT)),
        cached,
        draw(st.integers(0, MAX_COUNT)),
        draw(money()),
        draw(money()),
        draw(st.none() | money()),
        draw(st.none() | money()),
    )


def straightforward(tokens_in, tokens_out, cached, written, p_in, p_out, p_cached, p_write):
    """WIRE.md's formula, term by term, in a context that cannot round."""
    p_cached = p_in if p_cached is None else p_cached
    p_write = p_in if p_write is None else p_write
    terms = [
        EXACT.multiply(Decimal(tokens_in - cached), p_in),
        EXACT.multiply(Decimal(cached), p_cached),
        EXACT.multiply(Decimal(written), p_write),
        EXACT.multiply(Decimal(tokens_out), p_out),
    ]
    total = Decimal(0)
    for term in terms:
        total = EXACT.add(total, term)
    return total


# ------------------------------------------------------------ token_cost


@EXAMPLES
@given(charges())
def test_token_cost_with_classes_is_the_exact_formula(charge):
    tokens_in, tokens_out, cached, written, p_in, p_out, p_cached, p_write = charge
    cost = token_cost(tokens_in, tokens_out, p_in, p_out, cached, written, p_cached, p_write)
    assert cost == straightforward(*charge)
    named = token_cost(
        tokens_in, tokens_out, p_in, p_out,
        cached_tokens_in=cached, cache_write_tokens=written,
        cached_input_price=p_cached, cache_write_price=p_write,
    )  # fmt: skip
    assert named == cost


@EXAMPLES
@given(charges())
def test_the_model_and_the_hot_path_cost_a_charge_alike(charge):
    tokens_in, tokens_out, cached, written, p_in, p_out, p_cached, p_write = charge
    expected = straightforward(*charge)
    model = TokenBasedPayEvent(
        **COMMON,
        tokens_in=tokens_in,
        tokens_out=tokens_out,
        input_token_price=p_in,
        output_token_price=p_out,
        cached_tokens_in=cached,
        cache_write_tokens=written,
        cached_input_token_price=p_cached,
        cache_write_token_price=p_write,
    )
    built = token_event(
        "p", "a", "u", tokens_in, tokens_out, p_in, p_out,
        cached_tokens_in=cached, cache_write_tokens=written,
        cached_input_token_price=p_cached, cache_write_token_price=p_write,
    )  # fmt: skip
    assert model.total_cost == expected
    assert event_cost(built) == expected


def test_a_worked_example():
    # 600 uncached x 0.003 + 400 cached x 0.0003 + 5 written x 0.00375 + 10 out x 0.01
    cost = token_cost(
        1000, 10, Decimal("0.003"), Decimal("0.01"), 400, 5, Decimal("0.0003"), Decimal("0.00375")
    )
    assert cost == Decimal("2.03875")


def test_a_class_without_its_own_price_is_billed_at_the_input_price():
    plain = token_cost(1000, 10, Decimal("0.003"), Decimal("0.01"))
    assert token_cost(1000, 10, Decimal("0.003"), Decimal("0.01"), cached_tokens_in=400) == plain
    with_writes = token_cost(1000, 10, Decimal("0.003"), Decimal("0.01"), cache_write_tokens=100)
    assert with_writes == plain + Decimal("0.3")


def test_a_zero_class_price_is_a_price_not_a_missing_one():
    free_reads = token_cost(
        1000, 0, Decimal("0.003"), Decimal(0), cached_tokens_in=1000, cached_input_price=Decimal(0)
    )
    assert free_reads == 0


def test_the_four_argument_call_is_the_0_2_formula_to_the_digit():
    cost = token_cost(1000, 500, Decimal("0.004"), Decimal("0.0001"))
    assert (cost, str(cost)) == (Decimal("4.05"), "4.0500")


def test_token_cost_refuses_more_cached_than_input_tokens():
    with pytest.raises(AgentMeterValidationError) as caught:
        token_cost(10, 0, Decimal(1), Decimal(1), cached_tokens_in=11)
    assert caught.value.field == "cached_tokens_in"


# ----------------------------------------------------------------- model


def event(**fields):
    values = {
        **COMMON,
        "tokens_in": 1000,
        "tokens_out": 10,
        "input_token_price": "0.003",
        "output_token_price": "0.01",
        **fields,
    }
    return TokenBasedPayEvent(**values)


def test_more_cached_than_input_tokens_is_refused_naming_the_field():
    with pytest.raises(AgentMeterValidationError) as caught:
        event(tokens_in=10, cached_tokens_in=11)
    assert caught.value.field == "cached_tokens_in"
    assert "tokens_in" in str(caught.value)
    wire = {**event().to_dict(), "tokens_in": 10, "cached_tokens_in": 11}
    with pytest.raises(AgentMeterValidationError) as parsed:
        parse_event(wire)
    assert parsed.value.field == "cached_tokens_in"


def test_every_cached_input_token_is_allowed():
    assert event(tokens_in=10, cached_tokens_in=10).cached_tokens_in == 10


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"model": "x" * 201}, "model"),
        ({"model": ""}, "model"),
        ({"model": 7}, "model"),
        ({"model": "bad \ud800"}, "model"),
        ({"cached_tokens_in": -1}, "cached_tokens_in"),
        ({"cache_write_tokens": 1.5}, "cache_write_tokens"),
        ({"cache_write_tokens": True}, "cache_write_tokens"),
        ({"cached_input_token_price": "-0.1"}, "cached_input_token_price"),
        ({"cache_write_token_price": "NaN"}, "cache_write_token_price"),
    ],
)
def test_bad_class_fields_are_refused_naming_the_field(fields, field):
    with pytest.raises(AgentMeterValidationError) as caught:
        event(**fields)
    assert caught.value.field == field
    with pytest.raises(AgentMeterValidationError) as built:
        token_event("p", "a", "u", 1000, 10, "0.003", "0.01", **fields)
    assert built.value.field == field


def test_to_dict_leaves_out_absent_classes_so_the_wire_form_is_the_0_2_one():
    plain = event(id="e-1", timestamp=MOMENT)
    assert CLASS_KEYS.isdisjoint(plain.to_dict())
    zeros = event(id="e-1", timestamp=MOMENT, cached_tokens_in=0, cache_write_tokens=0)
    assert zeros.to_dict() == plain.to_dict()
    assert list(plain.to_dict()) == [
        "id", "project_id", "agent_id", "user_id", "timestamp", "metadata",
        "payment_type", "event_type", "tokens_in", "tokens_out",
        "input_token_price", "output_token_price", "total_cost",
    ]  # fmt: skip


def test_to_dict_carries_the_classes_that_are_given():
    given = event(
        model="claude-3-5-sonnet",
        cached_tokens_in=400,
        cache_write_tokens=5,
        cached_input_token_price="0.0003",
        cache_write_token_price=0,  # free, not "at the input price": it stays
    )
    wire = given.to_dict()
    assert {key: wire[key] for key in CLASS_KEYS} == {
        "model": "claude-3-5-sonnet",
        "cached_tokens_in": 400,
        "cache_write_tokens": 5,
        "cached_input_token_price": "0.0003",
        "cache_write_token_price": "0",
    }
    assert wire["total_cost"] == "2.0200"  # 600 x 0.003 + 400 x 0.0003 + 0 + 10 x 0.01
    assert parse_event(wire) == given


# ------------------------------------------------------------- build


def test_the_builder_adds_no_key_when_no_class_is_given():
    built = token_event("p", "a", "u", 1000, 10, "0.003", "0.01", event_id="e-1")
    assert CLASS_KEYS.isdisjoint(built)
    explicit_zeros = token_event(
        "p", "a", "u", 1000, 10, "0.003", "0.01", event_id="e-1",
        model=None, cached_tokens_in=0, cache_write_tokens=0,
    )  # fmt: skip
    assert CLASS_KEYS.isdisjoint(explicit_zeros)


def test_the_builder_adds_the_classes_given_and_finalize_costs_them():
    built = token_event(
        "p", "a", "u", 1000, 10, "0.003", "0.01",
        timestamp=MOMENT, model="gpt-4o", cached_tokens_in=400,
        cached_input_token_price="0.0003",
    )  # fmt: skip
    assert {key: built[key] for key in CLASS_KEYS & set(built)} == {
        "model": "gpt-4o",
        "cached_tokens_in": 400,
        "cached_input_token_price": Decimal("0.0003"),
    }
    assert finalize(built)["total_cost"] == "2.0200"


def test_the_builder_refuses_more_cached_than_input_tokens():
    with pytest.raises(AgentMeterValidationError) as caught:
        token_event("p", "a", "u", 10, 0, 1, 1, cached_tokens_in=11)
    assert caught.value.field == "cached_tokens_in"


def test_a_built_event_and_its_model_say_the_same_on_the_wire():
    built = finalize(
        token_event(
            "p", "a", "u", 1000, 10, "0.003", "0.01", event_id="e-1", timestamp=MOMENT,
            model="m", cache_write_tokens=7, cache_write_token_price="0.00375",
        )
    )  # fmt: skip
    wire = {
        key: str(value) if isinstance(value, Decimal) else value for key, value in built.items()
    }
    assert parse_event(wire).to_dict() == wire
