"""A project's stats from the rollup (whole hours up to now's, less what is
stamped after now, plus the partial hour at the start) equal the sums of its
events, to the last digit: random events around now, in the future too, any
timeframe, SQLite and PostgreSQL."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agentmeter.ledger import Ledger
from agentmeter.ledger import queries as queries_module
from agentmeter.ledger.base import from_micros
from agentmeter.ledger.rollup_schema import rollup_metadata
from agentmeter.ledger.schema import events as events_table
from agentmeter.models import APIRequestPayEvent, InstantPayEvent, MeterEvent

# Now, for these tests: 25 minutes and a few microseconds into an hour.
NOW = 1_772_323_200_000_000 + 25 * 60 * 1_000_000 + 7
HOUR = 3600 * 1_000_000


@pytest.fixture
def ledger(project_ledger: Ledger, monkeypatch: pytest.MonkeyPatch) -> Ledger:
    monkeypatch.setattr(queries_module, "now_micros", lambda: NOW)
    return project_ledger  # tests/conftest.py: SQLite and PostgreSQL


event_strategy = st.tuples(
    st.integers(min_value=0, max_value=30),  # id: repeats are duplicates
    st.sampled_from(["p", "p", "q"]),
    st.one_of(  # micros from now: mostly this hour, around the edges, and ahead
        st.integers(min_value=-HOUR, max_value=HOUR),
        st.integers(min_value=-3, max_value=3),
        st.integers(min_value=-32 * 24 * HOUR, max_value=0),
        st.sampled_from([-24 * HOUR, -24 * HOUR - 1, -24 * HOUR + 1, -7 * 24 * HOUR]),
    ),
    st.decimals(min_value=0, max_value=100, places=10, allow_nan=False, allow_infinity=False),
    st.booleans(),
)


def make(spec: tuple[Any, ...]) -> MeterEvent:
    number, project, offset, amount, api = spec
    common: dict[str, Any] = {
        "id": f"e{number}", "project_id": project, "user_id": "u", "agent_id": "a",
        "timestamp": from_micros(NOW + offset),
    }  # fmt: skip
    if api:
        return APIRequestPayEvent(**common, api_calls=number % 3 + 1, unit_price=amount)
    return InstantPayEvent(**common, amount=amount)


TIMEFRAMES = ("all", "1 hours", "24 hours", "7 days", "30 days")


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(specs=st.lists(event_strategy, max_size=30))
def test_stats_from_the_rollup_equal_the_events_sums(ledger: Ledger, specs: list[Any]) -> None:
    with ledger.writing() as connection:
        for table in (events_table, *rollup_metadata.sorted_tables):
            connection.execute(table.delete())
    ledger.ensure_project("q", "Q")
    ledger.record_events([make(spec) for spec in specs])
    for timeframe in TIMEFRAMES:
        ledger.use_rollups = False
        from_events = ledger.stats("p", timeframe)
        ledger.use_rollups = True
        assert ledger.stats("p", timeframe) == from_events


def test_an_event_stamped_after_now_waits_for_its_time(ledger: Ledger) -> None:
    def event(number: int, offset: int) -> MeterEvent:
        return InstantPayEvent(
            id=f"e{number}", project_id="p", user_id="u", agent_id="a",
            timestamp=from_micros(NOW + offset), amount=Decimal("0.1"),
        )  # fmt: skip

    ledger.record_events([event(1, 0), event(2, 1), event(3, -HOUR), event(4, 2 * HOUR)])
    stats = ledger.stats("p", "all")
    assert (stats.total_events, stats.total_cost) == (2, Decimal("0.2"))
    stats = ledger.stats("p", "1 hours")  # from exactly an hour ago: e3 is in
    assert (stats.total_events, stats.total_cost) == (2, Decimal("0.2"))
