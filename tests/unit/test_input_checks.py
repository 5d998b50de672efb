"""What may enter as metadata and text: refused at the call site, on every surface.

Issue 11, item 3: ``track_instant_pay(metadata={"x": inf})`` used to return an
id and then poison its batch; ``record_instant_pay(metadata={"x": nan})`` raised
pydantic's serialization error instead of ours.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agentmeter import (
    AgentMeterClient,
    AgentMeterError,
    AgentMeterValidationError,
    InstantPayEvent,
    meter_agent,
    meter_api_request_pay,
    meter_instant_pay,
    meter_token_based_pay,
    track_api_request_pay,
    track_instant_pay,
    track_token_based_pay,
)
from agentmeter.core.checks import MAX_METADATA_DEPTH, check_metadata, check_text
from agentmeter.core.jsonio import dumps_bytes, encode_body

POISON = {
    "nan": {"x": float("nan")},
    "inf": {"x": float("inf")},
    "decimal-nan": {"x": Decimal("NaN")},
    "nested-inf": {"a": {"b": [1, float("-inf")]}},
    "surrogate-key": {"\ud800": 1},
    "surrogate-value": {"model": "gpt\udfff"},
    "deep": {"a": json.loads("[" * (MAX_METADATA_DEPTH + 1) + "]" * (MAX_METADATA_DEPTH + 1))},
    "huge-int": {"n": 10**40},
    "huge-exponent": {"d": Decimal("1e999999")},
    "non-string-key": {1: "x"},
}


class Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no text for you")


@pytest.fixture
def client(tmp_path: Path) -> Iterator[AgentMeterClient]:
    with AgentMeterClient(
        base_url=f"sqlite:///{tmp_path / 'ledger.db'}", project_id="p", agent_id="a"
    ) as made:
        yield made


def _work(user_id: str) -> str:
    return user_id


def calls(client: AgentMeterClient, metadata: Any) -> dict[str, Callable[[], Any]]:
    """Every way an event's metadata reaches us, each a call that should refuse it."""
    token = {"tokens_in": 1, "tokens_out": 1, "input_token_price": 1, "output_token_price": 1}
    return {
        "record_api_request_pay": lambda: client.record_api_request_pay(
            api_calls=1, unit_price=1, metadata=metadata
        ),
        "record_token_based_pay": lambda: client.record_token_based_pay(**token, metadata=metadata),
        "record_instant_pay": lambda: client.record_instant_pay(amount=1, metadata=metadata),
        "track_api_request_pay": lambda: client.tracker.track_api_request_pay(
            api_calls=1, unit_price=1, metadata=metadata
        ),
        "track_token_based_pay": lambda: client.tracker.track_token_based_pay(
            **token, metadata=metadata
        ),
        "track_instant_pay": lambda: client.tracker.track_instant_pay(amount=1, metadata=metadata),
        "event model": lambda: InstantPayEvent(
            project_id="p", agent_id="a", amount=1, metadata=metadata
        ),
        "with track_api_request_pay": lambda: track_api_request_pay(
            client, user_id="u", unit_price=1, metadata=metadata
        ),
        "with track_token_based_pay": lambda: track_token_based_pay(
            client, user_id="u", input_token_price=1, output_token_price=1, metadata=metadata
        ),
        "with track_instant_pay": lambda: track_instant_pay(
            client, user_id="u", amount=1, metadata=metadata
        ),
        "@meter_api_request_pay": lambda: meter_api_request_pay(
            client, unit_price=1, metadata=metadata
        )(_work),
        "@meter_token_based_pay": lambda: meter_token_based_pay(
            client, input_token_price=1, output_token_price=1, metadata=metadata
        )(_work),
        "@meter_instant_pay": lambda: meter_instant_pay(client, amount=1, metadata=metadata)(_work),
    }


SURFACES = list(calls(AgentMeterClient.__new__(AgentMeterClient), None))


@pytest.mark.parametrize("surface", SURFACES)
@pytest.mark.parametrize("case", list(POISON))
def test_every_surface_refuses_poisonous_metadata_at_the_call(
    client: AgentMeterClient, surface: str, case: str
) -> None:
    with pytest.raises(AgentMeterValidationError) as raised:
        calls(client, POISON[case])[surface]()
    assert raised.value.field == "metadata"
    assert client.flush(timeout=5)
    assert client.tracker.stats().queued == 0


def test_meter_agent_refuses_poisonous_metadata_when_the_class_is_decorated(
    client: AgentMeterClient,
) -> None:
    with pytest.raises(AgentMeterValidationError):

        @meter_agent(client, payment_type="api_request_pay", unit_price=1, metadata=POISON["inf"])
        class Agent:
            def run(self, user_id: str) -> str:
                return "ok"


