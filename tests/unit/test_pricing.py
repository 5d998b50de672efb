"""Exact money: costs equal Decimal arithmetic on the decimal text, and bad values say so."""

from __future__ import annotations

from decimal import Context, Decimal

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from agentmeter import (
    AgentMeterValidationError,
    APIRequestPayEvent,
    InstantPayEvent,
    TokenBasedPayEvent,
)
from agentmeter.pricing import (
    MAX_COUNT,
    api_request_cost,
    money_sum,
    money_text,
    round_to_cents,
    to_count,
    to_money,
    token_cost,
)

EXACT = Context(prec=200)  # far wider than any product of two money values
COMMON = {"project_id": "p", "agent_id": "a"}
EXAMPLES = settings(max_examples=200, deadline=None)


@st.composite
def money(draw):
    """A valid price: below 10**15, at most 18 decimal places."""
    places = draw(st.integers(0, 18))
    unscaled = draw(st.integers(0, 10 ** (15 + places) - 1))
    return Decimal(f"{unscaled}E-{places}")


def fits(value: Decimal) -> bool:
    exponent = value.normalize().as_tuple().exponent
    return value < 10**15 and (value == 0 or exponent >= -18)


money_floats = st.floats(min_value=0, max_value=1e14, allow_nan=False, allow_infinity=False)
counts = st.integers(0, MAX_COUNT)


@st.composite
def price_input(draw):
    """(what the user passes, the decimal text it stands for)."""
    form = draw(st.sampled_from(["decimal", "str", "str_f", "float"]))
    if form == "float":
        number = draw(money_floats)
        assume(fits(Decimal(repr(number))))
        return number, repr(number)
    value = draw(money())
    if form == "decimal":
        return value, str(value)
    if form == "str":
        return str(value), str(value)  # may be scientific: 1.5E-7
    return format(value, "f"), format(value, "f")


# --------------------------------------------------------------- properties


@EXAMPLES
@given(price=price_input(), calls=counts)
def test_api_request_cost_is_decimal_arithmetic_on_the_text(price, calls):
    given_price, text = price
    expected = EXACT.multiply(Decimal(calls), Decimal(text))

    assert api_request_cost(calls, to_money(given_price, "unit_price")) == expected
    event = APIRequestPayEvent(**COMMON, api_calls=calls, unit_price=given_price)
    assert event.total_cost == expected


@EXAMPLES
@given(input_price=price_input(), output_price=price_input(), tokens_in=counts, tokens_out=counts)
def test_token_cost_is_decimal_arithmetic_on_the_text(
    input_price, output_price, tokens_in, tokens_out
):
    (given_in, text_in), (given_out, text_out) = input_price, output_price
    expected = EXACT.add(
        EXACT.multiply(Decimal(tokens_in), Decimal(text_in)),
        EXACT.multiply(Decimal(tokens_out), Decimal(text_out)),
    )

    cost = token_cost(
        tokens_in,
        tokens_out,
        to_money(given_in, "input_token_price"),
        to_money(given_out, "output_token_price"),
    )
    assert cost == expected
    event = TokenBasedPayEvent(
        **COMMON,
        tokens_in=tokens_in,
        tokens_out=tokens_out,
        input_token_price=given_in,
        output_token_price=given_out,
    )
    assert event.total_cost == expected


@EXAMPLES
@given(price=price_input())
def test_instant_pay_costs_its_amount(price):
    given_amount, text = price
    assert InstantPayEvent(**COMMON, amount=given_amount).total_cost == Decimal(text)


@EXAMPLES
@given(value=money())
def test_money_text_round_trips_without_an_exponent(value):
    text = money_text(value)
    assert "E" not in text.upper()
    assert Decimal(text) == value
    assert to_money(text, "amount") == value


@EXAMPLES
@given(values=st.lists(money(), max_size=50))
def test_money_sum_is_exact(values):
    total = Decimal(0)
    for value in values:
        total = EXACT.add(total, value)
    assert money_sum(values) == total


@EXAMPLES
@given(number=money_floats)
def test_a_float_means_its_shortest_text(number):
    assume(fits(Decimal(repr(number))))
    assert to_money(number, "amount") == Decimal(repr(number))


