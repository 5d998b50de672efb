"""Fixtures of the CLI suite: a live server, an embedded ledger, seeded data, a runner.

- ``live_server``: one ``agentmeter serve`` (subprocess, temp SQLite) for the
  session; ``postgres_live_server`` one on a PostgreSQL database (a throwaway
  cluster, or AGENTMETER_TEST_PG_URL; AGENTMETER_TEST_PG=0 skips it).
- ``seeded``: a project holding the same ~2,400 events on each backend
  (``"http"`` and ``"postgres"`` through those servers, ``"embedded"`` in a
  ledger file): three
  months (January to March 2025, with events right on the month edges),
  two agents, five users, all three payment types, prices with up to 8
  decimal places. Tests that take it run once per backend; they must not
  change it.
- ``target``: a fresh, empty project per test, once per backend.
- ``oracle``: the expected report, computed here from the seeded events
  with exact Decimal sums (independently of the ledger's SQL).
- ``am``: runs ``agentmeter`` in process with click's CliRunner.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from agentmeter import AgentMeterClient
from agentmeter.cli.app import cli
from agentmeter.core.jsonio import format_time
from agentmeter.models import (
    APIRequestPayEvent,
    InstantPayEvent,
    MeterEvent,
    TokenBasedPayEvent,
)
from agentmeter.pricing import MONEY_CONTEXT
from agentmeter.testing import LiveServer

START = datetime(2025, 1, 1, tzinfo=timezone.utc)
END = datetime(2025, 4, 1, tzinfo=timezone.utc)
AGENTS = ("support-bot", "research-agent")
USERS = ("alice", "bob", "carol", "dave", "erin")
MODELS = ("gpt-4o", "claude-sonnet")
# Right on (and just before) the month boundaries: half-open ranges must
# put each of these in exactly one month.
EDGES = (
    datetime(2025, 1, 31, 23, 59, 59, 999999, tzinfo=timezone.utc),
    datetime(2025, 2, 1, tzinfo=timezone.utc),
    datetime(2025, 3, 1, tzinfo=timezone.utc),
    datetime(2025, 3, 31, 23, 59, 59, 999999, tzinfo=timezone.utc),
)
SEEDED_EVENTS = 2400


def make_events(project_id: str, count: int = SEEDED_EVENTS) -> list[MeterEvent]:
    """Deterministic events over January to March 2025 (ids unique per project)."""
    rng = random.Random(7)
    span = (END - START) // count
    events: list[MeterEvent] = []
    for index in range(count):
        moment = START + span * index + timedelta(microseconds=rng.randrange(1_000_000))
        if index < len(EDGES):
            moment = EDGES[index]
        common: dict[str, Any] = {
            "id": f"{project_id}-ev-{index:05d}",
            "project_id": project_id,
            "agent_id": AGENTS[rng.randrange(2)],
            "user_id": USERS[rng.randrange(5)],
            "timestamp": moment,
        }
        kind = index % 3
        if kind == 0:
            events.append(
                APIRequestPayEvent(
                    api_calls=rng.randrange(0, 9),
                    unit_price=("0.001", "0.0025", "0.1", "1.00000001")[rng.randrange(4)],
                    **common,
                )
            )
        elif kind == 1:
            model = MODELS[rng.randrange(2)]
            events.append(
                TokenBasedPayEvent(
                    tokens_in=rng.randrange(0, 50_000),
                    tokens_out=rng.randrange(0, 9_000),
                    input_token_price=("0.0000025", "0.000003")[rng.randrange(2)],
                    output_token_price=("0.00001", "0.00001537")[rng.randrange(2)],
                    metadata={"model": model},
                    **common,
                )
            )
        else:
            events.append(
                InstantPayEvent(
                    amount=("0.01", "0.05", "1.10", "1234.5", "0.33333333")[rng.randrange(5)],
                    description="top-up",
                    **common,
                )
            )
    return events


GROUP_KEYS = {"user": "user_id", "agent": "agent_id", "payment_type": "payment_type"}


def period_of(moment: datetime, granularity: str) -> str:
    if granularity == "month":
        return moment.strftime("%Y-%m")
    if granularity == "day":
        return moment.strftime("%Y-%m-%d")
    return format_time(moment.replace(minute=0, second=0, microsecond=0))


@dataclass
class Oracle:
    """The seeded events, and what every report over them must say."""

    events: list[MeterEvent]

    def select(
        self,
        since: datetime | None = None,
        until: datetime | None = None,
        user: str | None = None,
        agent: str | None = None,
    ) -> list[MeterEvent]:
        return [
            event
            for event in self.events
            if (since is None or event.timestamp >= since)
            and (until is None or event.timestamp < until)
            and (user is None or event.user_id == user)
            and (agent is None or event.agent_id == agent)
        ]

    def report(
        self, granularity: str = "day", groups: Sequence[str] = (), **filters: Any
    ) -> dict[tuple[str | None, ...], dict[str, Any]]:
        """``(period, *group values) -> {events, api_calls, tokens_in, tokens_out, cost}``."""
        rows: dict[tuple[str | None, ...], dict[str, Any]] = {}
        for event in self.select(**filters):
            values = [self.group_value(event, group) for group in groups]
            key = (period_of(event.timestamp, granularity), *values)
            row = rows.setdefault(
                key,
                {"events": 0, "api_calls": 0, "tokens_in": 0, "tokens_out": 0, "cost": Decimal(0)},
            )
            row["events"] += 1
            row["api_calls"] += int(event.get("api_calls") or 0)
            row["tokens_in"] += int(event.get("tokens_in") or 0)
            row["tokens_out"] += int(event.get("tokens_out") or 0)
            row["cost"] = MONEY_CONTEXT.add(row["cost"], event.total_cost)
        return rows

    @staticmethod
    def group_value(event: MeterEvent, group: str) -> str | None:
        if group == "model":
            model = event.metadata.get("model")
            return str(model) if model is not None else None
        value = getattr(event, GROUP_KEYS[group])
        return str(getattr(value, "value", value))

    def total_cost(self, **filters: Any) -> Decimal:
        total = Decimal(0)
        for event in self.select(**filters):
            total = MONEY_CONTEXT.add(total, event.total_cost)
        return total

    def user_costs(self, **filters: Any) -> dict[str, Decimal]:
        costs: dict[str, Decimal] = {}
        for event in self.select(**filters):
            costs[event.user_id] = MONEY_CONTEXT.add(
                costs.get(event.user_id, Decimal(0)), event.total_cost
            )
        return costs


@dataclass
class Target:
    """One project on one backend, and the flags that reach it."""

    mode: str  # "http" or "embedded"
    project_id: str
    flags: list[str]
    client: AgentMeterClient  # the project's own client, for checks
    key: str | None = None
    url: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


@pytest.fixture(autouse=True)
def _plain_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing in the environment forces rich to think it writes to a terminal."""
    for name in ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "AGENTMETER_DEBUG"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    path = tmp_path_factory.mktemp("cli-live") / "ledger.db"
    with LiveServer(f"sqlite:///{path}") as server:
        yield server


