"""The dashboard's figures are the API's figures: random events, every period,
SQLite and PostgreSQL; and the ledger queries behind them (breakdown, event pages)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agentmeter.core.wire import EventQuery, ReportQuery
from agentmeter.ledger import Ledger
from agentmeter.ledger.rollup_schema import rollup_metadata
from agentmeter.ledger.schema import events as events_table
from agentmeter.models import APIRequestPayEvent, InstantPayEvent, MeterEvent
from agentmeter.pricing import money_sum
from agentmeter.server.dashboard import figures
from agentmeter.server.dashboard.periods import PRESETS, period_of

NOW = datetime.now(timezone.utc)
USERS = ["alice", "bob", "carol", "50%_off", "o'brien"]
AGENTS = ["support", "search", None]


@pytest.fixture
def ledger(project_ledger: Ledger) -> Ledger:
    return project_ledger  # tests/conftest.py: SQLite and PostgreSQL


def instant(index: int, user: str, agent: str | None, hours_ago: float, amount: str) -> MeterEvent:
    return InstantPayEvent(
        id=f"e{index}", project_id="p", user_id=user, agent_id=agent or "none",
        timestamp=NOW - timedelta(hours=hours_ago), amount=Decimal(amount),
        metadata={"model": f"m{index % 3}"},
    )  # fmt: skip


events_strategy = st.lists(
    st.tuples(
        st.sampled_from(USERS),
        st.sampled_from(AGENTS),
        st.floats(min_value=0.01, max_value=24 * 45, allow_nan=False),
        st.decimals(min_value=0, max_value=1000, places=9, allow_nan=False, allow_infinity=False),
    ),
    max_size=40,
)


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(events=events_strategy)
def test_the_overview_equals_stats_and_reports(ledger: Ledger, events: list[Any]) -> None:
    with ledger.writing() as connection:  # a fresh project for each example
        for table in (events_table, *rollup_metadata.sorted_tables):
            connection.execute(table.delete())
    batch = [instant(i, u, a, h, str(amount)) for i, (u, a, h, amount) in enumerate(events)]
    ledger.record_events(batch)
    for name, (_, length, _) in PRESETS.items():
        period = period_of({"period": name})
        data = figures.overview(ledger, "p", period)
        stats = ledger.stats("p", f"{length.days or 1} {'days' if length.days else 'day'}")
        assert (data.totals.cost, data.totals.events) == (stats.total_cost, stats.total_events)
        inside = [e for e in batch if period.start <= e.timestamp < period.end]
        assert data.active_users == len({e.user_id for e in inside})
        assert money_sum(s.sums.cost for s in data.by_agent) == data.totals.cost
        assert money_sum(s.sums.cost for s in data.by_model) == data.totals.cost
        assert sum(sums.events for _, sums in data.series) == data.totals.events
        costs = [share.sums.cost for share in data.top_users]
        assert costs == sorted(costs, reverse=True)


def test_breakdown_searches_literally_pages_and_counts(ledger: Ledger) -> None:
    ledger.record_events([instant(i, user, "a", 1, str(i + 1)) for i, user in enumerate(USERS)])
    query = ReportQuery(project_id="p", granularity="day", group_by=["user"])
    rows, groups = ledger.breakdown(query, limit=2)
    assert groups == 5
    assert [row.user_id for row in rows] == ["o'brien", "50%_off"]  # costliest first
    rows, groups = ledger.breakdown(query, contains="%_", limit=10)
    assert ([row.user_id for row in rows], groups) == (["50%_off"], 1)  # % and _ are text
    rows, _ = ledger.breakdown(query, limit=2, offset=4)
    assert [row.user_id for row in rows] == ["alice"]
    assert ledger.breakdown(query, contains="nobody") == ([], 0)


def test_event_pages_walk_every_event_once_even_when_times_tie(ledger: Ledger) -> None:
    same_time = NOW - timedelta(minutes=5)
    batch: list[MeterEvent] = [
        APIRequestPayEvent(
            id=f"t{i:03d}", project_id="p", user_id="u", agent_id="a", timestamp=same_time,
            api_calls=1, unit_price=Decimal("0.01"),
        )
        for i in range(25)
    ]  # fmt: skip
    ledger.record_events(batch)
    pages = list(ledger.event_pages(EventQuery(project_id="p", user_id="u"), page_size=7))
    assert [len(page) for page in pages] == [7, 7, 7, 4]
    ids = [event["id"] for page in pages for event in page]
    assert ids == sorted({event.id for event in batch}, reverse=True)
