"""A single-event write on the event loop: only when nothing makes it wait, else on a thread."""

from __future__ import annotations

import asyncio
import sqlite3
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from agentmeter.ledger import Ledger, driver_sql
from agentmeter.ledger.nowait import WouldWait
from agentmeter.models import InstantPayEvent
from agentmeter.server import create_app
from agentmeter.server.in_flight import CountRequests, InFlight
from agentmeter.server.workers import Workers


@pytest.fixture
def ledger(sqlite_ledger: Ledger) -> Ledger:
    return sqlite_ledger  # tests/unit/conftest.py


def _event(number: int) -> InstantPayEvent:
    return InstantPayEvent(
        id=f"evt_{number}", project_id="p", user_id="u", agent_id="a", amount=Decimal("0.25")
    )


def _body(number: int) -> dict[str, Any]:
    return {
        "id": f"evt_{number}", "project_id": "p", "user_id": "u", "agent_id": "a",
        "payment_type": "instant_pay", "amount": "0.25",
    }  # fmt: skip


def _count(ledger: Ledger) -> int:
    meter = ledger.get_meter("p", "u")
    return 0 if meter is None else int(meter.current_usage / Decimal("0.25"))


def _busy_timeout(ledger: Ledger) -> int:
    with ledger.writing() as connection:
        return int(driver_sql.execute(connection, "PRAGMA busy_timeout").fetchone()[0])


def test_a_write_that_would_wait_for_another_connection_refuses_and_stores_nothing(
    ledger: Ledger, tmp_path: Path
) -> None:
    waits = _busy_timeout(ledger)
    holder = sqlite3.connect(tmp_path / "ledger.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(WouldWait):
            ledger.record_events([_event(1)], wait=False)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert _busy_timeout(ledger) == waits  # the writer waits as long as before
    assert _count(ledger) == 0
    (stored,) = ledger.record_events([_event(1)], wait=False)
    assert not stored.duplicate
    assert _count(ledger) == 1


def test_a_write_that_would_wait_for_this_process_refuses(ledger: Ledger) -> None:
    with ledger.writing(), pytest.raises(WouldWait):  # the process's write lock is taken
        ledger.record_events([_event(1)], wait=False)
    assert _count(ledger) == 0


def test_only_a_sqlite_file_writes_without_waiting(tmp_path: Path) -> None:
    memory = Ledger.open("sqlite://")
    memory.ensure_project("p", "P")
    with pytest.raises(WouldWait):
        memory.record_events([_event(1)], wait=False)
    assert not memory.record_events([_event(1)])[0].duplicate
    memory.close()


@pytest.fixture
def hops(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the functions handed to the write threads."""
    handed: list[str] = []
    run = Workers.run

    async def counted(self: Workers, function: Any, *args: Any) -> Any:
        handed.append(function.__name__)
        return await run(self, function, *args)

    monkeypatch.setattr(Workers, "run", counted)
    return handed


ADMIN = "am_admin_test_write_on_loop_0123456789"


def test_the_only_request_in_progress_writes_on_the_loop(ledger: Ledger, hops: list[str]) -> None:
    with TestClient(create_app(ledger, admin_key=ADMIN)) as client:
        admin = {"Authorization": f"Bearer {ADMIN}"}
        key = client.post("/projects", json={"name": "Q", "id": "q"}, headers=admin).json()
        project = {"Authorization": f"Bearer {key['api_key']}"}
        body = _body(1) | {"project_id": "q"}
        first = client.post("/api/meter/event", json=body, headers=project)
        again = client.post("/api/meter/event", json=body, headers=project)
        assert (first.status_code, again.status_code) == (201, 201)
        assert (first.json()["duplicate"], again.json()["duplicate"]) == (False, True)
        assert hops == []  # no thread: written on the loop
        conflict = client.post("/api/meter/event", json=body | {"amount": "1"}, headers=project)
        assert conflict.status_code == 409
        client.post("/api/meter/event", json=_body(2), headers=admin)
        assert hops == ["record_event"]  # an admin's write may look its project up: a thread


def test_a_write_that_would_wait_goes_to_a_thread_and_a_locked_database_is_still_503(
    ledger: Ledger, tmp_path: Path, hops: list[str]
) -> None:
    with TestClient(create_app(ledger, admin_key=ADMIN)) as client:
        admin = {"Authorization": f"Bearer {ADMIN}"}
        key = client.post("/projects", json={"name": "Q", "id": "q"}, headers=admin).json()
        project = {"Authorization": f"Bearer {key['api_key']}"}
        with ledger.writing() as connection:  # the thread's write waits 50 ms, not 30 s
            driver_sql.execute(connection, "PRAGMA busy_timeout=50")
        holder = sqlite3.connect(tmp_path / "ledger.db", isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        body = _body(1) | {"project_id": "q"}
        answer = client.post("/api/meter/event", json=body, headers=project)
        assert (answer.status_code, hops) == (503, ["record_event"])
        holder.execute("ROLLBACK")
        holder.close()
        assert client.post("/api/meter/event", json=body, headers=project).status_code == 201


def test_requests_in_progress_are_counted() -> None:
    counter = InFlight()
    seen: list[bool] = []
    release = asyncio.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(counter.alone())
        if scope["path"] == "/slow":
            await release.wait()

    middleware = CountRequests(app, counter)

    async def main() -> None:
        slow = asyncio.create_task(middleware({"type": "http", "path": "/slow"}, None, None))
        await asyncio.sleep(0)
        await middleware({"type": "http", "path": "/fast"}, None, None)
        release.set()
        await slow
        await middleware({"type": "lifespan", "path": ""}, None, None)

    asyncio.run(main())
    assert seen == [True, False, False]  # the lifespan is no request: 0 in progress
    assert counter.count == 0
