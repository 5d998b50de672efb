"""The hot path's shortcuts (issue 19) keep every check and every value.

The metadata check's fast path, the charge declared from named settings, and
the values a with-block or decorator hands on by name: each is checked here
against what the slow, general path does.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agentmeter import (
    AgentMeterClient,
    AgentMeterValidationError,
    track_api_request_pay,
    track_instant_pay,
    track_token_based_pay,
)
from agentmeter.capture.charge import Charge
from agentmeter.core.checks import check_metadata
from agentmeter.models import PaymentType


class LoudFloat(float):
    """A float subclass: not the fast path's exact ``float``."""


@given(st.floats(allow_nan=True, allow_infinity=True))
def test_a_float_is_kept_when_finite_and_refused_when_not(value: float) -> None:
    if math.isfinite(value):
        assert check_metadata({"x": value}) == {"x": value}
    else:
        with pytest.raises(AgentMeterValidationError, match=r"metadata\.x"):
            check_metadata({"x": value})


@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan])
def test_a_float_subclass_that_is_not_finite_is_refused(value: float) -> None:
    with pytest.raises(AgentMeterValidationError, match="finite"):
        check_metadata({"x": LoudFloat(value)})


def test_the_copy_is_a_plain_dict_whatever_mapping_came_in() -> None:
    given_metadata: dict[str, Any] = {"model": "gpt-4o", "n": 1}
    copied = check_metadata(given_metadata)
    assert copied == given_metadata
    assert copied is not given_metadata
    given_metadata["n"] = 2  # a later change by the caller does not leak in
    assert copied["n"] == 1
    ordered = check_metadata(OrderedDict(a=1.5))
    assert type(ordered) is dict
    assert ordered == {"a": 1.5}


def test_a_charge_names_its_settings_and_checks_each() -> None:
    charge = Charge.declare("api_request_pay", unit_price="0.001", api_calls=2)
    assert (charge.payment_type, charge.unit_price, charge.api_calls) == (
        PaymentType.API_REQUEST_PAY,
        Decimal("0.001"),
        2,
    )
    with pytest.raises(TypeError):
        Charge.declare("api_request_pay", unit_prize="0.001")  # type: ignore[call-arg]
    for bad in ({"api_calls": True}, {"unit_price": "-1"}, {"amount": "NaN"}, {"model": ""}):
        with pytest.raises(AgentMeterValidationError):
            Charge.declare("instant_pay", **bad)


@pytest.fixture
def client(tmp_path: Path) -> Iterator[AgentMeterClient]:
    with AgentMeterClient(
        base_url=f"sqlite:///{tmp_path / 'ledger.db'}", project_id="p", agent_id="a"
    ) as made:
        yield made


def test_blocks_hand_on_every_value_they_were_given(client: AgentMeterClient) -> None:
    with track_api_request_pay(client, unit_price="0.25", user_id="u1", api_calls=3) as usage:
        usage["metadata"]["step"] = "search"
    with track_token_based_pay(
        client, input_token_price="0.001", output_token_price="0.002", user_id="u2"
    ) as usage:
        usage["tokens_in"], usage["tokens_out"] = 100, 10
    with track_instant_pay(client, amount="1.10", description="report", user_id="u3"):
        pass
    assert client.tracker.flush(timeout=10)
    events = {event.user_id: event for event in client.get_events(limit=10)}
    assert (events["u1"].api_calls, events["u1"].total_cost) == (3, Decimal("0.75"))
    assert events["u1"].metadata["step"] == "search"
    assert (events["u2"].tokens_in, events["u2"].total_cost) == (100, Decimal("0.120"))
    assert (events["u3"].description, events["u3"].total_cost) == ("report", Decimal("1.10"))
