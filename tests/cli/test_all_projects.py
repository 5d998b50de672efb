"""Issue 18: ``report``, ``stats`` and ``summary`` with ``--all-projects`` (admin key):
every project, grouped by project, exact; a project key gets 403. Each backend
is a ledger of its own here, so "every project" is exactly the projects made below."""

from __future__ import annotations

import csv
import io
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
import requests

from agentmeter import AgentMeterClient
from agentmeter.core.jsonio import format_time
from agentmeter.models import APIRequestPayEvent, InstantPayEvent, MeterEvent, TokenBasedPayEvent
from agentmeter.pricing import MONEY_CONTEXT
from agentmeter.testing import LiveServer

PROJECTS = ("alpha", "beta", "gamma")
START = datetime(2025, 1, 30, tzinfo=timezone.utc)
METRICS = ("events", "api_calls", "tokens_in", "tokens_out")


def make_events(project_id: str, count: int) -> list[MeterEvent]:
    rng = random.Random(project_id)
    made: list[MeterEvent] = []
    for index in range(count):
        common: dict[str, Any] = {
            "id": f"{project_id}-{index}", "project_id": project_id,
            "agent_id": rng.choice(["a1", "a2"]), "user_id": rng.choice(["ann", "ben", "cy"]),
            "timestamp": START + timedelta(minutes=rng.randrange(60 * 24 * 5), microseconds=index),
        }  # fmt: skip
        kind = index % 3
        if kind == 0:
            made.append(
                APIRequestPayEvent(api_calls=rng.randrange(5), unit_price="0.0013", **common)
            )
        elif kind == 1:
            made.append(TokenBasedPayEvent(
                tokens_in=rng.randrange(9000), tokens_out=rng.randrange(900),
                input_token_price="0.0000025", output_token_price="0.00001537", **common,
            ))  # fmt: skip
        else:
            made.append(InstantPayEvent(amount=rng.choice(["0.01", "1.333333", "7"]), **common))
    return made


@dataclass
class World:
    mode: str
    admin_flags: list[str]
    events: list[MeterEvent]
    url: str = ""
    project_keys: dict[str, str] | None = None


@pytest.fixture(scope="module", params=["http", "embedded", "postgres"])
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    mode = request.param
    events = [event for project in PROJECTS for event in make_events(project, 150)]
    if mode == "embedded":
        url = f"sqlite:///{tmp_path_factory.mktemp('all-embedded') / 'ledger.db'}"
        for project in PROJECTS:
            with AgentMeterClient(base_url=url, project_id=project) as client:
                assert client.record_events([e for e in events if e.project_id == project]).ok
        yield World(mode, ["--db", url], events)
        return
    if mode == "postgres":
        ledger_url = request.getfixturevalue("postgres_databases")("allprojects")
    else:
        ledger_url = f"sqlite:///{tmp_path_factory.mktemp('all-http') / 'ledger.db'}"
    with LiveServer(ledger_url) as server, server.client(retry_attempts=0) as admin:
        keys = {}
        for project in PROJECTS:
            made = admin.create_project(project, project_id=project)
            assert made.api_key is not None
            keys[project] = made.api_key.get_secret_value()
            assert admin.record_events([e for e in events if e.project_id == project]).ok
        flags = ["--base-url", server.url, "--api-key", server.admin_key]
        yield World(mode, flags, events, server.url, keys)


def expected(events: list[MeterEvent], granularity: str, user: bool) -> dict[tuple[str, ...], Any]:
    rows: dict[tuple[str, ...], Any] = {}
    shape = {"month": "%Y-%m", "day": "%Y-%m-%d", "hour": "%Y-%m-%dT%H:00:00Z"}[granularity]
    for event in events:
        key = (
            event.timestamp.strftime(shape),
            event.project_id,
            *([event.user_id] if user else []),
        )
        row = rows.setdefault(key, [0, 0, 0, 0, Decimal(0)])
        row[0] += 1
        row[1] += int(event.get("api_calls") or 0)
        row[2] += int(event.get("tokens_in") or 0)
        row[3] += int(event.get("tokens_out") or 0)
        row[4] = MONEY_CONTEXT.add(row[4], event.total_cost)
    return rows


