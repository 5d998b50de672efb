"""Fixtures of the async client suite: real servers, real ledger files, real clients.

The pattern of tests/integration/conftest.py:

- ``live_server``: ONE ``agentmeter serve`` (SQLite file) for the session.
- ``backend``: ``"http"`` (that server), ``"embedded"`` (a ledger file in
  process) or ``"postgres"`` (a server on PostgreSQL, where the test cluster
  can be started); a test that asks for it runs once in each.
- ``project``: a fresh project per test, so tests never see each other's data.
- ``backend.connect(project)``: an :class:`AsyncAgentMeterClient` of that
  project, made inside the test's event loop (an httpx pool belongs to its
  loop); ``backend.sync(project)``: the sync client, to compare with.
- ``fault_kit``: the tracker suite's fault-injecting proxy (``FaultProxy``
  and its actions), loaded from tests/tracker/conftest.py by path: a
  conftest cannot be imported by name when several exist.
"""

from __future__ import annotations

import importlib.util
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from agentmeter import AgentMeterClient, AsyncAgentMeterClient
from agentmeter.config import ENVIRONMENT
from agentmeter.models import Project
from agentmeter.testing import LiveServer


@pytest.fixture(autouse=True)
def _no_agentmeter_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    path = tmp_path_factory.mktemp("async-live") / "ledger.db"
    with LiveServer(f"sqlite:///{path}") as server:
        yield server


@pytest.fixture(scope="session")
def postgres_server(postgres_databases: Any) -> Iterator[LiveServer]:
    with LiveServer(postgres_databases("async_client")) as server:
        yield server


@pytest.fixture(scope="session")
def embedded_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('async-embedded') / 'ledger.db'}"


@dataclass
class Backend:
    """One way to reach a ledger: ``mode`` is ``"http"``, ``"embedded"`` or ``"postgres"``."""

    mode: str
    admin: AgentMeterClient  # sync, session-wide: makes the projects
    server: LiveServer | None = None
    url: str | None = None

    def _where(self, project: Project | None, settings: dict[str, Any]) -> dict[str, Any]:
        if project is not None:
            settings.setdefault("project_id", project.id)
        settings.setdefault("retry_attempts", 0)
        if self.server is None:
            return {"base_url": self.url, **settings}
        if project is None:  # the admin key
            return {"base_url": self.server.url, "api_key": self.server.admin_key, **settings}
        assert project.api_key is not None
        key = project.api_key.get_secret_value()
        return {"base_url": self.server.url, "api_key": key, **settings}

    def connect(self, project: Project | None, **settings: Any) -> AsyncAgentMeterClient:
        """An async client of ``project`` (None: with admin rights). Call it in the loop."""
        return AsyncAgentMeterClient(**self._where(project, settings))

    def sync(self, project: Project | None, **settings: Any) -> AgentMeterClient:
        """The sync client of the same project, to compare answers with."""
        return AgentMeterClient(**self._where(project, settings))

    def new_project(self, name: str = "async") -> Project:
        return self.admin.create_project(f"{name} {uuid.uuid4().hex[:8]}")


@pytest.fixture(scope="session")
def http_admin(live_server: LiveServer) -> Iterator[AgentMeterClient]:
    with live_server.client(retry_attempts=0) as admin:
        yield admin


@pytest.fixture(scope="session")
def embedded_admin(embedded_url: str) -> Iterator[AgentMeterClient]:
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
        return Backend("postgres", request.getfixturevalue("postgres_admin"), server=server)
    url = request.getfixturevalue("embedded_url")
    return Backend("embedded", request.getfixturevalue("embedded_admin"), url=url)


@pytest.fixture
def http_backend(live_server: LiveServer, http_admin: AgentMeterClient) -> Backend:
    return Backend("http", http_admin, server=live_server)


@pytest.fixture
def embedded_backend(embedded_url: str, embedded_admin: AgentMeterClient) -> Backend:
    return Backend("embedded", embedded_admin, url=embedded_url)


@pytest.fixture
def project(backend: Backend) -> Project:
    return backend.new_project()


def _load_tracker_conftest() -> ModuleType:
    path = Path(__file__).parent.parent / "tracker" / "conftest.py"
    spec = importlib.util.spec_from_file_location("agentmeter_tests_fault_proxy", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def fault_kit() -> ModuleType:
    """tests/tracker/conftest.py as a module: ``FaultProxy``, ``PASS``, ``ANSWER_500``..."""
    return _load_tracker_conftest()


@pytest.fixture
def proxy_factory(live_server: LiveServer, fault_kit: ModuleType) -> Iterator[Any]:
    """``proxy_factory(decide, **options)``: a started FaultProxy in front of the live server."""
    made: list[Any] = []

    def make(decide: Any = None, **options: Any) -> Any:
        proxy = fault_kit.FaultProxy(live_server.port, decide, **options).start()
        made.append(proxy)
        return proxy

    yield make
    for proxy in made:
        proxy.stop()
