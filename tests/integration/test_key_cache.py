"""Keys remembered by a live server: a deleted project's keys stop working, at once when
deleted through this server, within AGENTMETER_KEY_CACHE_SECONDS when deleted elsewhere."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
import requests

from agentmeter.ledger import Ledger
from agentmeter.server.key_cache import KEY_CACHE_ENV
from agentmeter.testing import LiveServer


def _new_project(server: LiveServer) -> tuple[str, str]:
    answer = requests.post(
        f"{server.url}/projects",
        json={"name": "cached", "id": f"proj_{uuid.uuid4().hex[:10]}"},
        headers={"Authorization": f"Bearer {server.admin_key}"},
        timeout=10,
    )
    assert answer.status_code == 201, answer.text
    return answer.json()["id"], answer.json()["api_key"]


def _status_with(server: LiveServer, key: str, project_id: str) -> int:
    answer = requests.get(
        f"{server.url}/projects/{project_id}",
        headers={"Authorization": f"Bearer {key}"},
        timeout=10,
    )
    return answer.status_code


def test_a_project_deleted_through_the_server_loses_its_keys_at_once(live_server) -> None:
    project_id, key = _new_project(live_server)
    assert _status_with(live_server, key, project_id) == 200  # now remembered
    deleted = requests.delete(
        f"{live_server.url}/projects/{project_id}",
        headers={"Authorization": f"Bearer {live_server.admin_key}"},
        timeout=10,
    )
    assert deleted.status_code == 200
    assert _status_with(live_server, key, project_id) == 401


@pytest.mark.parametrize("bound", [0.0, 1.0])
def test_a_project_deleted_elsewhere_loses_its_keys_within_the_bound(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bound: float
) -> None:
    """Deleted through the database (as another server or a tool would), the key
    works at most ``bound`` seconds more; with 0 it stops at once."""
    monkeypatch.setenv(KEY_CACHE_ENV, str(bound))
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    with LiveServer(url) as server:
        project_id, key = _new_project(server)
        assert _status_with(server, key, project_id) == 200  # now remembered
        other = Ledger.open(url)
        try:
            other.delete_project(project_id)
        finally:
            other.close()
        time.sleep(bound)  # past the bound (the entry was made before the request above)
        assert _status_with(server, key, project_id) == 401
