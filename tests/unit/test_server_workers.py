"""The write threads' hand-off and the routes served without FastAPI's handler."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from agentmeter.ledger import Ledger
from agentmeter.server import create_app
from agentmeter.server.workers import Workers

ADMIN = "am_admin_test_server_workers_0123456789"


def test_a_job_runs_on_a_worker_thread_and_its_result_or_error_comes_back() -> None:
    workers = Workers(2, name="test-workers")

    def boom() -> None:
        raise ValueError("refused")

    async def main() -> tuple[str, int]:
        name = await workers.run(lambda: threading.current_thread().name)
        total = sum(await asyncio.gather(*(workers.run(pow, n, 2) for n in range(10))))
        with pytest.raises(ValueError, match="refused"):
            await workers.run(boom)
        return name, total

    name, total = asyncio.run(main())
    assert name.startswith("test-workers-")
    assert total == sum(n * n for n in range(10))


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    ledger = Ledger.open(f"sqlite:///{tmp_path / 'ledger.db'}")
    ledger.ensure_project("p", "P")
    with TestClient(create_app(ledger, admin_key=ADMIN)) as test_client:
        yield test_client
    ledger.close()


def test_direct_routes_check_the_key_and_answer_errors_as_before(client: TestClient) -> None:
    headers = {"Authorization": f"Bearer {ADMIN}"}
    body = {"id": "evt_1", "project_id": "p", "user_id": "u", "agent_id": "a"}
    body |= {"payment_type": "instant_pay", "amount": "0.25"}
    assert client.get("/health").json()["status"] == "healthy"
    assert client.post("/api/meter/event", json=body).status_code == 401
    bad_key = {"Authorization": "Bearer am_proj_nope"}
    assert client.get("/api/meter/usage?project_id=p&user_id=u", headers=bad_key).status_code == 401
    created = client.post("/api/meter/event", json=body, headers=headers)
    assert created.status_code == 201
    assert created.json()["cost"] == "0.25"
    assert created.json()["timestamp"].endswith("Z")
    again = client.post("/api/meter/event", json=body, headers=headers)
    assert again.json()["duplicate"] is True
    conflict = client.post("/api/meter/event", json={**body, "amount": "1"}, headers=headers)
    assert conflict.status_code == 409
    invalid = client.post("/api/meter/event", json={**body, "amount": "x"}, headers=headers)
    assert invalid.status_code == 422
    assert invalid.json()["error"]["code"] == "validation_error"
    not_json = client.post("/api/meter/event", content=b"{", headers=headers)
    assert not_json.status_code == 400
    usage = client.get("/api/meter/usage?project_id=p&user_id=u", headers=headers)
    assert usage.json()["current_usage"] == "0.25"
    assert client.get("/api/meter/usage?project_id=p&user_id=x", headers=headers).status_code == 404
