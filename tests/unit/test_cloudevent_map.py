"""An event as a CloudEvent and back: the same event, every field where the spec puts it."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agentmeter.core.cloudevent_map import event_of, from_cloudevent, to_cloudevent
from agentmeter.errors import AgentMeterValidationError
from agentmeter.models import parse_event

NAMES = st.text("abcdefghijklmnopqrstuvwxyz0123456789-_", min_size=1, max_size=12)
PRICES = st.decimals("0", "100", places=6).map(str)
COUNTS = st.integers(0, 10**9)


def events() -> st.SearchStrategy[dict[str, Any]]:
    common = {
        "id": NAMES.map(lambda name: "ev-" + name),
        "project_id": NAMES,
        "agent_id": NAMES,
        "user_id": NAMES,
        "timestamp": st.just("2026-01-02T03:04:05.123456+00:00"),
        # metadata integers are bounded (±2**64) by the input checks
        "metadata": st.dictionaries(NAMES, st.integers(-(2**63), 2**63) | NAMES, max_size=3),
    }
    api = st.fixed_dictionaries(
        {
            **common,
            "payment_type": st.just("api_request_pay"),
            "api_calls": COUNTS,
            "unit_price": PRICES,
        }
    )
    tokens = st.fixed_dictionaries(
        {
            **common,
            "payment_type": st.just("token_based_pay"),
            "tokens_in": COUNTS,
            "tokens_out": COUNTS,
            "input_token_price": PRICES,
            "output_token_price": PRICES,
        }
    )
    instant = st.fixed_dictionaries(
        {**common, "payment_type": st.just("instant_pay"), "amount": PRICES, "description": NAMES}
    )
    return api | tokens | instant


@given(event=events())
def test_an_event_comes_back_from_its_cloudevent_unchanged(event: dict[str, Any]) -> None:
    envelope = to_cloudevent(event)
    assert envelope["specversion"] == "1.0"
    assert (envelope["id"], envelope["source"], envelope["subject"]) == (
        event["id"],
        event["agent_id"],
        event["user_id"],
    )
    assert envelope["type"] == "agentmeter." + event["payment_type"]
    assert from_cloudevent(envelope) == event
    assert parse_event(from_cloudevent(envelope)) == parse_event(event)


@pytest.mark.parametrize(
    ("envelope", "field"),
    [
        ([], "cloudevent"),
        ({"type": "com.example.other", "data": {}}, "type"),
        ({"type": "agentmeter.instant_pay", "data": "x"}, "data"),
        ({"type": "agentmeter.instant_pay", "data": {"user_id": "u"}}, "data.user_id"),
    ],
)
def test_a_bad_envelope_names_its_attribute(envelope: Any, field: str) -> None:
    with pytest.raises(AgentMeterValidationError) as caught:
        from_cloudevent(envelope)
    assert caught.value.field == field


FULL = {"specversion": "1.0", "id": "e", "source": "a", "type": "agentmeter.instant_pay"}


@pytest.mark.parametrize(
    ("envelope", "field"),
    [
        ({**FULL, "specversion": None}, "specversion"),
        ({key: value for key, value in FULL.items() if key != "specversion"}, "specversion"),
        ({**FULL, "specversion": "0.3"}, "specversion"),
        ({key: value for key, value in FULL.items() if key != "id"}, "id"),
        ({**FULL, "source": ""}, "source"),
        ({**FULL, "type": 3}, "type"),
        ({**FULL, "data_base64": "AA=="}, "data_base64"),
    ],
)
def test_a_full_envelope_needs_the_required_attributes(envelope: Any, field: str) -> None:
    with pytest.raises(AgentMeterValidationError) as caught:
        event_of(envelope)
    assert caught.value.field == field


def test_a_full_envelope_maps_like_from_cloudevent() -> None:
    envelope = {**FULL, "subject": "u", "data": {"amount": "2"}}
    assert event_of(envelope) == from_cloudevent(envelope)
