"""Shared fixtures: a clean environment, a fake server, and clients that never sleep.

Test modules take what they need as fixtures (``api_key``, ``base_url``,
``server.api_key``...) rather than importing this file: several conftest.py
files live under tests/, so ``import conftest`` would be ambiguous.
"""

from __future__ import annotations

import os
from functools import partialmethod

import pytest
import responses

from agentmeter import AgentMeterClient
from agentmeter.config import ENVIRONMENT
from agentmeter.transport.http import HttpTransport
from agentmeter.transport.retry import RetryPolicy

BASE_URL = "http://meter.test"
# Deliberately not shaped like an am_proj_ key: it must be masked because it
# is *the* key, not because it looks like one.
API_KEY = "sk-test-9f8e7d6c5b4a3210"


class FakeServer(responses.RequestsMock):
    """The server at ``base_url``, faked by responses; answers may be added by path."""

    base_url = BASE_URL
    api_key = API_KEY  # the key its clients send

    def add(self, method=None, url=None, *args, **kwargs):
        if isinstance(url, str) and url.startswith("/"):
            url = self.base_url + url
        return super().add(method, url, *args, **kwargs)

    delete = partialmethod(add, responses.DELETE)
    get = partialmethod(add, responses.GET)
    patch = partialmethod(add, responses.PATCH)
    post = partialmethod(add, responses.POST)
    put = partialmethod(add, responses.PUT)


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch):
    """No AGENTMETER_* variable of the developer's leaks into a test."""
    for name in ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def api_key():
    return API_KEY


@pytest.fixture
def base_url():
    return BASE_URL


@pytest.fixture
def server():
    """The fake server; every answer added must be asked for."""
    with FakeServer() as mock:
        yield mock


@pytest.fixture
def sleeps():
    """The waits of make_client's retries, recorded instead of slept."""
    return []


@pytest.fixture
def make_client(sleeps):
    """A client on the fake server whose retries record their waits (jitter 0)."""

    def make(**policy) -> AgentMeterClient:
        policy.setdefault("random", lambda: 0.0)
        retry = RetryPolicy(sleep=sleeps.append, **policy)
        return AgentMeterClient(
            api_key=API_KEY,
            base_url=BASE_URL,
            project_id="proj_1",
            agent_id="agent_1",
            user_id="user_1",
            transport=HttpTransport(BASE_URL, API_KEY, retry=retry),
        )

    return make


@pytest.fixture
def client():
    """A client built from settings, as users build one; it never retries."""
    with AgentMeterClient(
        api_key=API_KEY,
        base_url=BASE_URL,
        project_id="proj_1",
        agent_id="agent_1",
        user_id="user_1",
        retry_attempts=0,
    ) as made:
        yield made


@pytest.fixture(autouse=True, scope="session")
def _private_home(tmp_path_factory):
    """Default ledger and outbox files go to a temp dir, never the developer's home."""
    import agentmeter.delivery.outbox
    import agentmeter.transport.local

    home = tmp_path_factory.mktemp("home") / ".agentmeter"
    saved = agentmeter.delivery.outbox.DEFAULT_OUTBOX, agentmeter.transport.local.DEFAULT_LEDGER
    agentmeter.delivery.outbox.DEFAULT_OUTBOX = home / "outbox.db"
    agentmeter.transport.local.DEFAULT_LEDGER = home / "ledger.db"
    yield home
    agentmeter.delivery.outbox.DEFAULT_OUTBOX, agentmeter.transport.local.DEFAULT_LEDGER = saved


@pytest.fixture(scope="session")
def postgres_url():
    """A PostgreSQL database URL: AGENTMETER_TEST_PG_URL (.ci/run starts a cluster),
    else a throwaway cluster started here. Skipped only when AGENTMETER_TEST_PG=0."""
    if os.environ.get("AGENTMETER_TEST_PG") == "0":
        pytest.skip("PostgreSQL tests are off (AGENTMETER_TEST_PG=0)")
    given = os.environ.get("AGENTMETER_TEST_PG_URL")
    if given:
        yield given
        return
    from agentmeter.testing import PostgresCluster

    with PostgresCluster() as cluster:
        yield cluster.url()


@pytest.fixture(scope="session")
def postgres_databases(postgres_url):
    """Makes fresh databases on the test cluster: ``postgres_databases("name") -> url``."""
    import itertools

    import psycopg

    admin = postgres_url.replace("postgresql+psycopg://", "postgresql://").rsplit("/", 1)[0]
    counter = itertools.count()

    def create(prefix: str = "test") -> str:
        name = f"{prefix}_{os.getpid()}_{next(counter)}"
        with psycopg.connect(f"{admin}/postgres", autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return postgres_url.rsplit("/", 1)[0] + f"/{name}"

    return create


@pytest.fixture(params=["sqlite", "postgres"])
def project_ledger(request, tmp_path):
    """A fresh ledger holding project "p", on a SQLite file and on PostgreSQL."""
    from agentmeter.ledger import Ledger

    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'ledger.db'}"
    else:
        url = request.getfixturevalue("postgres_databases")("ledger")
    opened = Ledger.open(url)
    opened.ensure_project("p", "P")
    yield opened
    opened.close()