@pytest.fixture(scope="session")
def postgres_live_server(postgres_databases: Any) -> Iterator[LiveServer]:
    """``agentmeter serve`` on a PostgreSQL database (NUMERIC sums, to_char months)."""
    with LiveServer(postgres_databases("cli")) as server:
        yield server


@pytest.fixture(scope="session")
def embedded_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('cli-embedded') / 'ledger.db'}"


class Backends:
    """Servers, admin clients and projects per backend, made on first use.

    ``"http"``: a server on SQLite; ``"postgres"``: a server on PostgreSQL;
    ``"embedded"``: a ledger file, no server.
    """

    def __init__(self, request: pytest.FixtureRequest) -> None:
        self.request = request
        self.admins: dict[str, AgentMeterClient] = {}

    def server(self, mode: str) -> LiveServer:
        name = {"http": "live_server", "postgres": "postgres_live_server"}[mode]
        server: LiveServer = self.request.getfixturevalue(name)
        return server

    def admin(self, mode: str) -> AgentMeterClient:
        if mode not in self.admins:
            if mode == "embedded":
                url = self.request.getfixturevalue("embedded_url")
                self.admins[mode] = AgentMeterClient(base_url=url, retry_attempts=0)
            else:
                self.admins[mode] = self.server(mode).client(retry_attempts=0)
        return self.admins[mode]

    def new_target(self, mode: str) -> Target:
        project = self.admin(mode).create_project(f"cli {uuid.uuid4().hex[:8]}")
        if mode == "embedded":
            url = self.request.getfixturevalue("embedded_url")
            client = AgentMeterClient(base_url=url, project_id=project.id, retry_attempts=0)
            flags = ["--db", url, "--project-id", project.id]
            return Target(mode, project.id, flags, client, url=url)
        server = self.server(mode)
        assert project.api_key is not None
        key = project.api_key.get_secret_value()
        client = server.client(key, project_id=project.id, retry_attempts=0)
        flags = ["--base-url", server.url, "--api-key", key, "--project-id", project.id]
        return Target(mode, project.id, flags, client, key=key, url=server.url)

    def close(self) -> None:
        for admin in self.admins.values():
            admin.close()


