"""The driver-only reader (ledger/fast_reports.py) answers exactly as the ledger's
full query path does, row for row and digit for digit, on SQLite and PostgreSQL;
and says None (the full path answers) to whatever it does not read."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import update

from agentmeter.core.wire import ReportQuery
from agentmeter.ledger import Ledger
from agentmeter.ledger.base import now_micros
from agentmeter.ledger.fast_reports import RolledRow, RollupReader, _report_sql, _Statement
from agentmeter.ledger.micros import to_micros
from agentmeter.ledger.rollup_layout import choose_layout
from agentmeter.ledger.rollup_schema import rollup_metadata
from agentmeter.ledger.schema import events as events_table
from agentmeter.ledger.schema import schema_version
from agentmeter.models import APIRequestPayEvent, InstantPayEvent, MeterEvent, TokenBasedPayEvent

BASE = datetime(2026, 3, 1, tzinfo=timezone.utc)
# Case and accents: PostgreSQL orders them by its collation, SQLite by code point.
USERS = ["alice", "Bob", "bob", "\u00c9mile", "emile", "zo\u00eb"]
FIELDS = ("period", "project_id", "user_id", "agent_id", "payment_type", "model")
FIELDS += ("events", "api_calls", "tokens_in", "tokens_out")


@pytest.fixture
def ledger(project_ledger: Ledger) -> Ledger:
    return project_ledger  # tests/conftest.py: SQLite and PostgreSQL


@pytest.fixture
def reader(ledger: Ledger) -> Iterator[RollupReader]:
    opened = RollupReader.open(ledger.url, "p")
    assert opened is not None
    yield opened
    opened.close()


event_strategy = st.tuples(
    st.integers(min_value=0, max_value=25),  # id: repeats are duplicates
    st.sampled_from(USERS),
    st.sampled_from(["a1", "a2", "A1"]),
    st.sampled_from([None, "", "gpt-4o", "claude"]),
    st.integers(min_value=-2 * 3600, max_value=5 * 24 * 3600),  # seconds after BASE
    st.decimals(min_value=0, max_value=100, places=10, allow_nan=False, allow_infinity=False),
    st.sampled_from(["api", "token", "instant"]),
)


def make(spec: tuple[Any, ...]) -> MeterEvent:
    number, user, agent, model, seconds, amount, kind = spec
    common: dict[str, Any] = {
        "id": f"e{number}", "project_id": "q" if number % 5 == 4 else "p",
        "user_id": user, "agent_id": agent,
        "timestamp": BASE + timedelta(seconds=seconds),
        "metadata": {} if model is None else {"model": model},
    }  # fmt: skip
    if kind == "api":
        return APIRequestPayEvent(**common, api_calls=number % 4 + 1, unit_price=amount)
    if kind == "token":
        return TokenBasedPayEvent(
            **common, tokens_in=number * 7, tokens_out=number * 3,
            input_token_price=amount, output_token_price="0.000015",
        )  # fmt: skip
    return InstantPayEvent(**common, amount=amount)


def shown(row: Any) -> tuple[Any, ...]:
    """A row as the CLI shows it: every field, the cost as its exact text."""
    return (*(getattr(row, name) for name in FIELDS), str(row.cost))


ASKS = [
    (granularity, groups, filters)
    for granularity in ("hour", "day", "month")
    for groups in ([], ["model"], ["agent"], ["user"], ["agent", "user"], ["payment_type"])
    for filters in ({}, {"user_id": "bob"}, {"agent_id": "a2", "user_id": "alice"})
] + [
    ("hour", ["user", "model", "payment_type", "agent"], {"agent_id": "A1"}),
    ("hour", ["user", "agent"], {}),  # the agent and user rollup, read in another order
]


def compare_every_report(
    ledger: Ledger, reader: RollupReader, start: datetime | None, end: datetime | None
) -> None:
    for granularity, groups, filters in ASKS:
        fast = reader.report(granularity, groups, start, end, **filters)
        assert fast is not None
        query = ReportQuery(
            project_id="p", granularity=granularity, group_by=groups,
            start_date=start, end_date=end, **filters,
        )  # fmt: skip
        full = ledger.report(query)
        assert [shown(row) for row in fast] == [shown(row) for row in full], (granularity, groups)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    specs=st.lists(event_strategy, max_size=40),
    start=st.none() | st.integers(min_value=-3 * 3600, max_value=3 * 24 * 3600),
    length=st.none() | st.integers(min_value=0, max_value=4 * 24 * 3600),
)
def test_every_report_equals_the_full_paths(
    ledger: Ledger, reader: RollupReader, specs: list[Any], start: int | None, length: int | None
) -> None:
    with ledger.writing() as connection:
        for table in (events_table, *rollup_metadata.sorted_tables):
            connection.execute(table.delete())
    batch = [make(spec) for spec in specs]
    for half in (batch[: len(batch) // 2], batch):  # resends change nothing
        ledger.record_events(half)
    begin = None if start is None else BASE + timedelta(seconds=start)
    finish = None if length is None else (begin or BASE) + timedelta(seconds=length)
    compare_every_report(ledger, reader, begin, finish)
    for timeframe in ("all", " 400 days ", "2h"):
        now = now_micros()
        fast_stats = reader.stats(timeframe, now)
        assert fast_stats is not None
        full_stats = ledger.stats("p", timeframe.strip())
        assert fast_stats.timeframe == full_stats.timeframe
        assert str(fast_stats.total_cost) == str(full_stats.total_cost)
        assert fast_stats.total_events == full_stats.total_events
        assert fast_stats.total_tokens_in == full_stats.total_tokens_in


@pytest.mark.parametrize(
    "hours", [None, (0, 48), (5, 30), (-3, 7), (10, 10)], ids=lambda hours: str(hours)
)
def test_whole_hours_by_agent_and_user_are_the_rollups_rows_as_stored(
    ledger: Ledger, reader: RollupReader, hours: tuple[int, int] | None
) -> None:
    ledger.record_events([
        make((n, ("alice", "bob", "carol")[n % 3], ("a2", "a1")[n % 2], None,
              n * 1500 - 7200, Decimal(n) / 8, ("api", "token", "instant")[n % 3]))
        for n in range(80)
    ])  # fmt: skip
    start, end = (None, None) if hours is None else (BASE + timedelta(hours=h) for h in hours)
    statement = _Statement(ledger.dialect == "postgresql")
    layout = choose_layout(["agent_id", "user_id"], {}, "hour")
    assert layout is not None
    assert layout.name == "usage_hour_agent_user"
    span = (None if start is None else to_micros(start), None if end is None else to_micros(end))
    sql = _report_sql(statement, layout, ["agent_id", "user_id"], "hour", "p", span, {})
    # Whole hours: the rows as stored, no grouping (an empty range takes the events').
    assert ("GROUP BY" in sql) == (hours == (10, 10))
    for groups in (["agent", "user"], ["user", "agent"]):
        fast = reader.report("hour", groups, start, end)
        assert fast is not None
        query = ReportQuery(
            project_id="p", granularity="hour", group_by=groups, start_date=start, end_date=end
        )
        assert [shown(row) for row in fast] == [shown(row) for row in ledger.report(query)]
        assert len(fast) > 1 or hours == (10, 10)


def test_whole_hours_by_all_four_keep_null_models_first(
    ledger: Ledger, reader: RollupReader
) -> None:
    # The detail rollup is not read as stored: its model may be NULL, which
    # PostgreSQL's key order would put last (found by review: it did).
    ledger.record_events([
        make((n, "alice", "a1", model, 600 + n, Decimal("0.5"), "instant"))
        for n, model in enumerate(["gpt-4o", None, "claude", None])
    ])  # fmt: skip
    groups = ["user", "agent", "model", "payment_type"]
    start, end = BASE, BASE + timedelta(hours=2)
    fast = reader.report("hour", groups, start, end)
    assert fast is not None
    query = ReportQuery(
        project_id="p", granularity="hour", group_by=groups, start_date=start, end_date=end
    )
    assert [shown(row) for row in fast] == [shown(row) for row in ledger.report(query)]
    assert [row.model for row in fast] == [None, "claude", "gpt-4o"]


def test_a_report_reads_the_rollup_and_both_partial_ends(ledger: Ledger, reader: RollupReader):
    times = [BASE + timedelta(minutes=minutes) for minutes in (5, 70, 130, 185)]
    ledger.record_events([
        InstantPayEvent(id=f"e{n}", project_id="p", user_id="u", agent_id="a",
                        amount=Decimal("0.1"), timestamp=moment)
        for n, moment in enumerate(times)
    ])  # fmt: skip
    start, end = BASE + timedelta(minutes=30), BASE + timedelta(minutes=150)
    rows = reader.report("hour", [], start, end)
    assert rows == [
        RolledRow(period="2026-03-01T01:00:00Z", events=1, api_calls=0, tokens_in=0,
                  tokens_out=0, cost=Decimal("0.1")),
        RolledRow(period="2026-03-01T02:00:00Z", events=1, api_calls=0, tokens_in=0,
                  tokens_out=0, cost=Decimal("0.1")),
    ]  # fmt: skip


def test_what_it_does_not_read_goes_to_the_full_path(ledger: Ledger, reader: RollupReader):
    assert reader.report("day", ["metadata.provider"], None, None) is None
    assert reader.report("week", [], None, None) is None
    assert reader.report("day", [], None, None, user_id="\u00e9mile") is None  # not plain ASCII
    assert reader.report("day", [], None, None, agent_id="a\x00") is None
    assert reader.stats("a while", now_micros()) is None
    unknown = RollupReader.open(ledger.url, "no-such-project")  # no events, as the full path says
    assert unknown is not None
    assert unknown.report("day", ["user"], None, None) == []
    unknown.close()
    assert RollupReader.open(ledger.url, "p\u00e9") is None
    for url in ("sqlite://", "sqlite:///:memory:", "sqlite:///file:x?mode=memory", "mysql://h/d"):
        assert RollupReader.open(url, "p") is None


def test_a_ledger_at_another_schema_version_goes_to_the_full_path(ledger: Ledger):
    with ledger.writing() as connection:
        connection.execute(update(schema_version).values(version=8))
    try:
        assert RollupReader.open(ledger.url, "p") is None
    finally:
        with ledger.writing() as connection:
            connection.execute(update(schema_version).values(version=9))


def test_a_missing_file_is_not_created(tmp_path: Path):
    missing = tmp_path / "nothing.db"
    assert RollupReader.open(f"sqlite:///{missing}", "p") is None
    assert not missing.exists()


def test_the_reader_loads_no_sqlalchemy_and_no_pydantic():
    script = (
        "import sys, agentmeter.ledger.fast_reports\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('sqlalchemy', 'pydantic')))"
    )
    command = [sys.executable, "-c", script]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_a_stored_sum_no_valid_write_makes_goes_to_the_full_path(
    ledger: Ledger, reader: RollupReader
) -> None:
    ledger.record_events([make((1, "bob", "a1", None, 60, Decimal("1.5"), "instant"))])
    assert reader.report("day", ["user"], None, None) is not None
    detail = rollup_metadata.tables["usage_day_user"]
    with ledger.writing() as connection:
        connection.execute(update(detail).values(cost=Decimal("-1.5")))
    assert reader.report("day", ["user"], None, None) is None  # to_total refuses it there


def test_urls_the_full_path_reads_its_own_way_go_there(ledger: Ledger) -> None:
    upper = ledger.url.replace("sqlite:///", "SQLITE:///").replace("postgresql+", "POSTGRESQL+")
    assert RollupReader.open(upper, "p") is None  # SQLAlchemy refuses the scheme
    if not ledger.url.startswith("postgresql"):
        return
    for query in ("autocommit=false", "host=h1&host=h2", "client_encoding=sql_ascii"):
        # a psycopg argument, SQLAlchemy's multi-host form, text as bytes
        assert RollupReader.open(f"{ledger.url}?{query}", "p") is None, query
    opened = RollupReader.open(f"{ledger.url}?application_name=report", "p")
    assert opened is not None
    opened.close()


def test_a_sqlite_read_leaves_no_files_beside_the_ledger(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    Ledger.open(url).close()
    before = sorted(path.name for path in tmp_path.iterdir())
    opened = RollupReader.open(url, "p")
    assert opened is not None
    assert opened.report("day", [], None, None) == []
    opened.close()
    assert sorted(path.name for path in tmp_path.iterdir()) == before == ["ledger.db"]
