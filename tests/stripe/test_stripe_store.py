"""The ledger's Stripe tables on SQLite and PostgreSQL, and the step from schema 7 to 8."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import inspect, select, update

from agentmeter.ledger import SCHEMA_VERSION, Ledger, SyncLogEntry
from agentmeter.ledger.rollup_schema import AGENT_USER, DETAIL
from agentmeter.ledger.schema import schema_version
from agentmeter.ledger.stripe_schema import stripe_metadata
from agentmeter.models import InstantPayEvent


def entry(identifier: str, value: str = "114", livemode: bool = False) -> SyncLogEntry:
    return SyncLogEntry(
        project_id="p",
        identifier=identifier,
        livemode=livemode,
        user_id="alice",
        customer_id="cus_A",
        event_name="ai_cost",
        value_kind="cost",
        granularity="day",
        period_start=1_000_000,
        period_end=2_000_000,
        value=value,
        stripe_request_id="req_1",
    )


def test_the_map_and_the_log_round_trip(project_ledger: Ledger) -> None:
    ledger = project_ledger
    ledger.map_stripe_customer("p", "alice", "cus_A")
    ledger.map_stripe_customer("p", "alice", "cus_B")  # a re-map replaces
    ledger.map_stripe_customer("p", "bob", "cus_C")
    ledger.map_stripe_customer("q", "alice", "cus_Q")
    assert ledger.stripe_customers("p") == {"alice": "cus_B", "bob": "cus_C"}
    assert ledger.unmap_stripe_customer("p", "bob") is True
    assert ledger.unmap_stripe_customer("p", "bob") is False
    assert ledger.stripe_customers("p") == {"alice": "cus_B"}

    ledger.record_stripe_sync(entry("am_1"))
    ledger.record_stripe_sync(entry("am_1", value="120"))  # --force: one row, the last value
    ledger.record_stripe_sync(entry("am_1", livemode=True))
    test_mode = ledger.stripe_sync_log("p", "ai_cost", False, 0, 3_000_000)
    assert [(row.identifier, row.value, row.stripe_request_id) for row in test_mode] == [
        ("am_1", "120", "req_1")
    ]
    assert test_mode[0].sent_at > 0
    assert len(ledger.stripe_sync_log("p", "ai_cost", True, 0, 3_000_000)) == 1
    assert ledger.stripe_sync_log("p", "ai_cost", False, 2_000_000, 3_000_000) == []  # no overlap
    assert ledger.stripe_sync_log("p", "other", False, 0, 3_000_000) == []


def test_a_users_latest_metadata_customer_is_found(project_ledger: Ledger) -> None:
    ledger = project_ledger
    common = {"project_id": "p", "agent_id": "a", "amount": "1"}
    ledger.record_events(
        [
            InstantPayEvent(user_id="u", metadata={"stripe_customer_id": "cus_Old"}, **common),
            InstantPayEvent(user_id="u", metadata={"stripe_customer_id": "cus_New"}, **common),
            InstantPayEvent(user_id="u", metadata={"other": 1}, **common),  # the latest: no key
            InstantPayEvent(
                user_id="v", metadata={"nested": {"stripe_customer_id": "x"}}, **common
            ),
            InstantPayEvent(user_id="w", **common),
        ]
    )
    found = ledger.stripe_customers_from_metadata("p", ["u", "v", "w", "nobody"])
    assert found == {"u": "cus_New"}


def test_deleting_a_project_deletes_its_stripe_rows(project_ledger: Ledger) -> None:
    ledger = project_ledger
    ledger.map_stripe_customer("p", "alice", "cus_A")
    ledger.record_stripe_sync(entry("am_1"))
    ledger.delete_project("p")
    assert ledger.stripe_customers("p") == {}
    assert ledger.stripe_sync_log("p", "ai_cost", False, 0, 3_000_000) == []


def test_a_version_7_ledger_gains_the_stripe_tables(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'v7.db'}"
    ledger = Ledger.open(url)
    ledger.record_events([InstantPayEvent(project_id="p", agent_id="a", user_id="u", amount="2")])
    with ledger.writing() as connection:
        stripe_metadata.drop_all(connection)
        DETAIL.table.drop(connection)  # version 9's table
        AGENT_USER.table.drop(connection)  # version 10's
        connection.execute(update(schema_version).values(version=7))
    ledger.close()

    again = Ledger.open(url)
    try:
        with again.reading() as connection:
            version = connection.execute(select(schema_version.c.version)).scalar_one()
            tables = set(inspect(connection).get_table_names())
        assert version == SCHEMA_VERSION == 10
        assert {"stripe_customers", "stripe_sync_log"} <= tables
        assert again.stats("p", "all").total_events == 1
        again.map_stripe_customer("p", "u", "cus_U")
        assert again.stripe_customers("p") == {"u": "cus_U"}
    finally:
        again.close()