BACKENDS = ["http", "embedded", "postgres"]


@pytest.fixture(scope="session")
def backends(request: pytest.FixtureRequest) -> Iterator[Backends]:
    made = Backends(request)
    yield made
    made.close()


@pytest.fixture(scope="session")
def admins(backends: Backends) -> dict[str, AgentMeterClient]:
    """The admin clients of the server on SQLite and of the embedded ledger."""
    return {mode: backends.admin(mode) for mode in ("http", "embedded")}


@pytest.fixture(scope="session")
def _seeded_targets(backends: Backends) -> Iterator[dict[str, tuple[Target, Oracle]]]:
    made: dict[str, tuple[Target, Oracle]] = {}

    def seeded_on(mode: str) -> tuple[Target, Oracle]:
        if mode not in made:
            target = backends.new_target(mode)
            events = make_events(target.project_id)
            result = target.client.record_events(events)
            assert result.accepted == len(events), result
            made[mode] = (target, Oracle(events))
        return made[mode]

    yield seeded_on  # type: ignore[misc]
    for target, _ in made.values():
        target.client.close()


@pytest.fixture(params=BACKENDS)
def seeded(request: pytest.FixtureRequest, _seeded_targets: Any) -> Target:
    """The seeded project on one backend (read only)."""
    target: Target = _seeded_targets(request.param)[0]
    return target


@pytest.fixture
def oracle(seeded: Target, _seeded_targets: Any) -> Oracle:
    oracle: Oracle = _seeded_targets(seeded.mode)[1]
    return oracle


@pytest.fixture(params=BACKENDS)
def target(request: pytest.FixtureRequest, backends: Backends) -> Iterator[Target]:
    """A fresh, empty project on one backend."""
    made = backends.new_target(request.param)
    yield made
    made.client.close()


class Runner:
    """``agentmeter ...`` in process; the result has stdout, stderr and exit_code."""

    def __init__(self) -> None:
        self.runner = CliRunner()

    def __call__(self, *args: str | Path, env: dict[str, str] | None = None) -> Result:
        return self.runner.invoke(cli, [str(arg) for arg in args], env=env, prog_name="agentmeter")


@pytest.fixture
def am() -> Runner:
    return Runner()


def one_error_line(result: Result) -> str:
    """The single stderr line of a failed command (asserting there is just one)."""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines[0]
    assert "Traceback" not in result.stderr + result.stdout
    return lines[0]


@pytest.fixture
def error_line() -> Any:
    return one_error_line