# ----------------------------------------------------------- known answers


@pytest.mark.parametrize(
    ("input_price", "output_price"),
    [
        (Decimal("0.004"), Decimal("0.0001")),
        ("0.004", "0.0001"),
        (0.004, 0.0001),
        ("4E-3", "1e-4"),
    ],
)
def test_the_documented_example_is_exactly_4_05(input_price, output_price):
    cost = token_cost(
        1000,
        500,
        to_money(input_price, "input_token_price"),
        to_money(output_price, "output_token_price"),
    )
    assert cost == Decimal("4.05")
    event = TokenBasedPayEvent(
        **COMMON,
        tokens_in=1000,
        tokens_out=500,
        input_token_price=input_price,
        output_token_price=output_price,
    )
    assert event.total_cost == Decimal("4.05")


def test_floats_go_through_their_shortest_text():
    assert to_money(0.1, "amount") == Decimal("0.1")
    assert str(to_money(0.1, "amount")) == "0.1"
    assert to_money(0.1, "amount") != Decimal(0.1)  # noqa: RUF032 (the float's binary value)
    assert to_money(1e-7, "amount") == Decimal("0.0000001")
    assert api_request_cost(3, to_money(0.1, "unit_price")) == Decimal("0.3")


@pytest.mark.parametrize(
    ("given_value", "expected"),
    [
        (" 1.5 ", "1.5"),
        ("1E+2", "100"),
        ("-0", "0"),
        (Decimal("-0.00"), "0"),
        ("0.1000000000000000000000", "0.1"),  # more places, but only zeros
        ("999999999999999.999999999999999999", "999999999999999.999999999999999999"),
        ("0.000000000000000001", "0.000000000000000001"),
        (7, "7"),
        (2.5, "2.5"),
    ],
)
def test_valid_money(given_value, expected):
    assert money_text(to_money(given_value, "amount")) == expected


@pytest.mark.parametrize(
    ("given_value", "expected"),
    [(0, 0), (5, 5), (3.0, 3), (Decimal("4"), 4), (MAX_COUNT, MAX_COUNT)],
)
def test_valid_counts(given_value, expected):
    assert to_count(given_value, "api_calls") == expected
    assert type(to_count(given_value, "api_calls")) is int


def test_round_to_cents_is_half_even():
    assert round_to_cents(Decimal("0.125")) == Decimal("0.12")
    assert round_to_cents(Decimal("0.135")) == Decimal("0.14")
    assert round_to_cents(Decimal("4.0500")) == Decimal("4.05")
    assert str(round_to_cents(Decimal("12"))) == "12.00"


# ------------------------------------------------------------ invalid values

INVALID_MONEY = [
    pytest.param(-1, id="negative-int"),
    pytest.param("-0.5", id="negative-str"),
    pytest.param(Decimal("-0.000001"), id="negative-decimal"),
    pytest.param(-0.1, id="negative-float"),
    pytest.param(float("nan"), id="nan-float"),
    pytest.param(Decimal("NaN"), id="nan-decimal"),
    pytest.param(Decimal("sNaN"), id="snan-decimal"),
    pytest.param("nan", id="nan-str"),
    pytest.param(float("inf"), id="inf-float"),
    pytest.param(float("-inf"), id="minus-inf-float"),
    pytest.param(Decimal("Infinity"), id="inf-decimal"),
    pytest.param("-Infinity", id="minus-inf-str"),
    pytest.param(True, id="bool-true"),
    pytest.param(False, id="bool-false"),
    pytest.param(None, id="none"),
    pytest.param([1], id="list"),
    pytest.param({"amount": 1}, id="dict"),
    pytest.param(b"1", id="bytes"),
    pytest.param(object(), id="object"),
    pytest.param("", id="empty"),
    pytest.param("one", id="word"),
    pytest.param("1,5", id="comma"),
    pytest.param("0.0000000000000000001", id="19-places"),
    pytest.param(Decimal("1E-19"), id="19-places-decimal"),
    pytest.param(1e-19, id="19-places-float"),
    pytest.param(10**15, id="too-large-int"),
    pytest.param("1e15", id="too-large-str"),
    pytest.param(1e15, id="too-large-float"),
    pytest.param(Decimal("1E+400"), id="huge"),
]
INVALID_COUNTS = [
    pytest.param(-1, id="negative"),
    pytest.param(1.5, id="fraction"),
    pytest.param(Decimal("2.5"), id="fraction-decimal"),
    pytest.param(True, id="bool-true"),
    pytest.param(False, id="bool-false"),
    pytest.param("3", id="str"),
    pytest.param(None, id="none"),
    pytest.param(float("nan"), id="nan"),
    pytest.param(float("inf"), id="inf"),
    pytest.param(Decimal("NaN"), id="nan-decimal"),
    pytest.param(MAX_COUNT + 1, id="too-large"),
    pytest.param(-2.0, id="negative-float"),
    pytest.param([3], id="list"),
]
MONEY_FIELDS = [
    (APIRequestPayEvent, "unit_price"),
    (TokenBasedPayEvent, "input_token_price"),
    (TokenBasedPayEvent, "output_token_price"),
    (InstantPayEvent, "amount"),
]
COUNT_FIELDS = [
    (APIRequestPayEvent, "api_calls"),
    (TokenBasedPayEvent, "tokens_in"),
    (TokenBasedPayEvent, "tokens_out"),
]
VALID = {
    APIRequestPayEvent: {"unit_price": "0.01"},
    TokenBasedPayEvent: {"input_token_price": "0.01", "output_token_price": "0.02"},
    InstantPayEvent: {"amount": "1"},
}


