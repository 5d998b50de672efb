"""Fixtures of the capture suite (decorators, with-blocks, meter_agent, budgets).

- ``live_server``: ONE ``agentmeter serve`` for the session, on a temp SQLite file.
- ``project``: a fresh project per test, so tests never see each other's events.
- ``client``: a client of that project over HTTP (its own key), closed at teardown;
  ``make_client(**settings)`` makes more (other TTLs, a tracker of one's own...).
- ``ledger``: reads back what the server holds for the test's project, exactly
  (``Decimal``), after delivering what the client's tracker holds.
- every test's outbox files go to a temp directory, never to ``~/.agentmeter``.

Test modules take these as fixtures: with several conftest.py files under
tests/, importing this one by name would be ambiguous.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import agentmeter.delivery.outbox
from agentmeter import AgentMeterClient, AgentMeterTracker
from agentmeter.models import MeterEvent, Project
from agentmeter.testing import LiveServer

AGENT = "capture-agent"


@pytest.fixture(autouse=True)
def _outbox_in_tmp(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Default trackers make one outbox file per server and key: keep them out of $HOME."""
    monkeypatch.setattr(
        agentmeter.delivery.outbox, "DEFAULT_OUTBOX", tmp_path / "outbox" / "outbox.db"
    )


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    path = tmp_path_factory.mktemp("capture-live") / "ledger.db"
    with LiveServer(f"sqlite:///{path}") as server:
        yield server


@pytest.fixture(scope="session")
def admin(live_server: LiveServer) -> Iterator[AgentMeterClient]:
    with live_server.client(retry_attempts=0) as made:
        yield made


@pytest.fixture
def project(admin: AgentMeterClient) -> Project:
    return admin.create_project(f"capture {uuid.uuid4().hex[:8]}")


@pytest.fixture
def make_client(
    live_server: LiveServer, project: Project
) -> Iterator[Callable[..., AgentMeterClient]]:
    """``make_client(**settings)``: a client of this test's project; all closed at teardown."""
    made: list[AgentMeterClient] = []
    assert project.api_key is not None
    key = project.api_key.get_secret_value()

    def make(**settings: Any) -> AgentMeterClient:
        settings.setdefault("project_id", project.id)
        settings.setdefault("agent_id", AGENT)
        settings.setdefault("retry_attempts", 0)
        client = live_server.client(key, **settings)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close(timeout=5)


@pytest.fixture
def client(make_client: Callable[..., AgentMeterClient]) -> AgentMeterClient:
    return make_client()


class Ledger:
    """What the server holds for one project, read after delivering everything."""

    def __init__(self, client: AgentMeterClient) -> None:
        self.client = client

    def settle(self, *trackers: AgentMeterTracker) -> None:
        """Deliver what the client's default tracker (and ``trackers``) hold."""
        for tracker in trackers:
            assert tracker.flush(timeout=10), tracker.stats()
        assert self.client.flush(timeout=10), self.client.tracker.stats()

    def usage(self, user_id: str) -> Decimal:
        """The user's meter, as the server counts it."""
        return self.client.get_user_meter(user_id=user_id).current_usage

    def events(self, user_id: str | None = None) -> list[MeterEvent]:
        return self.client.get_events(user_id=user_id, limit=1000)

    def total(self) -> Decimal:
        return self.client.get_meter_stats(timeframe="all").total_cost

    def costs(self, user_id: str | None = None) -> list[Decimal]:
        return sorted(event.total_cost for event in self.events(user_id))


@pytest.fixture
def ledger(client: AgentMeterClient) -> Ledger:
    return Ledger(client)
