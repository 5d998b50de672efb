"""Exact money arithmetic.

Every price, amount and cost is a :class:`~decimal.Decimal`. A float given by
a user is converted through its shortest text, so ``0.1`` becomes
``Decimal("0.1")``, never ``Decimal(0.1)`` (which is
``0.1000000000000000055511151231257827...``).

>>> token_cost(1000, 500, to_money("0.004", "input_token_price"),
...            to_money(0.0001, "output_token_price"))
Decimal('4.0500')

Costs are never rounded here. Rounding to cents happens once, half-even,
when a billing record is made (:func:`round_to_cents`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from decimal import (
    ROUND_HALF_EVEN,
    Context,
    Decimal,
    DivisionByZero,
    Inexact,
    InvalidOperation,
    Overflow,
)
from typing import Any

from .errors import AgentMeterValidationError

ZERO = Decimal(0)
CENT = Decimal("0.01")
# The largest scale we store exactly (NUMERIC on PostgreSQL, text on SQLite)
# and the largest magnitude we accept: 10**15 of any currency is not a bill.
MAX_DECIMAL_PLACES = 18
MAX_INTEGER_DIGITS = 15
MAX_COUNT = 10**15
# Wide enough for MAX_COUNT x the largest price, summed many times over; the
# Inexact trap turns any rounding we did not ask for into an error.
MONEY_CONTEXT = Context(prec=100, traps=[InvalidOperation, Inexact, Overflow, DivisionByZero])


# Prices repeat (the same unit price on every call), and checking one costs
# about a microsecond of the hot path's budget, so valid ones are remembered:
# floats, ints and strings by value, Decimals by identity (kept alive here,
# so an id is never reused while cached).
_CACHE_LIMIT = 4096
_valid_by_value: dict[tuple[type, Any], Decimal] = {}
_valid_decimals: dict[int, Decimal] = {}


def to_money(value: Any, field: str) -> Decimal:
    """Parse a price or amount exactly; raise naming ``field`` if it is not money."""
    kind = value.__class__
    if kind is Decimal:
        known = _valid_decimals.get(id(value))
        if known is not None and known is value:
            return known
    elif kind is float or kind is str or kind is int:
        cached = _valid_by_value.get((kind, value))
        if cached is not None:
            return cached
    money = _parse_money(value, field)
    _remember(kind, value, money)
    return money


def _remember(kind: type, value: Any, money: Decimal) -> None:
    if kind is Decimal:
        if money is value:
            if len(_valid_decimals) >= _CACHE_LIMIT:
                _valid_decimals.clear()
            _valid_decimals[id(value)] = value
    elif kind is float or kind is str or kind is int:
        if len(_valid_by_value) >= _CACHE_LIMIT:
            _valid_by_value.clear()
        _valid_by_value[(kind, value)] = money


def to_total(value: Any, field: str) -> Decimal:
    """Money that is a sum (a stats total, a meter's usage): exact like any
    money, but not held to the bound of a single price or amount."""
    return _parse_money(value, field, bounded=False)


def _parse_money(value: Any, field: str, bounded: bool = True) -> Decimal:
    if isinstance(value, Decimal):
        money = value
    elif isinstance(value, bool) or value is None:
        raise AgentMeterValidationError.for_field(field, f"must be a number, got {value!r}")
    elif isinstance(value, int):
        money = Decimal(value)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise AgentMeterValidationError.for_field(field, f"must be finite, got {value!r}")
        money = Decimal(repr(value))
    elif isinstance(value, str):
        try:
            money = Decimal(value.strip())
        except InvalidOperation:
            raise AgentMeterValidationError.for_field(
                field, f"must be a decimal number, got {value[:40]!r}"
            ) from None
    else:
        raise AgentMeterValidationError.for_field(
            field, f"must be a number or decimal string, got {type(value).__name__}"
        )
    return _checked(money, field, bounded)


def _checked(money: Decimal, field: str, bounded: bool = True) -> Decimal:
    if not money.is_finite():
        raise AgentMeterValidationError.for_field(field, f"must be finite, got {money}")
    if money.is_signed() and money != 0:
        raise AgentMeterValidationError.for_field(field, f"must not be negative, got {money}")
    if money == 0:
        return ZERO
    if bounded and money.adjusted() >= MAX_INTEGER_DIGITS:
        raise AgentMeterValidationError.for_field(
            field, f"must be less than 10**{MAX_INTEGER_DIGITS}, got {money}"
        )
    sign, digits, exponent = money.as_tuple()
    assert isinstance(exponent, int)  # finite decimals have an int exponent
    if exponent < -MAX_DECIMAL_PLACES:
        # "0.1000000000000000000000" is fine: drop trailing zeros, exactly
        # (no context, so no rounding however many digits there are).
        kept = len("".join(map(str, digits)).rstrip("0"))  # money != 0: kept >= 1
        exponent += len(digits) - kept
        money = Decimal((sign, digits[:kept], exponent))
        if exponent < -MAX_DECIMAL_PLACES:
            raise AgentMeterValidationError.for_field(
                field, f"has more than {MAX_DECIMAL_PLACES} decimal places: {money}"
            )
    if exponent > 0:
        money = Decimal((sign, digits + (0,) * exponent, 0))  # 1E+2 -> 100, exactly
    return money


def to_count(value: Any, field: str) -> int:
    """Parse a non-negative whole count (calls, tokens); bools are refused."""
    if isinstance(value, bool) or not isinstance(value, int):
        if _is_whole(value):
            value = int(value)
        else:
            raise AgentMeterValidationError.for_field(
                field, f"must be a whole number, got {value!r}"
            )
    if value < 0:
        raise AgentMeterValidationError.for_field(field, f"must not be negative, got {value}")
    if value > MAX_COUNT:
        raise AgentMeterValidationError.for_field(field, f"must be at most {MAX_COUNT}")
    return int(value)


def _is_whole(value: Any) -> bool:
    if isinstance(value, float):
        return value.is_integer()
    return isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value()


def money_text(money: Decimal) -> str:
    """The decimal's own text, without an exponent: ``0.0000001``, not ``1E-7``."""
    return format(money, "f")


def api_request_cost(api_calls: int, unit_price: Decimal) -> Decimal:
    return MONEY_CONTEXT.multiply(Decimal(api_calls), unit_price)


def token_cost(
    tokens_in: int,
    tokens_out: int,
    input_token_price: Decimal,
    output_token_price: Decimal,
    cached_tokens_in: int = 0,
    cache_write_tokens: int = 0,
    cached_input_price: Decimal | None = None,
    cache_write_price: Decimal | None = None,
) -> Decimal:
    """The exact cost of a token charge, by token class.

    ``tokens_in`` counts every input token, the ``cached_tokens_in`` among
    them too; ``cache_write_tokens`` come on top. A class without its own
    price (None) is billed at the input price.

    >>> token_cost(1000, 0, Decimal("0.003"), ZERO, cached_tokens_in=400,
    ...            cached_input_price=Decimal("0.0003"))
    Decimal('1.9200')
    """
    if not cached_tokens_in and not cache_write_tokens:  # the 0.2 formula: the hot path
        return MONEY_CONTEXT.add(
            MONEY_CONTEXT.multiply(Decimal(tokens_in), input_token_price),
            MONEY_CONTEXT.multiply(Decimal(tokens_out), output_token_price),
        )
    if cached_tokens_in > tokens_in:
        raise AgentMeterValidationError.for_field(
            "cached_tokens_in", f"must be at most tokens_in ({tokens_in}), got {cached_tokens_in}"
        )
    cached_price = input_token_price if cached_input_price is None else cached_input_price
    write_price = input_token_price if cache_write_price is None else cache_write_price
    parts = (
        (tokens_in - cached_tokens_in, input_token_price),
        (cached_tokens_in, cached_price),
        (cache_write_tokens, write_price),
        (tokens_out, output_token_price),
    )
    return money_sum(MONEY_CONTEXT.multiply(Decimal(count), price) for count, price in parts)


def money_sum(amounts: Iterable[Decimal]) -> Decimal:
    """Exact sum of money values (never rounded)."""
    total = ZERO
    for amount in amounts:
        total = MONEY_CONTEXT.add(total, amount)
    return total


def round_to_cents(amount: Decimal) -> Decimal:
    """Round a sum of costs to cents, half-even (banker's rounding), once."""
    return amount.quantize(CENT, rounding=ROUND_HALF_EVEN, context=Context(prec=100))


# ----------------------------------------------------------- model prices


def model_price_table(
    overrides: Mapping[str, Any] | None = None,
) -> dict[str, tuple[Decimal, Decimal]]:
    """A caller's own per-model prices, validated (the list prices are the
    catalog's, :mod:`agentmeter.core.catalog`; these go in front of it).

    An entry is ``(input_price, output_price)`` or
    ``{"input_token_price": ..., "output_token_price": ...}``.
    """
    table: dict[str, Any] = dict(overrides or {})
    return {name: _model_prices(name, entry) for name, entry in table.items()}


def _model_prices(name: str, entry: Any) -> tuple[Decimal, Decimal]:
    if isinstance(entry, Mapping):
        entry = (entry.get("input_token_price"), entry.get("output_token_price"))
    if not isinstance(entry, (tuple, list)) or len(entry) != 2:
        raise AgentMeterValidationError.for_field(
            f"prices[{name!r}]", "must be (input_token_price, output_token_price)"
        )
    return (
        to_money(entry[0], f"prices[{name!r}].input_token_price"),
        to_money(entry[1], f"prices[{name!r}].output_token_price"),
    )


def price_for_model(
    model: str, table: Mapping[str, tuple[Decimal, Decimal]]
) -> tuple[Decimal, Decimal] | None:
    """The entry for ``model``: exact name, else the longest matching prefix,
    ignoring case and a provider path ("models/gemini-1.5-pro" -> "gemini-1.5-pro")."""
    exact = table.get(model)
    if exact is not None:
        return exact
    wanted = model.rsplit("/", 1)[-1].lower()
    best = ""
    for name in table:
        if wanted.startswith(name.lower()) and len(name) > len(best):
            best = name
    return table[best] if best else None