@pytest.mark.parametrize("field", ["user_id", "agent_id", "project_id", "description"])
def test_a_lone_surrogate_in_any_text_is_refused(client: AgentMeterClient, field: str) -> None:
    with pytest.raises(AgentMeterValidationError) as raised:
        client.tracker.track_instant_pay(amount=1, **{field: "x\ud800"})
    assert raised.value.field == field
    with pytest.raises(AgentMeterValidationError):
        client.record_instant_pay(amount=1, **{field: "x\ud800"})


def test_valid_unicode_and_user_objects_are_kept_as_text(client: AgentMeterClient) -> None:
    metadata = {"emoji": "\U0001f600", "café": "naïve", "obj": Path("/x"), "tags": {"b", "a"}}
    event = InstantPayEvent(project_id="p", agent_id="a", amount=1, metadata=metadata)
    assert event.to_dict()["metadata"] == {
        "emoji": "\U0001f600",
        "café": "naïve",
        "obj": "/x",
        "tags": ["a", "b"],
    }
    client.tracker.track_instant_pay(amount=1, metadata=metadata)
    assert client.flush(timeout=5)


def test_an_object_whose_str_raises_is_refused_not_deferred() -> None:
    with pytest.raises(AgentMeterValidationError, match="cannot be turned into text"):
        check_metadata({"x": Unprintable()})


def test_check_text_passes_valid_text_through() -> None:
    assert check_text("héllo \U0001f600", "user_id") == "héllo \U0001f600"


def test_a_raw_body_that_cannot_be_json_is_a_validation_error() -> None:
    for body in ({"x": float("nan")}, {"x": "\ud800"}):
        with pytest.raises(AgentMeterValidationError):
            encode_body(body)


def test_flat_metadata_is_copied_not_shared() -> None:
    original = {"model": "gpt-4o", "n": 3}
    copied = check_metadata(original)
    original["model"] = "changed"
    assert copied == {"model": "gpt-4o", "n": 3}


# ------------------------------------------------------------ properties

SURROGATES = st.sampled_from(["\ud800", "\udfff", "a\ud83d"])
TEXT = st.one_of(st.text(max_size=8), SURROGATES)
ANY_VALUE = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**80), max_value=2**80),
        st.floats(allow_nan=True, allow_infinity=True),
        st.decimals(allow_nan=True, allow_infinity=True),
        TEXT,
        st.builds(Unprintable),
        st.builds(object),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.tuples(inner),
        st.dictionaries(st.one_of(TEXT, st.integers()), inner, max_size=3),
    ),
    max_leaves=10,
)


@settings(max_examples=300, deadline=None)
@given(metadata=ANY_VALUE)
def test_checked_metadata_always_encodes(metadata: Any) -> None:
    try:
        checked = check_metadata(metadata)
    except AgentMeterValidationError:
        return
    decoded = json.loads(dumps_bytes(checked))  # the wire form: never raises
    assert not _has_non_finite(decoded)


def _has_non_finite(value: Any) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, dict):
        return any(_has_non_finite(item) for item in value.values())
    if isinstance(value, list):
        return any(_has_non_finite(item) for item in value)
    return False


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    amount=st.one_of(ANY_VALUE, st.text(max_size=6)),
    user_id=st.one_of(TEXT, ANY_VALUE),
    description=st.one_of(TEXT, ANY_VALUE),
    metadata=st.one_of(ANY_VALUE, st.dictionaries(TEXT, ANY_VALUE, max_size=3)),
)
def test_the_sdk_raises_only_its_own_errors(
    client: AgentMeterClient, amount: Any, user_id: Any, description: Any, metadata: Any
) -> None:
    for call in (client.tracker.track_instant_pay, client.record_instant_pay):
        with contextlib.suppress(AgentMeterError):
            call(amount=amount, user_id=user_id, description=description, metadata=metadata)
    assert client.flush(timeout=5)


def test_keys_json_accepts_are_kept_as_json_writes_them() -> None:
    """A str enum key is its value; nested number, boolean, None keys are JSON text, as in 0.2."""
    import enum

    class Key(str, enum.Enum):
        MODEL = "model"

    checked = check_metadata({Key.MODEL: "gpt-4o", "usage": {2: 5, True: 1, None: 0}})
    assert checked == {"model": "gpt-4o", "usage": {"2": 5, "true": 1, "null": 0}}
    assert all(type(key) is str for key in checked)
