"""Issue 20: ``agentmeter report --group-by metadata.KEY``, on a server (SQLite and
PostgreSQL) and the embedded ledger: exact totals, every format, checked keys."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
import requests

from agentmeter.models import APIRequestPayEvent, InstantPayEvent, MeterEvent, TokenBasedPayEvent
from agentmeter.pricing import MONEY_CONTEXT

START = datetime(2025, 5, 1, tzinfo=timezone.utc)
METADATA: list[dict[str, Any]] = [
    {"provider": "openai", "service": "chat"},
    {"provider": "openai", "service": "embeddings"},
    {"provider": "anthropic", "service": "chat"},
    {"provider": "anthropic"},  # no service
    {"service": "chat"},  # no provider
    {},
    {"provider": 2, "service": True},  # JSON text: "2", "true"
    {"provider": None, "service": "batch"},  # null: as if absent
    {"region.name": "eu-west", "provider": "openai"},  # a key with a dot
    {"provider": "<b>x</b>", "service": "chat"},
]


def make_events(project_id: str, count: int = 60) -> list[MeterEvent]:
    made: list[MeterEvent] = []
    for index in range(count):
        common: dict[str, Any] = {
            "id": f"{project_id}-md-{index}",
            "project_id": project_id,
            "agent_id": "agent",
            "user_id": f"user{index % 3}",
            "timestamp": START + timedelta(hours=7 * index, microseconds=index),
            "metadata": METADATA[index % len(METADATA)],
        }
        kind = index % 3
        if kind == 0:
            made.append(APIRequestPayEvent(api_calls=index % 5, unit_price="0.00125", **common))
        elif kind == 1:
            made.append(
                TokenBasedPayEvent(
                    tokens_in=100 * index,
                    tokens_out=7 * index,
                    input_token_price="0.0000025",
                    output_token_price="0.00001537",
                    **common,
                )
            )
        else:
            made.append(InstantPayEvent(amount=f"0.{index:02d}333333", **common))
    return made


def value_of(event: MeterEvent, key: str) -> str:
    if key not in event.metadata or event.metadata[key] is None:
        return ""
    value = event.metadata[key]
    return value if isinstance(value, str) else json.dumps(value)


def expected(
    events: list[MeterEvent], granularity: str, keys: list[str]
) -> dict[tuple[str, ...], dict[str, Any]]:
    rows: dict[tuple[str, ...], dict[str, Any]] = {}
    for event in events:
        period = event.timestamp.strftime({"month": "%Y-%m", "day": "%Y-%m-%d"}[granularity])
        key = (period, *(value_of(event, name) for name in keys))
        row = rows.setdefault(
            key, {"events": 0, "api_calls": 0, "tokens_in": 0, "tokens_out": 0, "cost": Decimal(0)}
        )
        row["events"] += 1
        row["api_calls"] += int(event.get("api_calls") or 0)
        row["tokens_in"] += int(event.get("tokens_in") or 0)
        row["tokens_out"] += int(event.get("tokens_out") or 0)
        row["cost"] = MONEY_CONTEXT.add(row["cost"], event.total_cost)
    return rows


@pytest.fixture
def stocked(target: Any) -> tuple[Any, list[MeterEvent]]:
    events = make_events(target.project_id)
    assert target.client.record_events(events).accepted == len(events)
    return target, events


RANGE = ["--since", "2025-05-01", "--until", "2025-07-01"]


@pytest.mark.parametrize(
    ("granularity", "keys"),
    [("month", ["provider"]), ("month", ["provider", "service"]), ("day", ["region.name"])],
)
def test_json_rows_are_the_events_exact_sums(stocked, am, granularity, keys):
    target, events = stocked
    flags = [flag for key in keys for flag in ("--group-by", f"metadata.{key}")]
    result = am("report", *target.flags, *RANGE, "--granularity", granularity, *flags,
                "--format", "json")  # fmt: skip
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["query"]["group_by"] == [f"metadata.{key}" for key in keys]
    found = {
        (row["period"], *(row[f"metadata.{key}"] for key in keys)): {
            "events": row["events"], "api_calls": row["api_calls"],
            "tokens_in": row["tokens_in"], "tokens_out": row["tokens_out"],
            "cost": Decimal(row["cost"]),
        }
        for row in document["rows"]
    }  # fmt: skip
    assert found == expected(events, granularity, keys)
    total = Decimal(0)
    for event in events:
        total = MONEY_CONTEXT.add(total, event.total_cost)
    assert Decimal(document["totals"]["cost"]) == total
    assert document["totals"]["events"] == len(events)


def test_two_keys_with_a_column_and_the_client_agree(stocked):
    target, events = stocked
    rows = target.client.get_report(
        granularity="month", group_by=["user", "metadata.provider", "metadata.service"],
        start_date=START, end_date=START + timedelta(days=61),
    )  # fmt: skip
    by_user: dict[tuple[str, ...], Decimal] = {}
    for event in events:
        key = (event.user_id, value_of(event, "provider"), value_of(event, "service"))
        by_user[key] = MONEY_CONTEXT.add(by_user.get(key, Decimal(0)), event.total_cost)
    found: dict[tuple[str, ...], Decimal] = {}
    for row in rows:
        key = (str(row.user_id), row.metadata["provider"], row.metadata["service"])
        found[key] = MONEY_CONTEXT.add(found.get(key, Decimal(0)), row.cost)
    assert found == by_user


def test_csv_and_table_show_missing_values(stocked, am):
    target, events = stocked
    common = [*target.flags, *RANGE, "--granularity", "month", "--group-by", "metadata.service"]
    result = am("report", *common, "--format", "csv")
    assert result.exit_code == 0, result.output
    records = list(csv.DictReader(io.StringIO(result.stdout)))
    assert list(records[0]) == ["period", "metadata.service", *METRICS]
    services = {record["metadata.service"] for record in records}
    assert services == {"", "chat", "embeddings", "batch", "true"}
    assert sum(int(record["events"]) for record in records) == len(events)

    table = am("report", *common)
    assert table.exit_code == 0, table.output
    lines = table.stdout.splitlines()
    assert "metadata.service" in lines[2]
    assert any(line.split()[1:2] == ["-"] for line in lines[4:]), table.stdout


METRICS = ["events", "api_calls", "tokens_in", "tokens_out", "cost"]


@pytest.mark.parametrize(
    "key", ["a b", "a'b", 'x")--', "", "é", "x" * 101, "a/b", "metadata.$.x[0]"]
)
def test_a_key_outside_the_allowed_characters_is_a_usage_error(target, am, key):
    result = am("report", *target.flags, "--group-by", f"metadata.{key}")
    assert result.exit_code == 2, result.output
    assert "--group-by" in result.stderr


def test_the_endpoint_refuses_a_bad_key_naming_the_field(target):
    if target.mode == "embedded":
        pytest.skip("the wire check over HTTP; the embedded client checks before sending")
    answer = requests.get(
        f"{target.url}/api/meter/report",
        params=[("group_by", "metadata.ok"), ("group_by", "metadata.a'); drop table events;--")],
        headers={"Authorization": f"Bearer {target.key}"},
        timeout=10,
    )
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"]["details"][0]["field"] == "group_by.1"
    rows = requests.get(
        f"{target.url}/api/meter/report",
        params={"group_by": "metadata.provider", "granularity": "month"},
        headers={"Authorization": f"Bearer {target.key}"},
        timeout=10,
    ).json()
    assert rows == []  # a fresh project: nothing, and no error
