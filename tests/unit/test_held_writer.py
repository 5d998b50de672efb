"""A SQLite file's writes share one held connection: same transactions, same errors."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from agentmeter.ledger import Ledger, driver_sql
from agentmeter.ledger.schema import user_meters
from agentmeter.models import InstantPayEvent
from agentmeter.server import create_app


@pytest.fixture
def ledger(sqlite_ledger: Ledger) -> Ledger:
    return sqlite_ledger  # tests/unit/conftest.py


def _event(number: int, amount: str = "0.25") -> InstantPayEvent:
    return InstantPayEvent(
        id=f"evt_{number}", project_id="p", user_id="u", agent_id="a", amount=Decimal(amount)
    )


def _usage(ledger: Ledger) -> Decimal:
    meter = ledger.get_meter("p", "u")
    return Decimal(0) if meter is None else meter.current_usage


@pytest.fixture
def lock_holder(ledger: Ledger, tmp_path: Path) -> Iterator[sqlite3.Connection]:
    """Another connection holding the write lock; the ledger's writer waits 50 ms, not 30 s."""
    assert ledger.writer is not None
    with ledger.writing() as connection:  # the held connection exists from here on
        driver_sql.driver_of(connection).execute("PRAGMA busy_timeout=50")
    holder = sqlite3.connect(tmp_path / "ledger.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    yield holder
    if holder.in_transaction:
        holder.execute("ROLLBACK")
    holder.close()


def test_writes_use_one_connection_outside_the_pool(ledger: Ledger) -> None:
    with ledger.writing() as first:
        pass
    ledger.record_events([_event(1)])
    with ledger.writing() as again:
        assert again is first
        assert driver_sql.driver_of(again).in_transaction  # BEGIN IMMEDIATE on the driver
    assert ledger.engine.pool.checkedout() == 0  # type: ignore[attr-defined]


def test_sqlalchemy_and_driver_statements_commit_together(ledger: Ledger) -> None:
    ledger.record_events([_event(1)])
    with ledger.writing() as connection:
        driver_sql.execute(connection, "UPDATE user_meters SET current_usage = '7'")
        read = connection.execute(select(user_meters.c.current_usage)).scalar_one()
        assert read == Decimal("7")  # SQLAlchemy sees the driver's uncommitted write
    assert _usage(ledger) == Decimal("7")


def test_an_error_rolls_back_both_kinds_of_statement_and_the_next_write_works(
    ledger: Ledger,
) -> None:
    ledger.record_events([_event(1)])

    def write_then_fail() -> None:
        with ledger.writing() as connection:
            driver_sql.execute(connection, "UPDATE user_meters SET current_usage = '99'")
            connection.execute(user_meters.update().values(threshold_amount=Decimal("5")))
            raise RuntimeError("refused halfway")

    with pytest.raises(RuntimeError):
        write_then_fail()
    meter = ledger.get_meter("p", "u")
    assert meter is not None
    assert (meter.current_usage, meter.threshold_amount) == (Decimal("0.25"), None)
    ledger.record_events([_event(2)])
    assert _usage(ledger) == Decimal("0.50")


def test_a_locked_database_is_sqlalchemys_error_and_nothing_is_half_done(
    ledger: Ledger, lock_holder: sqlite3.Connection
) -> None:
    with pytest.raises(OperationalError):
        ledger.record_events([_event(1)])
    lock_holder.execute("ROLLBACK")
    (stored,) = ledger.record_events([_event(1)])
    assert not stored.duplicate
    assert _usage(ledger) == Decimal("0.25")


def test_the_server_answers_a_locked_database_with_503(
    ledger: Ledger, lock_holder: sqlite3.Connection
) -> None:
    admin = "am_admin_test_held_writer_0123456789"
    body = {"id": "evt_locked", "project_id": "p", "user_id": "u", "agent_id": "a"}
    body |= {"payment_type": "instant_pay", "amount": "0.25"}
    with TestClient(create_app(ledger, admin_key=admin)) as client:
        headers = {"Authorization": f"Bearer {admin}"}
        answer = client.post("/api/meter/event", json=body, headers=headers)
        assert answer.status_code == 503
        assert answer.headers["Retry-After"] == "1"
        lock_holder.execute("ROLLBACK")
        assert client.post("/api/meter/event", json=body, headers=headers).status_code == 201
    assert _usage(ledger) == Decimal("0.25")


def test_close_closes_the_held_connection(tmp_path: Path) -> None:
    opened = Ledger.open(f"sqlite:///{tmp_path / 'closing.db'}")
    with opened.writing() as connection:
        driver = driver_sql.driver_of(connection)
    opened.close()
    with pytest.raises(sqlite3.ProgrammingError):
        driver.execute("SELECT 1")


def test_in_memory_and_forked_ledgers_do_not_share_the_held_connection(tmp_path: Path) -> None:
    memory = Ledger.open("sqlite://")
    assert memory.writer is None  # one shared connection already (StaticPool)
    memory.close()
    opened = Ledger.open(f"sqlite:///{tmp_path / 'fork.db'}")
    with opened.writing() as parents:
        pass
    opened.reset_after_fork()  # as a forked child does: the parent's is left alone
    with opened.writing() as childs:
        assert childs is not parents
    driver_sql.driver_of(parents).execute("SELECT 1")  # still open
    parents.close()
    opened.close()
