"""Reports read from the rollups equal the same reports summed from the events,
to the last digit: random events, duplicates, any range, SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Table, func, select, update

from agentmeter.core.wire import ReportQuery, SummaryQuery
from agentmeter.ledger import Ledger
from agentmeter.ledger.rollup_layout import LAYOUTS
from agentmeter.ledger.rollup_schema import AGENT_USER, DETAIL, ROLLUPS, rollup_metadata
from agentmeter.ledger.rollups import choose
from agentmeter.ledger.schema import events as events_table
from agentmeter.ledger.schema import schema_version
from agentmeter.models import APIRequestPayEvent, InstantPayEvent, MeterEvent, TokenBasedPayEvent

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
    # Two or more dimensions at once: the agent and user rollup (schema 10), the detail (9).
    for granularity in ("hour", "day"):
        for group_by in (["payment_type"], ["agent", "user"], ["user", "model", "payment_type"]):
            for filters in ({}, {"user_id": "bob", "agent_id": "a1"}):
                query = ReportQuery(
                    project_id="p", granularity=granularity, group_by=group_by,
                    start_date=start, end_date=end, **filters,
                )  # fmt: skip
                answers.append(ledger.report(query))
    answers.append(ledger.stats("p", "all"))
    billed_from = start or BASE - timedelta(days=1)  # a billing record's amount
    answers.append(ledger.period_cost("p", billed_from, end or BASE + timedelta(days=9)))
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


def test_the_planner_picks_the_smallest_table_that_answers() -> None:
    names = {
        (("agent_id", "user_id"), "hour"): "usage_hour_agent_user",
        (("user_id",), "hour"): "usage_hour_agent_user",  # the user table is per day
        (("agent_id",), "day"): "usage_hour_agent",
        (("agent_id", "model"), "day"): "usage_hour_detail",
        (("user_id",), "day"): "usage_day_user",
        (("payment_type",), "month"): "usage_hour_detail",
        ((), "month"): "usage_hour_model",
    }
    for (keys, granularity), name in names.items():
        rollup = choose(list(keys), {}, granularity)
        assert rollup is not None
        assert rollup.table.name == name
    assert choose(["model"], {"user_id": "u"}, "day") is DETAIL
    assert choose(["model"], {"user_id": None}, "day") is ROLLUPS[0]


def test_the_layouts_and_tables_agree_on_each_key() -> None:
    # The driver-only reader reads a layout keyed by its values as stored: its
    # table must have no digest column and no nullable key column.
    for layout, rollup in zip(LAYOUTS, ROLLUPS, strict=True):
        assert (layout.name, layout.grain, layout.columns) == (
            rollup.table.name, rollup.grain, rollup.columns,
        )  # fmt: skip
        plain_key = len(layout.columns) > 1 and not rollup.digested
        assert layout.keyed_by_values == plain_key
        if plain_key:
            assert all(not rollup.table.c[name].nullable for name in layout.columns)
            assert set(layout.columns) <= {column.name for column in rollup.table.primary_key}


def test_the_longest_identifiers_fit_the_detail_rollup(ledger: Ledger) -> None:
    # Four long values of 4-byte characters would not fit one PostgreSQL index
    # entry as a key; the detail table's key is their digest.
    # Distinct characters: PostgreSQL would compress a repeated one in the index.
    user_id = "".join(chr(0x1F300 + n) for n in range(256))
    agent_id = "".join(chr(0x1F400 + n * 3 % 256) for n in range(256))
    event = TokenBasedPayEvent(
        project_id="p", user_id=user_id, agent_id=agent_id,
        tokens_in=10, tokens_out=5, input_token_price="0.1", output_token_price="0.2",
        metadata={"model": "\U0001f916" * 200},
    )  # fmt: skip
    ledger.record_events([event])
    query = ReportQuery(project_id="p", granularity="hour", group_by=["agent", "user", "model"])
    (row,) = ledger.report(query)
    assert (row.user_id, row.model, row.cost) == (event.user_id, "\U0001f916" * 200, 2)
    # The agent and user rollup keys by the two values themselves: they fit.
    query = ReportQuery(project_id="p", granularity="hour", group_by=["agent", "user"])
    (row,) = ledger.report(query)
    assert (row.agent_id, row.user_id, row.cost) == (event.agent_id, event.user_id, 2)


def reopened_from(ledger: Ledger, version: int, *later_tables: Table) -> Ledger:
    """``ledger`` taken back to schema ``version`` (the tables of later versions
    dropped), closed, and opened again: the upgrade steps run."""
    url = ledger.engine.url.render_as_string(hide_password=False)
    with ledger.writing() as connection:
        for table in later_tables:
            table.drop(connection)
        connection.execute(update(schema_version).values(version=version))
    ledger.close()
    return Ledger.open(url)


def test_a_version_8_ledger_gains_the_detail_rollup_from_its_events(tmp_path: Path) -> None:
    ledger = Ledger.open(f"sqlite:///{tmp_path / 'v8.db'}")
    ledger.record_events([make((n, "alice", "a1", "gpt-4o", n * 600, Decimal("0.1"), True))
                          for n in range(12)])  # fmt: skip
    query = ReportQuery(project_id="p", granularity="hour", group_by=["agent", "user"])
    expected = ledger.report(query)
    again = reopened_from(ledger, 8, DETAIL.table, AGENT_USER.table)
    try:
        assert again.report(query) == expected
        assert again.check_rollups().differences == []
        with again.reading() as connection:
            assert connection.execute(select(func.sum(DETAIL.table.c.events))).scalar_one() == 12
    finally:
        again.close()


def test_a_version_9_ledger_gains_the_agent_user_rollup_from_its_events(ledger: Ledger) -> None:
    ledger.record_events([make((n, f"user-{n % 3}", f"a{n % 2}", "gpt-4o", n * 600,
                                Decimal("0.1"), True)) for n in range(12)])  # fmt: skip
    query = ReportQuery(project_id="p", granularity="hour", group_by=["agent", "user"])
    expected = ledger.report(query)
    again = reopened_from(ledger, 9, AGENT_USER.table)
    try:
        assert again.report(query) == expected
        assert again.check_rollups().differences == []
        with again.reading() as connection:
            stored = connection.execute(select(func.sum(AGENT_USER.table.c.events))).scalar_one()
            assert stored == 12
            assert connection.execute(select(schema_version.c.version)).scalar_one() == 10
    finally:
        again.close()


def test_a_batch_of_thousands_of_users_fits_postgresqls_parameter_limit(ledger: Ledger) -> None:
    # 6,000 users in one hour: 6,000 rows in each per-user rollup and 6,000
    # meters, more parameters than one PostgreSQL statement takes (65,535; a
    # detail row has 12). It failed whole before (found by review).
    batch = [
        InstantPayEvent(project_id="p", user_id=f"u{n}", agent_id="a", amount="0.25",
                        timestamp=BASE + timedelta(seconds=n % 3000))
        for n in range(6000)
    ]  # fmt: skip
    ledger.record_events(batch)
    ledger.record_events(batch[:10])  # resends add nothing
    assert ledger.check_rollups().differences == []
    query = ReportQuery(project_id="p", granularity="hour", group_by=["agent", "user"])
    rows = ledger.report(query)
    assert len(rows) == 6000
    assert sum(row.cost for row in rows) == 1500
    meter = ledger.get_meter("p", "u5999")
    assert meter is not None
    assert meter.current_usage == Decimal("0.25")
