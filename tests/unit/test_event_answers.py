"""The event list's per-row work: times and stored metadata as the wire shows them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from agentmeter.core.jsonio import format_time
from agentmeter.core.wire import EventQuery
from agentmeter.ledger import Ledger
from agentmeter.ledger.event_input import parse_wire_event
from agentmeter.ledger.micros import from_micros, wire_time
from agentmeter.ledger.queries import UNREADABLE_METADATA, event_dict, listed, stored_metadata

# Every microsecond a stored event can hold: years 1 to 9999.
FIRST, LAST = -62135596800_000000, 253402300799_999999


@given(st.integers(min_value=FIRST, max_value=LAST))
def test_wire_time_is_format_time_of_the_moment(micros: int) -> None:
    assert wire_time(micros) == format_time(from_micros(micros))


def test_wire_time_of_whole_seconds_and_the_epoch() -> None:
    assert wire_time(0) == "1970-01-01T00:00:00Z"
    assert wire_time(1_500_000) == "1970-01-01T00:00:01.500000Z"
    assert wire_time(-1) == "1969-12-31T23:59:59.999999Z"


@given(st.dictionaries(st.text(max_size=8), st.text(max_size=12), max_size=5))
def test_text_metadata_reads_back_as_stored(metadata: dict[str, str]) -> None:
    stored = json.dumps(metadata)  # ASCII escapes, as the ledger stores it
    read = stored_metadata(stored)
    escaped = {
        key.encode("utf-8", "backslashreplace").decode(): value.encode(
            "utf-8", "backslashreplace"
        ).decode()
        for key, value in metadata.items()
    }
    assert read == escaped


def test_old_rows_still_read() -> None:
    assert stored_metadata('{"x": NaN, "y": "\\ud800", "z": [Infinity]}') == {
        "x": "NaN",
        "y": "\\ud800",
        "z": ["Infinity"],
    }
    assert stored_metadata("[1, 2]") == {UNREADABLE_METADATA: "[1, 2]"}
    assert stored_metadata("null") == {}


# ------------------------------------------------ SQLite's list read on the driver

USERS, AGENTS, MODELS = ["u1", "u2", "ü3"], ["a1", "a2"], ["gpt-4o", "claude", None]
HOUR = 3600


def _wire_events(count: int) -> list[dict[str, Any]]:
    made: list[dict[str, Any]] = []
    for n in range(count):
        event: dict[str, Any] = {
            "id": f"ev-{n:04d}",
            "project_id": "proj_list",
            "agent_id": AGENTS[n % 2],
            "user_id": USERS[n % 3],
            # each time twice (the id breaks the tie), some on a query's bounds
            "timestamp": f"2026-11-{1 + n % 5:02d}T{3 + (n // 5) % 6:02d}:00:00Z",
            "metadata": {"n": n, "text": "é" * (n % 2)},
        }
        if n % 3 == 0:
            event |= {"payment_type": "api_request_pay", "api_calls": n % 4 + 1,
                      "unit_price": "0.0025"}  # fmt: skip
        elif n % 3 == 1:
            event |= {"payment_type": "token_based_pay", "tokens_in": 100 + n,
                      "tokens_out": n, "input_token_price": "0.000003",
                      "output_token_price": "0.000015", "cached_tokens_in": n % 2 * 50,
                      "cached_input_token_price": "0.0000015" if n % 2 else None}  # fmt: skip
            if MODELS[n % 3] is not None:
                event["model"] = MODELS[n % 3]
        else:
            event |= {"payment_type": "instant_pay", "amount": f"{n}.10"}
            if n % 4:
                event["description"] = f"charge {n}"
        made.append({key: value for key, value in event.items() if value is not None})
    return made


@pytest.fixture(scope="module")
def listed_ledger(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ledger]:
    ledger = Ledger.open(f"sqlite:///{tmp_path_factory.mktemp('list') / 'ledger.db'}")
    ledger.create_project("list", None, "proj_list")
    ledger.record_events([parse_wire_event(event)[0] for event in _wire_events(60)])
    yield ledger
    ledger.close()


days = st.none() | st.integers(min_value=1, max_value=6).map(
    lambda day: datetime(2026, 11, day, 5, tzinfo=timezone.utc)
)


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@example(None, None, None, None, datetime(2026, 11, 2, 5, tzinfo=timezone.utc), None, 70, 0)
@example(None, None, None, None, None, datetime(2026, 11, 2, 5, tzinfo=timezone.utc), 70, 0)
@given(
    user=st.sampled_from([None, *USERS]),
    agent=st.sampled_from([None, *AGENTS]),
    model=st.sampled_from([None, "gpt-4o", "claude"]),
    payment=st.sampled_from([None, "api_request_pay", "token_based_pay", "instant_pay"]),
    start=days,
    end=days,
    limit=st.integers(min_value=1, max_value=70),
    offset=st.integers(min_value=0, max_value=65),
)
def test_sqlites_list_is_the_statements(
    listed_ledger: Ledger, user: str | None, agent: str | None, model: str | None,
    payment: str | None, start: datetime | None, end: datetime | None, limit: int, offset: int,
) -> None:  # fmt: skip
    given_fields = {
        "project_id": "proj_list", "user_id": user, "agent_id": agent, "model": model,
        "payment_type": payment, "start_date": start, "end_date": end, "limit": limit,
        "offset": offset,
    }  # fmt: skip
    query = EventQuery.model_validate({k: v for k, v in given_fields.items() if v is not None})
    with listed_ledger.reading() as connection:
        expected = [event_dict(row) for row in listed(connection, query)]
    assert listed_ledger.list_events(query) == expected


def test_the_list_holds_every_kind_of_event(listed_ledger: Ledger) -> None:
    answers = listed_ledger.list_events(EventQuery.model_validate({"project_id": "proj_list"}))
    assert len(answers) == 60
    kinds = {answer["payment_type"] for answer in answers}
    assert kinds == {"api_request_pay", "token_based_pay", "instant_pay"}
    assert all(isinstance(answer["total_cost"], str) for answer in answers)
