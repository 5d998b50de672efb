"""``agentmeter stats`` and ``agentmeter events`` (listing and long exports)."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timezone
from decimal import Decimal

import pytest


def test_stats_all_time(am, seeded, oracle):
    done = am("stats", *seeded.flags, "--timeframe", "all", "--format", "json")
    assert done.exit_code == 0, done.stderr
    stats = json.loads(done.stdout)
    assert stats["events"] == len(oracle.events)
    assert Decimal(stats["cost"]) == oracle.total_cost()
    assert stats["api_calls"] == sum(int(e.get("api_calls") or 0) for e in oracle.events)
    assert stats["tokens_in"] == sum(int(e.get("tokens_in") or 0) for e in oracle.events)
    assert stats["project_id"] == seeded.project_id


def test_stats_table_and_csv(am, seeded, oracle):
    table = am("stats", *seeded.flags, "--timeframe", "all")
    assert table.exit_code == 0, table.stderr
    assert f"{len(oracle.events):,}" in table.stdout
    assert f"{oracle.total_cost():,f}" in table.stdout
    rows = list(csv.reader(io.StringIO(am("stats", *seeded.flags, "--timeframe", "all",
                                           "--format", "csv").stdout)))  # fmt: skip
    assert rows[0] == ["timeframe", "events", "api_calls", "tokens_in", "tokens_out", "cost"]
    assert Decimal(rows[1][5]) == oracle.total_cost()


def test_stats_of_a_recent_timeframe(am, seeded):
    # Every seeded event is from 2025, long before the last 7 days.
    done = am("stats", *seeded.flags, "--timeframe", "7 days", "--format", "csv")
    assert done.stdout.splitlines()[1] == "7 days,0,0,0,0,0"


def test_stats_bad_timeframe_is_a_usage_error(am, seeded, error_line):
    done = am("stats", *seeded.flags, "--timeframe", "a fortnight")
    assert done.exit_code == 2
    assert "timeframe" in error_line(done)


def newest(oracle, count, **filters):
    chosen = sorted(oracle.select(**filters), key=lambda e: (e.timestamp, e.id), reverse=True)
    return chosen[:count]


def test_events_table_newest_first(am, seeded, oracle):
    done = am("events", *seeded.flags, "--limit", "5")
    assert done.exit_code == 0, done.stderr
    ids = [line.split()[1] for line in done.stdout.splitlines()[2:7]]
    assert ids == [event.id for event in newest(oracle, 5)]
    assert done.stdout.strip().endswith("5 events, newest first")


def test_events_csv_export_of_everything_crosses_pages(am, seeded, oracle, tmp_path):
    path = tmp_path / "events.csv"
    done = am("events", *seeded.flags, "--all", "--format", "csv", "-o", path)
    assert done.exit_code == 0, done.stderr
    assert f"{len(oracle.events):,} events written" in done.stderr
    with path.open(newline="") as stream:
        rows = list(csv.DictReader(stream))
    assert len(rows) == len(oracle.events) > 2000  # three pages of at most 1,000
    assert len({row["id"] for row in rows}) == len(rows)
    assert sum(Decimal(row["total_cost"]) for row in rows) == oracle.total_cost()
    by_id = {event.id: event for event in oracle.events}
    for row in rows[:50]:
        event = by_id[row["id"]]
        assert Decimal(row["total_cost"]) == event.total_cost
        assert row["user_id"] == event.user_id
        assert json.loads(row["metadata"]) == event.metadata


def test_events_json_export_streams_a_valid_document(am, seeded, oracle):
    done = am("events", *seeded.flags, "--limit", "1500", "--format", "json")
    assert done.exit_code == 0, done.stderr
    document = json.loads(done.stdout)
    assert document["count"] == len(document["events"]) == 1500
    assert [e["id"] for e in document["events"]] == [e.id for e in newest(oracle, 1500)]
    assert document["query"]["limit"] == 1500
    assert document["generated_at"].endswith("Z")


def test_events_json_of_nothing(am, seeded):
    done = am("events", *seeded.flags, "--user", "nobody", "--format", "json")
    document = json.loads(done.stdout)
    assert document["events"] == []
    assert document["count"] == 0


def test_events_filters(am, seeded, oracle):
    since = datetime(2025, 2, 1, tzinfo=timezone.utc)
    until = datetime(2025, 3, 1, tzinfo=timezone.utc)
    done = am(
        "events", *seeded.flags, "--user", "carol", "--payment-type", "token_based_pay",
        "--since", "2025-02-01", "--until", "2025-03-01", "--all", "--format", "csv",
    )  # fmt: skip
    rows = list(csv.DictReader(io.StringIO(done.stdout)))
    expected = [
        e for e in oracle.select(since=since, until=until, user="carol")
        if e.payment_type.value == "token_based_pay"
    ]  # fmt: skip
    assert {row["id"] for row in rows} == {e.id for e in expected}
    assert all(row["payment_type"] == "token_based_pay" for row in rows)


@pytest.mark.parametrize(
    "flags", [["--limit", "0"], ["--payment-type", "free"], ["--since", "soon"]]
)
def test_events_usage_errors(am, seeded, error_line, flags):
    done = am("events", *seeded.flags, *flags)
    assert done.exit_code == 2
    error_line(done)
