"""The worker's shortcuts (issue 19) write what the standard way writes.

``dumps_bytes`` goes through orjson when it is installed (the ``speed``
extra): the bytes must decode to the same value as the standard library's,
money must be the same text, and whatever the standard encoder refuses
(NaN, a lone surrogate, nesting too deep) must still be refused the same way.
``format_ns`` makes the date and time once per second: its text must be
``datetime.isoformat``'s.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import uuid
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agentmeter.core import build, jsonio
from agentmeter.core.build import api_request_event, finalize, format_ns

orjson = pytest.importorskip("orjson")


def standard(value: Any) -> bytes:
    return jsonio._ENCODER.encode(value).encode("utf-8")


def decoded(data: bytes) -> Any:
    return json.loads(data, parse_float=Decimal)


class Color(str, enum.Enum):
    RED = "red"


class Level(enum.IntEnum):
    HIGH = 3


@dataclasses.dataclass
class Point:
    x: int


JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**64) + 1, max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.decimals(allow_nan=False, allow_infinity=False, places=8)
    | st.text()
)
VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(VALUES)
def test_the_shortcut_writes_what_the_standard_encoder_writes(value: Any) -> None:
    assert decoded(jsonio.dumps_bytes(value)) == decoded(standard(value))


@given(st.decimals(allow_nan=False, allow_infinity=False))
def test_money_is_the_decimals_own_text_either_way(money: Decimal) -> None:
    body = {"unit_price": money, "events": [{"amount": money}]}
    assert jsonio.dumps_bytes(body) == standard(body)
    assert decoded(jsonio.dumps_bytes(body))["unit_price"] == format(money, "f")


def test_a_finalized_event_is_the_same_bytes_either_way() -> None:
    metadata = {"model": "gpt-4o", "tokens_in": 120, "cost_usd": 0.00123, "ok": True}
    event = finalize(api_request_event("p", "a", "u", 2, "0.0010", metadata))
    assert jsonio.dumps_bytes({"events": [event]}) == standard({"events": [event]})
    assert b'"unit_price":"0.0010"' in jsonio.dumps_bytes(event)


@pytest.mark.parametrize(
    "value",
    [
        {"when": datetime(2025, 1, 31, 23, 59, tzinfo=timezone(timedelta(hours=2)))},
        {"when": datetime(2025, 1, 31, 23, 59)},
        {"day": date(2025, 1, 31), "id": uuid.UUID(int=7)},
        {"color": Color.RED, "level": Level.HIGH},
        {"point": Point(1)},
        {"set": {3, 1, 2}, "tuple": (1, 2)},
        {1: "a", None: "b"},
        {"tiny": -(2**64) + 1, "nothing": None, "text": "null"},
        {"decimal nan": Decimal("NaN")},
    ],
    ids=lambda value: ",".join(map(str, value)),
)
def test_what_orjson_writes_otherwise_is_written_the_standard_way(value: Any) -> None:
    assert jsonio.dumps_bytes(value) == standard(value)


@pytest.mark.parametrize(
    "bad",
    [{"x": float("nan")}, {"x": float("inf")}, {"model": "\ud800"}, {"\udfff": 1}],
    ids=["nan", "inf", "surrogate", "surrogate-key"],
)
def test_what_the_standard_encoder_refuses_is_still_refused(bad: Any) -> None:
    with pytest.raises(ValueError):  # UnicodeEncodeError is a ValueError too
        standard(bad)
    with pytest.raises(ValueError):
        jsonio.dumps_bytes(bad)


def test_without_orjson_the_standard_library_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    body = {"unit_price": Decimal("0.0010"), "x": 1.5e-7}
    monkeypatch.setattr(jsonio, "_orjson", None)
    assert jsonio.dumps_bytes(body) == standard(body) == b'{"unit_price":"0.0010","x":1.5e-07}'


def iso_text(nanoseconds: int) -> str:
    """What format_ns wrote before it kept the second's text."""
    seconds, rest = divmod(nanoseconds, 1_000_000_000)
    moment = datetime.fromtimestamp(seconds, tz=timezone.utc).replace(microsecond=rest // 1000)
    return moment.isoformat().replace("+00:00", "Z")


@given(st.integers(min_value=-(10**18), max_value=253_402_300_799 * 10**9))
def test_a_timestamp_reads_as_isoformat_writes_it(nanoseconds: int) -> None:
    assert format_ns(nanoseconds) == iso_text(nanoseconds)


def test_events_of_one_second_share_its_text_and_keep_their_microseconds() -> None:
    second = 1_764_350_000 * 10**9
    texts = [format_ns(second + micros * 1000) for micros in (0, 1, 999_999)]
    assert texts == [
        "2025-11-28T17:13:20Z",
        "2025-11-28T17:13:20.000001Z",
        "2025-11-28T17:13:20.999999Z",
    ]
    assert build._last_second[0] == 1_764_350_000
