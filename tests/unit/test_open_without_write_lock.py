"""Opening a ledger at the current schema version, and finding the embedded default
project, take no write lock: a read command on a ledger another process is writing
does not wait for that process (it waited up to SQLite's 30 s busy timeout)."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from agentmeter import AgentMeterClient
from agentmeter.ledger import Ledger


@pytest.fixture
def locked_ledger(tmp_path: Path) -> Iterator[str]:
    """A ledger file whose write lock another connection holds (BEGIN IMMEDIATE)."""
    path = tmp_path / "ledger.db"
    url = f"sqlite:///{path}"
    ledger = Ledger.open(url)
    ledger.ensure_project("default", "Default project")
    ledger.close()
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    yield url
    writer.execute("ROLLBACK")
    writer.close()


def finishes_within(seconds: float, work: Callable[[], Any]) -> Any:
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = work()
        except Exception as exc:  # reported below
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), "waited for the write lock"
    assert "error" not in outcome, outcome.get("error")
    return outcome["value"]


def test_opening_a_current_ledger_takes_no_write_lock(locked_ledger: str) -> None:
    def open_and_read() -> int:
        ledger = Ledger.open(locked_ledger)
        try:
            return ledger.stats("default", "all").total_events
        finally:
            ledger.close()

    assert finishes_within(10, open_and_read) == 0


def test_the_embedded_client_reads_a_busy_ledger(locked_ledger: str) -> None:
    def report() -> list[Any]:
        with AgentMeterClient(base_url=locked_ledger) as client:
            return client.get_report(group_by=["metadata.model"])

    assert finishes_within(10, report) == []
