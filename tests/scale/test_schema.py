"""The schema is created on first start, versioned, and upgraded without losing data."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update

from agentmeter.ledger import SCHEMA_VERSION, Ledger
from agentmeter.ledger.schema import schema_version
from agentmeter.models import APIRequestPayEvent


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/ledger.db"
    return request.getfixturevalue("postgres_databases")("schema")


def _event() -> APIRequestPayEvent:
    return APIRequestPayEvent(project_id="p", agent_id="a", user_id="u", unit_price="0.5")


def test_first_open_creates_the_current_version(ledger_url):
    ledger = Ledger.open(ledger_url)
    with ledger.reading() as connection:
        assert connection.execute(select(schema_version.c.version)).scalar_one() == SCHEMA_VERSION
    ledger.close()


def test_reopening_keeps_every_row(ledger_url):
    ledger = Ledger.open(ledger_url)
    ledger.record_events([_event(), _event()])
    ledger.close()
    again = Ledger.open(ledger_url)
    assert again.stats("p", "all").total_events == 2
    again.close()


def test_a_ledger_newer_than_the_code_is_refused_clearly(ledger_url):
    ledger = Ledger.open(ledger_url)
    with ledger.writing() as connection:
        connection.execute(update(schema_version).values(version=SCHEMA_VERSION + 1))
    ledger.close()
    with pytest.raises(RuntimeError, match="newer than this agentmeter"):
        Ledger.open(ledger_url)