def total_cost(events: list[MeterEvent]) -> Decimal:
    total = Decimal(0)
    for event in events:
        total = MONEY_CONTEXT.add(total, event.total_cost)
    return total


@pytest.mark.parametrize("granularity", ["hour", "day", "month"])
@pytest.mark.parametrize("by_user", [False, True])
def test_report_groups_every_project(world, am, granularity, by_user):
    groups = ["--group-by", "user"] if by_user else []
    window = ["--since", "2025-01-01", "--until", "2025-03-01"]
    flags = ["--all-projects", "--granularity", granularity, *groups, *window]
    result = am("report", *world.admin_flags, *flags, "--format", "json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["query"]["all_projects"] is True
    found = {
        (row["period"], row["project_id"], *([row["user_id"]] if by_user else [])):
            [*(row[m] for m in METRICS), Decimal(row["cost"])]
        for row in document["rows"]
    }  # fmt: skip
    assert found == expected(world.events, granularity, by_user)
    assert Decimal(document["totals"]["cost"]) == total_cost(world.events)


def test_report_csv_and_table(world, am):
    common = ["report", *world.admin_flags, "--all-projects", "--granularity", "month",
              "--since", "2025-01-01", "--until", "2025-03-01"]  # fmt: skip
    records = list(csv.DictReader(io.StringIO(am(*common, "--format", "csv").stdout)))
    assert list(records[0])[:2] == ["period", "project_id"]
    assert {record["project_id"] for record in records} == set(PROJECTS)
    table = am(*common)
    assert table.exit_code == 0, table.output
    assert "all projects" in table.stdout
    assert f"from {len(PROJECTS)} projects" in table.stdout
    assert f"{total_cost(world.events).normalize():,f}" in table.stdout


def test_stats_per_project_and_in_total(world, am):
    result = am("stats", *world.admin_flags, "--all-projects", "--timeframe", "all",
                "--format", "json")  # fmt: skip
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert [row["project_id"] for row in document["projects"]] == sorted(PROJECTS)
    for row in document["projects"]:
        mine = [e for e in world.events if e.project_id == row["project_id"]]
        assert row["events"] == len(mine)
        assert Decimal(row["cost"]) == total_cost(mine)
    assert Decimal(document["totals"]["cost"]) == total_cost(world.events)
    assert document["totals"]["events"] == len(world.events)
    table = am("stats", *world.admin_flags, "--all-projects", "--timeframe", "all")
    assert "All projects, all time" in table.stdout
    assert "Total" in table.stdout


def test_summary_per_project(world, am):
    result = am("summary", *world.admin_flags, "--all-projects", "--since", "2025-01-01",
                "--until", "2025-03-01", "--format", "json")  # fmt: skip
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert [row["project_id"] for row in document["rows"]] == sorted(PROJECTS)
    for row in document["rows"]:
        mine = [e for e in world.events if e.project_id == row["project_id"]]
        assert Decimal(row["cost"]) == total_cost(mine)
        assert row["first_event"] == format_time(min(e.timestamp for e in mine))
        assert row["last_event"] == format_time(max(e.timestamp for e in mine))
    assert document["figures"]["projects"] == len(PROJECTS)


@pytest.mark.parametrize("path", ["/api/meter/report", "/api/meter/stats", "/api/meter/summary"])
def test_a_project_key_gets_403(world, path):
    if world.project_keys is None:
        pytest.skip("the embedded ledger has no keys")
    key = world.project_keys["alpha"]
    answer = requests.get(
        world.url + path, params={"all_projects": "true"},
        headers={"Authorization": f"Bearer {key}"}, timeout=10,
    )  # fmt: skip
    assert answer.status_code == 403, answer.text
    assert answer.json()["error"]["code"] == "forbidden"
    own = requests.get(
        world.url + path, params={"all_projects": "false"},
        headers={"Authorization": f"Bearer {key}"}, timeout=10,
    )  # fmt: skip
    assert own.status_code == 200, own.text
