"""Reports read from the rollups equal the same reports summed from the events,
to the last digit: random events, duplicates, any range, SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agentmeter.core.wire import ReportQuery, SummaryQuery
from agentmeter.ledger import Ledger
from agentmeter.ledger.rollup_schema import ROLLUPS, rollup_metadata
from agentmeter.ledger.schema import events as events_table
from agentmeter.models import APIRequestPayEvent, InstantPayEvent, MeterEvent

BASE = datetime(2026, 3, 1, tzinfo=timezone.utc)


@pytest.fixture
def ledger(project_ledger: Ledger) -> Ledger:
    return project_ledger  # tests/conftest.py: SQLite and PostgreSQL


event_strategy = st.tuples(
    st.integers(min_value=0, max_value=20),  # id: repeats are duplicates
    st.sampled_from(["alice", "bob", "carol"]),
    st.sampled_from(["a1", "a2"]),
    st.sampled_from([None, "", "gpt-4o", "claude"]),
    st.integers(min_value=-2 * 3600, max_value=5 * 24 * 3600),  # seconds after BASE
    st.decimals(min_value=0, max_value=100, places=10, allow_nan=False, allow_infinity=False),
    st.booleans(),
)


def make(spec: tuple[Any, ...]) -> MeterEvent:
    number, user, agent, model, seconds, amount, api = spec
    common: dict[str, Any] = {
        # A second project, for the reports across projects (issue 18).
        "id": f"e{number}", "project_id": "q" if number % 4 == 3 else "p",
        "user_id": user, "agent_id": agent,
        "timestamp": BASE + timedelta(seconds=seconds),
        "metadata": {} if model is None else {"model": model},
    }  # fmt: skip
    if api:
        return APIRequestPayEvent(**common, api_calls=number % 4 + 1, unit_price=amount)
    return InstantPayEvent(**common, amount=amount)


def reports(ledger: Ledger, start: datetime | None, end: datetime | None) -> list[Any]:
    answers: list[Any] = []
    for granularity in ("hour", "day", "month"):
        for group_by in ([], ["model"], ["agent"], ["user"]):
            for filters in ({}, {"user_id": "alice"}, {"agent_id": "a2"}):
                query = ReportQuery(
                    project_id="p", granularity=granularity, group_by=group_by,
                    start_date=start, end_date=end, **filters,
                )  # fmt: skip
                answers.append(ledger.report(query))
                if granularity == "day" and group_by:
                    answers.append(ledger.breakdown(query, limit=100))
    answers.append(ledger.stats("p", "all"))
    for granularity in ("hour", "day", "month"):  # every project (issue 18)
        for group_by in ([], ["user"], ["model"]):
            query = ReportQuery(
                all_projects=True, granularity=granularity, group_by=group_by,
                start_date=start, end_date=end,
            )  # fmt: skip
            answers.append(ledger.report(query))
    for across in (False, True):  # the usage summary (issue 20)
        for user in (None, "bob"):
            summary = SummaryQuery(
                project_id="p", all_projects=across or None, start_date=start, end_date=end,
                user_id=user,
            )  # fmt: skip
            answers.append(ledger.usage_summary(summary))
    answers.append(ledger.all_project_stats("all"))
    return answers


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    specs=st.lists(event_strategy, max_size=30),
    start=st.none() | st.integers(min_value=-3 * 3600, max_value=3 * 24 * 3600),
    length=st.none() | st.integers(min_value=0, max_value=4 * 24 * 3600),
)
def test_rollups_answer_exactly_as_the_events_do(
    ledger: Ledger, specs: list[Any], start: int | None, length: int | None
) -> None:
    with ledger.writing() as connection:
        for table in (events_table, *rollup_metadata.sorted_tables):
            connection.execute(table.delete())
    ledger.ensure_project("q", "Q")
    batch = [make(spec) for spec in specs]
    for half in (batch[: len(batch) // 2], batch[len(batch) // 2 :], batch):  # resends too
        ledger.record_events(half)
    begin = None if start is None else BASE + timedelta(seconds=start)
    finish = None if begin is None or length is None else begin + timedelta(seconds=length)
    ledger.use_rollups = False
    from_events = reports(ledger, begin, finish)
    ledger.use_rollups = True
    assert reports(ledger, begin, finish) == from_events


def test_the_rollups_hold_each_new_event_once(ledger: Ledger) -> None:
    event = InstantPayEvent(project_id="p", user_id="u", agent_id="a", amount=Decimal("1.5"))
    ledger.record_events([event, event])
    ledger.record_events([event])
    with ledger.reading() as connection:
        for rollup in ROLLUPS:
            (row,) = connection.execute(rollup.table.select()).all()
            assert (row.events, row.cost) == (1, Decimal("1.5"))
