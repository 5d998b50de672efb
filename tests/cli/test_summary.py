"""Issue 20: ``agentmeter summary``: every figure checked against the seeded events,
on a server (SQLite and PostgreSQL) and the embedded ledger."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timezone
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import pytest

from agentmeter.core.jsonio import format_time
from agentmeter.pricing import MONEY_CONTEXT

RANGE = ["--since", "2025-01-01", "--until", "2025-04-01"]
FEBRUARY = (datetime(2025, 2, 1, tzinfo=timezone.utc), datetime(2025, 3, 1, tzinfo=timezone.utc))


def per_user(events: list[Any]) -> dict[str, dict[str, Any]]:
    rows: dict[str, dict[str, Any]] = {}
    for event in events:
        row = rows.setdefault(event.user_id, {
            "events": 0, "api_calls": 0, "tokens_in": 0, "tokens_out": 0, "cost": Decimal(0),
            "first": event.timestamp, "last": event.timestamp,
        })  # fmt: skip
        row["events"] += 1
        row["api_calls"] += int(event.get("api_calls") or 0)
        row["tokens_in"] += int(event.get("tokens_in") or 0)
        row["tokens_out"] += int(event.get("tokens_out") or 0)
        row["cost"] = MONEY_CONTEXT.add(row["cost"], event.total_cost)
        row["first"] = min(row["first"], event.timestamp)
        row["last"] = max(row["last"], event.timestamp)
    return rows


@pytest.mark.parametrize("window", [RANGE, ["--month", "2025-02"]])
def test_json_figures_are_the_events(seeded, oracle, am, window):
    result = am("summary", *seeded.flags, *window, "--format", "json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    since, until = (None, None) if window == RANGE else FEBRUARY
    events = oracle.select(since=since, until=until)
    want = per_user(events)
    assert [row["user_id"] for row in document["rows"]] == sorted(want)
    for row in document["rows"]:
        expected = want[row["user_id"]]
        assert row["events"] == expected["events"]
        assert row["api_calls"] == expected["api_calls"]
        assert (row["tokens_in"], row["tokens_out"]) == (
            expected["tokens_in"],
            expected["tokens_out"],
        )
        assert row["total_tokens"] == expected["tokens_in"] + expected["tokens_out"]
        assert Decimal(row["cost"]) == expected["cost"]
        assert row["first_event"] == format_time(expected["first"])
        assert row["last_event"] == format_time(expected["last"])
    totals = document["totals"]
    assert totals["events"] == len(events)
    total_cost = oracle.total_cost(since=since, until=until)
    assert Decimal(totals["cost"]) == total_cost
    assert totals["first_event"] == format_time(min(e.timestamp for e in events))
    assert totals["last_event"] == format_time(max(e.timestamp for e in events))
    figures = document["figures"]
    assert figures["users"] == len(want)
    average = (total_cost / len(want)).quantize(Decimal("1e-8"), ROUND_HALF_EVEN)
    assert Decimal(figures["average_cost"]) == average
    top = min(want, key=lambda user: (-want[user]["cost"], user))
    assert figures["top_by_cost"] == top
    tokens = {user: row["tokens_in"] + row["tokens_out"] for user, row in want.items()}
    assert figures["top_by_tokens"] == min(tokens, key=lambda user: (-tokens[user], user))
    assert set(document) == {"generated_at", "query", "rows", "totals", "figures"}


def test_table_has_totals_averages_and_top_users(seeded, oracle, am):
    result = am("summary", *seeded.flags, *RANGE)
    assert result.exit_code == 0, result.output
    text = result.stdout
    want = per_user(oracle.events)
    total = oracle.total_cost()
    total_line = next(line for line in text.splitlines() if line.strip().startswith("Total"))
    assert f"{total.normalize():,f}" in total_line
    assert f"{len(oracle.events):,}" in total_line
    top = min(want, key=lambda user: (-want[user]["cost"], user))
    assert f"Top user by cost: {top} (" in text
    assert f"{len(want)} users; per user: cost " in text
    assert "Times in UTC" in text


def test_csv_rows_and_one_user(seeded, oracle, am):
    result = am("summary", *seeded.flags, *RANGE, "--user", "carol", "--format", "csv")
    assert result.exit_code == 0, result.output
    (record,) = csv.DictReader(io.StringIO(result.stdout))
    carol = per_user(oracle.select(user="carol"))["carol"]
    assert record["user_id"] == "carol"
    assert Decimal(record["cost"]) == carol["cost"]
    assert int(record["total_tokens"]) == carol["tokens_in"] + carol["tokens_out"]
    assert record["first_event"] == format_time(carol["first"])


def test_an_empty_range_has_no_rows(seeded, am):
    result = am("summary", *seeded.flags, "--month", "2024-06", "--format", "json")
    document = json.loads(result.stdout)
    assert document["rows"] == []
    assert document["totals"]["cost"] == "0"
    assert document["figures"]["top_by_cost"] is None
    table = am("summary", *seeded.flags, "--month", "2024-06")
    assert table.exit_code == 0, table.output
    assert "0 users" in table.stdout


def test_a_project_key_cannot_summarize_every_project(target, am, error_line):
    if target.mode == "embedded":
        pytest.skip("the embedded ledger has no keys")
    for command in (["summary"], ["report"], ["stats"]):
        result = am(*command, *target.flags, "--all-projects")
        assert result.exit_code == 1, result.output
        assert "admin" in error_line(result)