def assert_names(error, field):
    assert isinstance(error, ValueError)
    assert error.field == field
    assert field in str(error)


@pytest.mark.parametrize("value", INVALID_MONEY)
def test_to_money_refuses(value):
    with pytest.raises(AgentMeterValidationError) as raised:
        to_money(value, "unit_price")
    assert_names(raised.value, "unit_price")


@pytest.mark.parametrize("value", INVALID_COUNTS)
def test_to_count_refuses(value):
    with pytest.raises(AgentMeterValidationError) as raised:
        to_count(value, "tokens_in")
    assert_names(raised.value, "tokens_in")


@pytest.mark.parametrize(("model", "field"), MONEY_FIELDS)
@pytest.mark.parametrize("value", INVALID_MONEY)
def test_events_refuse_invalid_money(model, field, value):
    with pytest.raises(AgentMeterValidationError) as raised:
        model(**COMMON, **{**VALID[model], field: value})
    assert_names(raised.value, field)


@pytest.mark.parametrize(("model", "field"), COUNT_FIELDS)
@pytest.mark.parametrize("value", INVALID_COUNTS)
def test_events_refuse_invalid_counts(model, field, value):
    with pytest.raises(AgentMeterValidationError) as raised:
        model(**COMMON, **{**VALID[model], field: value})
    assert_names(raised.value, field)


@EXAMPLES
@given(value=st.decimals(max_value=Decimal("-1E-18"), allow_nan=False, allow_infinity=False))
def test_any_negative_amount_is_refused(value):
    with pytest.raises(AgentMeterValidationError) as raised:
        to_money(value, "amount")
    assert raised.value.field == "amount"


@EXAMPLES
@given(unscaled=st.integers(1, 10**30), places=st.integers(19, 40))
def test_any_amount_with_more_than_18_places_is_refused(unscaled, places):
    assume(unscaled % 10 != 0)  # trailing zeros would be fewer real places
    with pytest.raises(AgentMeterValidationError, match="decimal places"):
        to_money(Decimal(f"{unscaled}E-{places}"), "amount")


@EXAMPLES
@given(value=st.integers(min_value=10**15, max_value=10**40))
def test_any_amount_of_10_to_the_15_or_more_is_refused(value):
    with pytest.raises(AgentMeterValidationError, match="less than"):
        to_money(value, "amount")


def test_all_invalid_fields_are_listed():
    with pytest.raises(AgentMeterValidationError) as raised:
        TokenBasedPayEvent(**COMMON, tokens_in=-1, input_token_price="x", output_token_price="0.1")
    error = raised.value
    assert [item["field"] for item in error.errors] == ["tokens_in", "input_token_price"]
    assert error.field == "tokens_in"
    assert "1 more invalid field" in str(error)
