"""Several `agentmeter serve` processes on one PostgreSQL database."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest

from agentmeter.testing import LiveServer


@pytest.fixture
def pg_servers(postgres_databases, tmp_path) -> Iterator[list[LiveServer]]:
    """Four servers sharing one fresh database (and one admin key)."""
    url = postgres_databases("scale")
    admin_key = f"am_admin_{secrets.token_urlsafe(24)}"
    servers: list[LiveServer] = []
    try:
        for index in range(4):
            log = tmp_path / f"server{index}.log"
            servers.append(LiveServer(url, admin_key=admin_key, log_path=log).start())
        yield servers
    finally:
        for server in servers:
            server.stop()


@pytest.fixture
def project_key(pg_servers) -> tuple[str, str]:
    project = pg_servers[0].client().create_project("scale")
    assert project.api_key is not None
    return project.id, project.api_key.get_secret_value()
