"""Fixtures of the integration suite: real servers, real ledger files, real clients.

- ``live_server``: ONE ``agentmeter serve`` for the whole session, on a temp
  SQLite file (tests that must stop a server start their own).
- ``backend``: ``"http"`` (that server), ``"embedded"`` (a ledger file in
  process, ``base_url="sqlite:///..."``) or ``"postgres"`` (a server on a
  PostgreSQL database); every test that asks for it, or for ``project`` /
  ``client``, runs once in each.
- ``project``: a fresh project per test, made through the backend's admin
  client, so tests never see each other's data.
- ``client``: a client of that project (its key on HTTP; the ledger file embedded).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from agentmeter import AgentMeterClient
from agentmeter.config import ENVIRONMENT
from agentmeter.models import Project
from agentmeter.testing import LiveServer

# A fixed past moment: events stamped from here never fall into "24 hours".
BASE_TIME = datetime(2025, 3, 10, 12, 0, 0, tzinfo=timezone.utc)


@pytest.fixture(autouse=True)
def _no_agentmeter_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No AGENTMETER_* variable of the developer's changes what a test's client does."""
    for name in ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The one ``agentmeter serve`` every HTTP test shares."""
    path = tmp_path_factory.mktemp("live") / "ledger.db"
    with LiveServer(f"sqlite:///{path}") as server:
        yield server


@pytest.fixture(scope="session")
def postgres_server(postgres_databases: Any) -> Iterator[LiveServer]:
    """The one ``agentmeter serve`` on PostgreSQL the postgres backend shares."""
    with LiveServer(postgres_databases("integration")) as server:
        yield server


@pytest.fixture(scope="session")
def embedded_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The ledger file every embedded test shares (each in its own project)."""
    return f"sqlite:///{tmp_path_factory.mktemp('embedded') / 'ledger.db'}"


@dataclass
class Backend:
    """One way to reach a ledger: ``mode`` is ``"http"`` or ``"embedded"``."""

    mode: str
    admin: AgentMeterClient
    server: LiveServer | None = None
    url: str | None = None

    def connect(self, project: Project, **settings: Any) -> AgentMeterClient:
        """A client of ``project``: its key on the server, or the ledger file embedded."""
        settings.setdefault("project_id", project.id)
        settings.setdefault("retry_attempts", 0)
        if self.server is not None:
            assert project.api_key is not None
            return self.server.client(project.api_key.get_secret_value(), **settings)
        return AgentMeterClient(base_url=self.url, **settings)

    def new_project(self, name: str = "integration", **kwargs: Any) -> Project:
        return self.admin.create_project(f"{name} {uuid.uuid4().hex[:8]}", **kwargs)


@pytest.fixture(scope="session")
def http_admin(live_server: LiveServer) -> Iterator[AgentMeterClient]:
    with live_server.client(retry_attempts=0) as admin:
        yield admin


@pytest.fixture(scope="session")
def embedded_admin(embedded_url: str) -> Iterator[AgentMeterClient]:
    """The embedded client has admin rights: it creates the embedded projects."""
    with AgentMeterClient(base_url=embedded_url, retry_attempts=0) as admin:
        yield admin


@pytest.fixture(scope="session")
def postgres_admin(postgres_server: LiveServer) -> Iterator[AgentMeterClient]:
    with postgres_server.client(retry_attempts=0) as admin:
        yield admin


@pytest.fixture(params=["http", "embedded", "postgres"])
def backend(request: pytest.FixtureRequest) -> Backend:
    if request.param == "http":
        server = request.getfixturevalue("live_server")
        return Backend("http", request.getfixturevalue("http_admin"), server=server)
    if request.param == "postgres":
        server = request.getfixturevalue("postgres_server")
        return Backend("http", request.getfixturevalue("postgres_admin"), server=server)
    url = request.getfixturevalue("embedded_url")
    return Backend("embedded", request.getfixturevalue("embedded_admin"), url=url)


@pytest.fixture
def project(backend: Backend) -> Project:
    """A fresh project (with its key) for this test only."""
    return backend.new_project()


@pytest.fixture
def client(backend: Backend, project: Project) -> Iterator[AgentMeterClient]:
    """A client of this test's project, once over HTTP and once embedded."""
    with backend.connect(project, agent_id="agent-1") as made:
        yield made


@pytest.fixture
def http_backend(live_server: LiveServer, http_admin: AgentMeterClient) -> Backend:
    """The live server only: for what embedded mode has no notion of (keys, HTTP)."""
    return Backend("http", http_admin, server=live_server)


@pytest.fixture
def unique() -> str:
    """A short random suffix for ids that must not repeat within the session."""
    return uuid.uuid4().hex[:12]


def scan_for(paths: list[Path], secrets: list[str]) -> list[str]:
    """Which of ``secrets`` appear in clear in any of ``paths`` (missing files skipped)."""
    found = []
    for path in paths:
        if path.exists():
            data = path.read_bytes()
            found += [
                f"{path.name}: {secret[:12]}..." for secret in secrets if secret.encode() in data
            ]
    return found


@pytest.fixture
def scan() -> Any:
    return scan_for
