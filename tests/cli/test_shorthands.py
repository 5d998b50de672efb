"""Issue 20: ``--month``, ``--hour`` and ``--days`` mean the same as the explicit
``--since``/``--until`` they stand for, in every command that takes those."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import click
import pytest

from agentmeter.cli.windows import next_month, shorthand_window
from agentmeter.models import InstantPayEvent

MONTHS = [
    ("2025-01", "2025-01-01", "2025-02-01"),
    ("2025-02", "2025-02-01", "2025-03-01"),
    ("2025-03", "2025-03-01", "2025-04-01"),
]


def without_clock(document: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in document.items() if key != "generated_at"}


@pytest.mark.parametrize(("month", "since", "until"), MONTHS)
def test_report_month_is_the_explicit_range(seeded, am, month, since, until):
    common = ["report", *seeded.flags, "--group-by", "user", "--format", "json"]
    short = am(*common, "--month", month)
    explicit = am(*common, "--since", since, "--until", until)
    assert short.exit_code == 0, short.output
    assert without_clock(json.loads(short.stdout)) == without_clock(json.loads(explicit.stdout))
    assert json.loads(short.stdout)["rows"], "the seeded months have events"


def test_report_hour_is_the_explicit_range(seeded, am, oracle):
    common = ["report", *seeded.flags, "--granularity", "hour", "--format", "csv"]
    start = datetime(2025, 1, 31, 23, tzinfo=timezone.utc)  # an edge event lies in it
    short = am(*common, "--hour", "2025-01-31T23")
    explicit = am(*common, "--since", "2025-01-31T23:00:00Z", "--until", "2025-02-01T00:00:00Z")
    assert short.exit_code == 0, short.output
    assert short.stdout == explicit.stdout
    count = len(oracle.select(since=start, until=start + timedelta(hours=1)))
    assert count >= 1
    assert sum(int(line.split(",")[1]) for line in short.stdout.splitlines()[1:]) == count


def test_events_and_prices_missing_take_a_month(seeded, am):
    common = ["events", *seeded.flags, "--all", "--format", "json"]
    short = am(*common, "--month", "2025-02")
    explicit = am(*common, "--since", "2025-02-01", "--until", "2025-03-01")
    assert short.exit_code == 0, short.output
    assert json.loads(short.stdout)["events"] == json.loads(explicit.stdout)["events"]
    missing = ["prices", "missing", *seeded.flags, "--format", "json"]
    assert (
        am(*missing, "--month", "2025-02").stdout
        == am(*missing, "--since", "2025-02-01", "--until", "2025-03-01").stdout
    )


def test_billing_create_month_bills_the_same_period(target, am):
    moments = [datetime(2025, 1, 31, 23, 59, tzinfo=timezone.utc),
               datetime(2025, 2, 1, tzinfo=timezone.utc),
               datetime(2025, 2, 28, 23, 59, 59, tzinfo=timezone.utc),
               datetime(2025, 3, 1, tzinfo=timezone.utc)]  # fmt: skip
    target.client.record_events(
        [InstantPayEvent(id=f"b{n}", project_id=target.project_id, agent_id="a", user_id="u",
                         amount="1.005", timestamp=moment) for n, moment in enumerate(moments)]
    )  # fmt: skip
    common = ["billing", "create", *target.flags, "--format", "json"]
    short = json.loads(am(*common, "--month", "2025-02").stdout)
    explicit = json.loads(am(*common, "--since", "2025-02-01", "--until", "2025-03-01").stdout)
    for field in ("period_start", "period_end", "amount"):
        assert short[field] == explicit[field]
    assert Decimal(short["amount"]) == Decimal("2.01")  # 2 x 1.005, rounded once, half-even


def test_days_is_the_last_n_days(target, am):
    now = datetime.now(timezone.utc)
    target.client.record_events(
        [InstantPayEvent(id=f"d{days}", project_id=target.project_id, agent_id="a", user_id="u",
                         amount=f"{days}.5", timestamp=now - timedelta(days=days, minutes=1))
         for days in (0, 2, 6, 9)]
    )  # fmt: skip
    for command in (["report", "--granularity", "month"], ["summary"]):
        short = json.loads(am(*command, *target.flags, "--days", "7", "--format", "json").stdout)
        explicit = json.loads(
            am(*command, *target.flags, "--since", "7d", "--format", "json").stdout
        )
        assert short["totals"] == explicit["totals"]
        assert Decimal(short["totals"]["cost"]) == Decimal("0.5") + Decimal("2.5") + Decimal("6.5")
    stats = json.loads(am("stats", *target.flags, "--days", "7", "--format", "json").stdout)
    explicit = am("stats", *target.flags, "--timeframe", "7 days", "--format", "json").stdout
    assert without_clock(stats) == without_clock(json.loads(explicit))
    assert stats["events"] == 3


@pytest.mark.parametrize(
    "flags",
    [
        ["--month", "2025-01", "--since", "2025-01-01"],
        ["--hour", "2025-01-01T10", "--until", "2025-02-01"],
        ["--days", "3", "--since", "1d"],
        ["--month", "2025-01", "--days", "3"],
        ["--month", "2025-01", "--hour", "2025-01-01T01"],
    ],
)
@pytest.mark.parametrize("command", [["report"], ["events"], ["summary"], ["billing", "create"]])
def test_a_shorthand_with_since_or_another_is_a_usage_error(target, am, error_line, flags, command):
    result = am(*command, *target.flags, *flags)
    assert result.exit_code == 2, result.output
    line = error_line(result)
    assert "not both" in line or "one or the other" in line


@pytest.mark.parametrize(
    ("flag", "value"),
    [("--month", "2025-13"), ("--month", "2025-1"), ("--month", "January"),
     ("--hour", "2025-03-01T24"), ("--hour", "2025-03-01"), ("--hour", "2025-02-30T10"),
     ("--days", "0"), ("--days", "-1"), ("--days", "x")],
)  # fmt: skip
def test_a_malformed_shorthand_is_a_usage_error(target, am, error_line, flag, value):
    result = am("report", *target.flags, flag, value)
    assert result.exit_code == 2, result.output
    assert flag in error_line(result)


def test_billing_create_still_needs_a_period(target, am, error_line):
    result = am("billing", "create", *target.flags, "--since", "2025-01-01")
    assert result.exit_code == 2
    assert "--month" in error_line(result)


def test_stats_days_and_timeframe_together_is_a_usage_error(target, am, error_line):
    result = am("stats", *target.flags, "--days", "3", "--timeframe", "7 days")
    assert result.exit_code == 2
    assert "--days" in error_line(result)


def test_windows_in_utc() -> None:
    december = datetime(2024, 12, 1, tzinfo=timezone.utc)
    assert next_month(december) == datetime(2025, 1, 1, tzinfo=timezone.utc)
    assert shorthand_window(december, None, None) == (december, next_month(december))
    hour = datetime(2025, 3, 1, 23, tzinfo=timezone.utc)
    assert shorthand_window(None, hour, None) == (hour, datetime(2025, 3, 2, tzinfo=timezone.utc))
    now = datetime(2025, 3, 10, 12, tzinfo=timezone.utc)
    assert shorthand_window(None, None, 3, now) == (now - timedelta(days=3), None)
    assert shorthand_window(None, None, None) is None
    with pytest.raises(click.UsageError):
        shorthand_window(december, hour, None)
