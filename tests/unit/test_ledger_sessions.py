"""Dashboard sessions in the ledger: only hashes stored, expired ones dead and purged."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, select

from agentmeter.ledger import SCHEMA_VERSION, DashboardSession, Ledger, hash_key
from agentmeter.ledger.alert_schema import alert_metadata
from agentmeter.ledger.rollup_schema import rollup_metadata
from agentmeter.ledger.schema import dashboard_sessions, metadata, schema_version
from agentmeter.ledger.stripe_schema import stripe_metadata
from agentmeter.models import APIRequestPayEvent

HOUR = timedelta(hours=1)
ADMIN_HASH = hash_key("am_admin_test")
PROJECT_HASH = hash_key("am_proj_test")


@pytest.fixture
def ledger_file(tmp_path: Path) -> Path:
    return tmp_path / "l.db"


@pytest.fixture
def ledger(ledger_file: Path) -> Iterator[Ledger]:
    opened = Ledger.open(f"sqlite:///{ledger_file}")
    yield opened
    opened.close()


def _expired_session(ledger: Ledger, key_hash: str = ADMIN_HASH) -> str:
    """A session that is already over (a lifetime of 1 µs, then a short wait)."""
    token, _ = ledger.create_session(
        kind="admin", project_id=None, key_hash=key_hash, lifetime=timedelta(microseconds=1)
    )
    time.sleep(0.005)
    return token


def _roundtrip(ledger: Ledger) -> None:
    before = datetime.now(timezone.utc)
    token, made = ledger.create_session(
        kind="project", project_id="proj_1", key_hash=PROJECT_HASH, lifetime=HOUR
    )
    found = ledger.find_session(token)
    assert found == made
    assert (found.kind, found.project_id, found.key_hash) == ("project", "proj_1", PROJECT_HASH)
    assert found.expires_at.tzinfo is not None
    assert before + HOUR <= found.expires_at <= datetime.now(timezone.utc) + HOUR
    assert len(token) >= 43
    assert len(found.csrf_token) >= 43
    assert token != found.csrf_token
    admin_token, admin = ledger.create_session(
        kind="admin", project_id=None, key_hash=ADMIN_HASH, lifetime=HOUR
    )
    assert ledger.find_session(admin_token) == admin
    assert admin.project_id is None
    assert admin_token != token
    assert admin.csrf_token != found.csrf_token


def test_a_session_is_found_by_its_token(ledger: Ledger) -> None:
    _roundtrip(ledger)


def test_a_session_is_found_on_postgresql(postgres_databases: Callable[[str], str]) -> None:
    ledger = Ledger.open(postgres_databases("sessions"))
    try:
        _roundtrip(ledger)
        assert ledger.find_session(_expired_session(ledger)) is None
        assert ledger.delete_sessions_of_key(PROJECT_HASH) == 1
        assert ledger.purge_sessions() == 1
    finally:
        ledger.close()


def test_an_expired_session_is_not_found(ledger: Ledger) -> None:
    assert ledger.find_session(_expired_session(ledger)) is None


def test_signing_out_ends_the_session(ledger: Ledger) -> None:
    token, _ = ledger.create_session(
        kind="admin", project_id=None, key_hash=ADMIN_HASH, lifetime=HOUR
    )
    other, _ = ledger.create_session(
        kind="admin", project_id=None, key_hash=ADMIN_HASH, lifetime=HOUR
    )
    ledger.delete_session(token)
    assert ledger.find_session(token) is None
    assert ledger.find_session(other) is not None
    ledger.delete_session(token)  # again, and unknown tokens: no-ops
    ledger.delete_session("no such token")
    ledger.delete_session("")


def test_revoking_a_key_ends_its_sessions_only(ledger: Ledger) -> None:
    tokens = [
        ledger.create_session(
            kind="project", project_id="proj_1", key_hash=PROJECT_HASH, lifetime=HOUR
        )[0]
        for _ in range(3)
    ]
    admin, _ = ledger.create_session(
        kind="admin", project_id=None, key_hash=ADMIN_HASH, lifetime=HOUR
    )
    assert ledger.delete_sessions_of_key(PROJECT_HASH) == 3
    assert [ledger.find_session(token) for token in tokens] == [None] * 3
    assert ledger.find_session(admin) is not None
    assert ledger.delete_sessions_of_key(PROJECT_HASH) == 0


def _short_sessions(ledger: Ledger, key_hashes: list[str]) -> None:
    """Sessions that all expire soon, then are expired (none purged the others)."""
    lifetime = timedelta(milliseconds=300)
    made = [
        ledger.create_session(kind="admin", project_id=None, key_hash=key, lifetime=lifetime)[1]
        for key in key_hashes
    ]
    wait = max(session.expires_at for session in made) - datetime.now(timezone.utc)
    time.sleep(max(wait.total_seconds(), 0) + 0.005)


def _stored_sessions(ledger: Ledger) -> int:
    with ledger.reading() as connection:
        return len(connection.execute(select(dashboard_sessions)).all())


def test_purge_deletes_the_expired_sessions_only(ledger: Ledger) -> None:
    live, _ = ledger.create_session(
        kind="admin", project_id=None, key_hash=ADMIN_HASH, lifetime=HOUR
    )
    _short_sessions(ledger, [ADMIN_HASH, PROJECT_HASH])
    assert _stored_sessions(ledger) == 3
    assert ledger.purge_sessions() == 2
    assert ledger.purge_sessions() == 0
    assert ledger.find_session(live) is not None
    assert _stored_sessions(ledger) == 1


def test_creating_a_session_purges_the_expired(ledger: Ledger) -> None:
    _short_sessions(ledger, [ADMIN_HASH, ADMIN_HASH])
    assert _stored_sessions(ledger) == 2
    ledger.create_session(kind="admin", project_id=None, key_hash=ADMIN_HASH, lifetime=HOUR)
    assert _stored_sessions(ledger) == 1
    assert ledger.purge_sessions() == 0


@pytest.mark.parametrize(
    "token",
    ["", " ", "x" * 201, "x" * 100_000, "é" * 43, "\ud800\udfff", "\x00", "' OR 1=1 --"],
)
def test_odd_tokens_find_nothing(ledger: Ledger, token: str) -> None:
    ledger.create_session(kind="admin", project_id=None, key_hash=ADMIN_HASH, lifetime=HOUR)
    assert ledger.find_session(token) is None
    ledger.delete_session(token)


@pytest.mark.parametrize(
    ("kind", "project_id"),
    [("admin", "proj_1"), ("project", None), ("project", ""), ("viewer", None), ("", None)],
)
def test_a_kind_must_fit_its_project(ledger: Ledger, kind: str, project_id: str | None) -> None:
    with pytest.raises(ValueError, match="session"):
        ledger.create_session(kind=kind, project_id=project_id, key_hash=ADMIN_HASH, lifetime=HOUR)


def test_the_clear_token_is_stored_nowhere(ledger: Ledger, ledger_file: Path) -> None:
    token, session = ledger.create_session(
        kind="project", project_id="proj_1", key_hash=PROJECT_HASH, lifetime=HOUR
    )
    ledger.close()  # checkpoints the WAL into the file
    with sqlite3.connect(ledger_file) as db:
        rows = db.execute("SELECT * FROM dashboard_sessions").fetchall()
    assert len(rows) == 1
    assert token not in [str(value) for value in rows[0]]
    assert session.csrf_token in rows[0]  # a form needs it back; it opens nothing alone
    for path in ledger_file.parent.iterdir():
        assert token.encode() not in path.read_bytes(), path


def test_the_repr_hides_the_secrets(ledger: Ledger) -> None:
    _, session = ledger.create_session(
        kind="project", project_id="proj_1", key_hash=PROJECT_HASH, lifetime=HOUR
    )
    shown = repr(session)
    assert session.csrf_token not in shown
    assert PROJECT_HASH not in shown
    assert "proj_1" in shown
    assert "project" in shown
    assert isinstance(session, DashboardSession)


def test_a_version_4_ledger_is_upgraded_to_5_keeping_every_row(ledger_file: Path) -> None:
    url = f"sqlite:///{ledger_file}"
    ledger = Ledger.open(url)
    ledger.record_events(
        [
            APIRequestPayEvent(project_id="p", agent_id="a", user_id=f"u{n}", unit_price="0.25")
            for n in range(10)
        ]
    )
    ledger.close()
    _downgrade_to_version_4(url)

    again = Ledger.open(url)
    try:
        with again.reading() as connection:
            version = connection.execute(select(schema_version.c.version)).scalar_one()
            indexes = inspect(connection).get_indexes("dashboard_sessions")
        assert version == SCHEMA_VERSION == 10
        assert {index["name"] for index in indexes} == {"ix_dashboard_sessions_expires_at"}
        stats = again.stats("p", "all")
        assert (stats.total_events, stats.total_cost) == (10, Decimal("2.50"))
        token, _ = again.create_session(
            kind="admin", project_id=None, key_hash=ADMIN_HASH, lifetime=HOUR
        )
        assert again.find_session(token) is not None
    finally:
        again.close()


def _downgrade_to_version_4(url: str) -> None:
    """A ledger as version 4 left it: today's tables but the sessions, marked 4."""
    engine = create_engine(url)
    with engine.begin() as connection:
        dashboard_sessions.drop(connection)
        alert_metadata.drop_all(connection)  # version 6's tables
        rollup_metadata.drop_all(connection)  # version 7's
        stripe_metadata.drop_all(connection)  # version 8's
        connection.execute(schema_version.update().values(version=4))
        tables = set(inspect(connection).get_table_names())
    engine.dispose()
    assert "dashboard_sessions" not in tables
    assert tables == {table for table in metadata.tables if table != "dashboard_sessions"}
