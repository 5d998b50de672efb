"""``agentmeter report``: its numbers are the ledger's exact sums, in every format."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import datetime, timezone
from decimal import Decimal

import pytest

METRICS = ["events", "api_calls", "tokens_in", "tokens_out", "cost"]
COLUMNS = {"user": "user_id", "agent": "agent_id", "payment_type": "payment_type", "model": "model"}
SHAPES = [
    ("month", []),
    ("day", ["user"]),
    ("hour", ["agent"]),
    ("month", ["user", "agent", "payment_type", "model"]),
    ("day", ["model", "payment_type"]),
]
REPORT_SCHEMA = {
    "type": "object",
    "required": ["generated_at", "query", "rows", "totals"],
    "additionalProperties": False,
    "properties": {
        "generated_at": {"type": "string", "pattern": r"^\d{4}-\d{2}-\d{2}T.*Z$"},
        "query": {
            "type": "object",
            "required": ["project_id", "granularity", "group_by", "since", "until"],
            "properties": {
                "granularity": {"enum": ["hour", "day", "month"]},
                "group_by": {"type": "array", "items": {"type": "string"}},
                "since": {"type": ["string", "null"]},
                "until": {"type": ["string", "null"]},
            },
        },
        "rows": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["period", *METRICS],
                "properties": {
                    "period": {"type": "string"},
                    "events": {"type": "integer", "minimum": 0},
                    "api_calls": {"type": "integer", "minimum": 0},
                    "tokens_in": {"type": "integer", "minimum": 0},
                    "tokens_out": {"type": "integer", "minimum": 0},
                    "cost": {"type": "string", "pattern": r"^\d+(\.\d+)?$"},
                },
            },
        },
        "totals": {
            "type": "object",
            "required": METRICS,
            "additionalProperties": False,
            "properties": {
                **{m: {"type": "integer", "minimum": 0} for m in METRICS[:-1]},
                "cost": {"type": "string", "pattern": r"^\d+(\.\d+)?$"},
            },
        },
    },
}


def group_flags(groups):
    return [flag for group in groups for flag in ("--group-by", group)]


def parse_csv(text):
    return list(csv.DictReader(io.StringIO(text)))


def csv_rows(records, groups):
    """CSV records -> {(period, *group values): metrics}, values parsed back."""
    parsed = {}
    for record in records:
        key = (record["period"], *((record[COLUMNS[g]] or None) for g in groups))
        assert key not in parsed, f"two rows for {key}"
        parsed[key] = {
            metric: Decimal(record[metric]) if metric == "cost" else int(record[metric])
            for metric in METRICS
        }
    return parsed


def table_rows(stdout, width):
    """The body rows of a report table, split into cells, and its total row."""
    lines = stdout.splitlines()
    top = next(i for i, line in enumerate(lines) if line.strip().startswith("━"))
    bottom = next(i for i, line in enumerate(lines) if line.strip().startswith("─"))
    body = [re.split(r"\s{2,}", line.strip()) for line in lines[top + 1 : bottom]]
    total = re.split(r"\s{2,}", lines[bottom + 1].strip())
    assert all(len(cells) == width for cells in body), body[:3]
    return body, total


def number(text):
    return Decimal(text.replace(",", ""))


@pytest.mark.parametrize(("granularity", "groups"), SHAPES)
def test_csv_is_the_exact_sums(am, seeded, oracle, granularity, groups):
    done = am(
        "report", *seeded.flags, "--granularity", granularity, *group_flags(groups),
        "--format", "csv",
    )  # fmt: skip

    assert done.exit_code == 0, done.stderr
    records = parse_csv(done.stdout)
    header = done.stdout.splitlines()[0].split(",")
    assert header == ["period", *(COLUMNS[g] for g in groups), *METRICS]
    assert csv_rows(records, groups) == oracle.report(granularity, groups)
    assert sum(int(r["events"]) for r in records) == len(oracle.events)
    assert sum(Decimal(r["cost"]) for r in records) == oracle.total_cost()
    assert "Total" not in done.stdout  # no totals row in CSV


def test_csv_rows_are_one_per_line_and_periods_sorted(am, seeded):
    done = am("report", *seeded.flags, "--granularity", "month", "--format", "csv")
    lines = done.stdout.splitlines()
    assert [line.split(",")[0] for line in lines] == ["period", "2025-01", "2025-02", "2025-03"]
    assert not any("\r" in line for line in lines)


def test_table_numbers_totals_and_summary(am, seeded, oracle):
    done = am("report", *seeded.flags, "--granularity", "month", "--group-by", "user")

    assert done.exit_code == 0, done.stderr
    expected = oracle.report("month", ["user"])
    body, total = table_rows(done.stdout, 2 + len(METRICS))
    assert len(body) == len(expected) == 15  # 3 months x 5 users
    for cells in body:
        want = expected[(cells[0], cells[1])]
        assert [number(c) for c in cells[2:]] == [want[m] for m in METRICS]
        assert all(re.fullmatch(r"\d{1,3}(,\d{3})*(\.\d+)?", c) for c in cells[2:])
    assert total[0] == "Total"
    sums = {m: sum(row[m] for row in expected.values()) for m in METRICS}
    assert [number(c) for c in total[1:]] == [sums[m] for m in METRICS]
    assert number(total[-1]) == oracle.total_cost()
    # Counts carry thousands separators; costs keep every digit.
    assert f"{len(oracle.events):,}" in total
    costs = oracle.user_costs()
    top_user = max(costs, key=lambda user: costs[user])
    summary = done.stdout.strip().splitlines()[-2]
    assert summary.startswith(f"{len(oracle.events):,} events from 5 users")
    assert f"top user by cost: {top_user} ({costs[top_user]:,f})" in summary


def test_table_summary_counts_users_when_not_grouped_by_user(am, seeded, oracle):
    done = am("report", *seeded.flags, "--granularity", "month", "--group-by", "agent")
    assert done.exit_code == 0, done.stderr
    assert f"{len(oracle.events):,} events from 5 users" in done.stdout
    body, total = table_rows(done.stdout, 2 + len(METRICS))
    assert len(body) == 6  # 3 months x 2 agents
    assert number(total[-1]) == oracle.total_cost()


def test_table_cost_column_is_normalized_without_changing_a_value(am, seeded, oracle):
    done = am("report", *seeded.flags, "--granularity", "day")
    body, total = table_rows(done.stdout, 1 + len(METRICS))
    for cells in [*body, total]:  # no padding zeros (issue 11, item 13), no exponent
        assert not cells[-1].endswith("0") or "." not in cells[-1], cells
        assert "E" not in cells[-1]
    expected = oracle.report("day")
    assert {cells[0]: number(cells[-1]) for cells in body} == {
        key[0]: row["cost"] for key, row in expected.items()
    }


def test_json_validates_and_matches(am, seeded, oracle):
    jsonschema_rs = pytest.importorskip("jsonschema_rs")
    done = am(
        "report", *seeded.flags, "--granularity", "month", "--group-by", "agent",
        "--group-by", "model", "--since", "2025-01-15", "--format", "json",
    )  # fmt: skip

    assert done.exit_code == 0, done.stderr
    document = json.loads(done.stdout)
    errors = [str(e) for e in jsonschema_rs.validator_for(REPORT_SCHEMA).iter_errors(document)]
    assert errors == []
    since = datetime(2025, 1, 15, tzinfo=timezone.utc)
    assert document["query"] == {
        "project_id": seeded.project_id,
        "granularity": "month",
        "group_by": ["agent", "model"],
        "since": "2025-01-15T00:00:00Z",
        "until": None,
        "user_id": None,
        "agent_id": None,
    }
    generated = datetime.fromisoformat(document["generated_at"].replace("Z", "+00:00"))
    assert abs((generated - datetime.now(timezone.utc)).total_seconds()) < 60
    expected = oracle.report("month", ["agent", "model"], since=since)
    got = {
        (row["period"], row["agent_id"], row["model"]): {
            m: Decimal(row[m]) if m == "cost" else row[m] for m in METRICS
        }
        for row in document["rows"]
    }
    assert got == expected
    assert set(document["rows"][0]) == {"period", "agent_id", "model", *METRICS}
    totals = document["totals"]
    assert Decimal(totals["cost"]) == oracle.total_cost(since=since)
    assert totals["events"] == len(oracle.select(since=since))


def test_ranges_are_half_open(am, seeded, oracle):
    feb = datetime(2025, 2, 1, tzinfo=timezone.utc)
    mar = datetime(2025, 3, 1, tzinfo=timezone.utc)
    done = am(
        "report", *seeded.flags, "--since", "2025-02-01", "--until", "2025-03-01",
        "--granularity", "month", "--format", "csv",
    )  # fmt: skip
    records = parse_csv(done.stdout)
    assert [r["period"] for r in records] == ["2025-02"]
    assert int(records[0]["events"]) == len(oracle.select(since=feb, until=mar))
    assert Decimal(records[0]["cost"]) == oracle.total_cost(since=feb, until=mar)


@pytest.mark.parametrize(
    ("since", "until"),
    [
        ("2025-01-31T23:59:59.999999Z", "2025-02-01T00:00:00.000001Z"),
        ("2025-01-31T23:59:59.999999", "2025-02-01T00:00:00.000001"),  # naive is UTC
        ("2025-02-01T00:59:59.999999+01:00", "2025-02-01T01:00:00.000001+01:00"),
    ],
)
def test_datetimes_with_and_without_offsets(am, seeded, since, until):
    done = am("report", *seeded.flags, "--since", since, "--until", until, "--format", "csv")
    records = parse_csv(done.stdout)
    # The two seeded events right on either side of midnight, 1 February.
    assert [(r["period"], r["events"]) for r in records] == [
        ("2025-01-31", "1"),
        ("2025-02-01", "1"),
    ]


def test_user_and_agent_filters(am, seeded, oracle):
    done = am(
        "report", *seeded.flags, "--user", "bob", "--agent", "support-bot", "--granularity",
        "month", "--format", "csv",
    )  # fmt: skip
    expected = oracle.report("month", user="bob", agent="support-bot")
    assert csv_rows(parse_csv(done.stdout), []) == expected


def test_output_file_is_written_whole(am, seeded, oracle, tmp_path):
    path = tmp_path / "usage.csv"
    done = am("report", *seeded.flags, "--format", "csv", "--output", path)
    assert done.exit_code == 0, done.stderr
    assert done.stdout == ""
    assert sum(Decimal(r["cost"]) for r in parse_csv(path.read_text())) == oracle.total_cost()
    assert [p.name for p in tmp_path.iterdir()] == ["usage.csv"]  # no temporary left


def test_an_empty_range(am, seeded):
    flags = [*seeded.flags, "--since", "2024-01-01", "--until", "2024-02-01"]
    table = am("report", *flags)
    assert table.exit_code == 0, table.stderr
    assert "0 events from 0 users, cost 0" in table.stdout
    assert am("report", *flags, "--format", "csv").stdout.splitlines() == [
        "period,events,api_calls,tokens_in,tokens_out,cost"
    ]
    document = json.loads(am("report", *flags, "--format", "json").stdout)
    assert document["rows"] == []
    assert document["totals"] == {
        "events": 0, "api_calls": 0, "tokens_in": 0, "tokens_out": 0, "cost": "0"
    }  # fmt: skip


def test_relative_since_reaches_back_from_now(am, seeded):
    # The seeded events are from 2025: "the last 7 days" holds none of them,
    # "the last 1200 months" all of them.
    recent = am("report", *seeded.flags, "--since", "7d", "--format", "csv")
    assert recent.stdout.splitlines()[1:] == []
    everything = am("report", *seeded.flags, "--since", "1200m", "--format", "csv")
    assert sum(int(r["events"]) for r in parse_csv(everything.stdout)) > 0


@pytest.mark.parametrize(
    ("flags", "says"),
    [
        (["--since", "2025-13-01"], "Invalid value for '--since'"),
        (["--since", "last tuesday"], "is not a time"),
        (["--until", "7x"], "Invalid value for '--until'"),
        (["--since", "2025-03-01", "--until", "2025-02-01"], "must be after --since"),
        (["--since", "2025-03-01", "--until", "2025-03-01"], "must be after --since"),
        (["--bogus"], "No such option"),
        (["--granularity", "week"], "Invalid value for '--granularity'"),
        (["--group-by", "planet"], "Invalid value for '--group-by'"),
        (["--format", "xml"], "Invalid value for '--format'"),
        (["stray-argument"], "unexpected extra argument"),
    ],
)
def test_usage_errors_exit_2_with_one_line(am, seeded, error_line, flags, says):
    done = am("report", *seeded.flags, *flags)
    assert done.exit_code == 2
    line = error_line(done)
    assert says.lower() in line.lower()
    assert "agentmeter report --help" in line
    assert done.stdout == ""
