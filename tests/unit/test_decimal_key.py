"""SQLite keeps money as decimal text; decimal_key sorts it by value."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import example, given
from hypothesis import strategies as st

from agentmeter.ledger.dialect import decimal_key

amounts = st.decimals(
    min_value=Decimal("-1e20"), max_value=Decimal("1e20"), places=18, allow_nan=False
)


@example(  # more digits than Decimal's default context: abs() used to round them
    [Decimal("99999999999999999999.999999995000000001"), Decimal("99999999999999999999.999999995")]
)
@given(st.lists(amounts, min_size=2, max_size=30))
def test_keys_sort_like_the_numbers(values: list[Decimal]) -> None:
    texts = [format(value, "f") for value in values]
    by_key = sorted(texts, key=lambda text: decimal_key(text) or "")
    assert [Decimal(text) for text in by_key] == sorted(values)


def test_text_order_is_not_value_order_but_key_order_is() -> None:
    assert "2.0" > "100.0"
    assert decimal_key("2.0") < decimal_key("100.0")  # type: ignore[operator]
    assert decimal_key("-1") < decimal_key("0") < decimal_key("0.000001")  # type: ignore[operator]
    assert decimal_key("1.50") == decimal_key("1.5")
    assert decimal_key(None) is None
