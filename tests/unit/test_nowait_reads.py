"""Reads for the event loop: they answer at once or refuse, and never write."""

from __future__ import annotations

import sqlite3
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from agentmeter.ledger import Ledger
from agentmeter.ledger.nowait import NoWaitReads, WouldWait
from agentmeter.server import create_app


@pytest.fixture
def ledger(sqlite_ledger: Ledger) -> Ledger:
    return sqlite_ledger  # tests/unit/conftest.py


def test_a_meter_read_now_is_the_meter(ledger: Ledger) -> None:
    assert ledger.get_meter_now("p", "u") is None
    ledger.increment_meter("p", "u", Decimal("0.0000025"))
    assert ledger.get_meter_now("p", "u") == ledger.get_meter("p", "u")


def test_a_read_now_sees_the_last_commit_not_a_write_in_progress(
    ledger: Ledger, tmp_path: Path
) -> None:
    ledger.increment_meter("p", "u", Decimal("1"))
    writer = sqlite3.connect(tmp_path / "ledger.db", isolation_level=None)
    try:
        writer.execute("BEGIN IMMEDIATE")  # holds the write lock, as a slow write would
        writer.execute("UPDATE user_meters SET current_usage = '99'")
        meter = ledger.get_meter_now("p", "u")  # no wait: WAL readers take no writer's lock
        assert meter is not None
        assert meter.current_usage == Decimal("1")
    finally:
        writer.execute("ROLLBACK")
        writer.close()


def test_a_read_that_would_wait_for_a_lock_refuses_at_once(tmp_path: Path) -> None:
    path = tmp_path / "plain.db"  # a rollback journal: a writer's lock does stop readers
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN EXCLUSIVE")
    reads = NoWaitReads(str(path))
    try:
        with pytest.raises(WouldWait):
            reads.read_one("SELECT x FROM t", ())
    finally:
        holder.execute("ROLLBACK")
        holder.close()
        reads.close()


def test_a_read_now_cannot_write(ledger: Ledger) -> None:
    with pytest.raises(WouldWait):
        ledger.nowait.read_one("DELETE FROM projects", ())
    assert [project.id for project in ledger.list_projects()] == ["p"]


def test_only_a_sqlite_file_is_read_now() -> None:
    memory = Ledger.open("sqlite://")
    try:
        with pytest.raises(WouldWait):
            memory.get_meter_now("p", "u")
    finally:
        memory.close()


def test_the_server_reads_on_a_worker_thread_when_a_read_now_refuses(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, key = ledger.create_project("Q", None, "q")
    ledger.increment_meter("q", "u", Decimal("0.3"))

    def refuse(*_: Any) -> None:
        raise WouldWait

    with TestClient(create_app(ledger)) as client:
        headers = {"Authorization": f"Bearer {key}"}
        fast = client.get("/api/meter/usage", params={"user_id": "u"}, headers=headers)
        monkeypatch.setattr(ledger.nowait, "read_one", refuse)
        slow = client.get("/api/meter/usage", params={"user_id": "u"}, headers=headers)
        missing = client.get("/api/meter/usage", params={"user_id": "v"}, headers=headers)
    assert fast.status_code == slow.status_code == 200
    assert fast.json() == slow.json()
    assert fast.json()["current_usage"] == "0.3"
    assert missing.status_code == 404
