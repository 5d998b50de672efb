"""The ledger's side of alerts, in process, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, func, select

from agentmeter.core.webhook_models import DeliveryStatus
from agentmeter.ledger import Ledger
from agentmeter.ledger.alert_schema import alert_metadata, spend_totals, webhook_events
from agentmeter.ledger.rollup_schema import rollup_metadata
from agentmeter.ledger.schema import schema_version
from agentmeter.models import InstantPayEvent

ALL_TYPES = ["meter.threshold_crossed", "project.spend_exceeded", "billing_record.created"]


@pytest.fixture
def ledger(project_ledger: Ledger) -> Ledger:
    return project_ledger  # tests/conftest.py: SQLite and PostgreSQL


def charge(ledger: Ledger, event_id: str, amount: str, user: str = "u") -> None:
    ledger.record_events(
        [InstantPayEvent(id=event_id, project_id="p", user_id=user, agent_id="a", amount=amount)]
    )


def stored_events(ledger: Ledger) -> list[dict[str, Any]]:
    with ledger.reading() as connection:
        bodies = connection.execute(select(webhook_events.c.body)).scalars()
        return [json.loads(body) for body in bodies]


def test_nothing_is_stored_for_a_project_without_endpoints(ledger: Ledger) -> None:
    ledger.set_threshold("p", "u", Decimal(1))
    charge(ledger, "e1", "5")
    assert stored_events(ledger) == []


def test_a_resent_event_neither_alerts_nor_counts_twice(ledger: Ledger) -> None:
    ledger.add_endpoint("p", "http://127.0.0.1:9/", ALL_TYPES, True, None, "whsec_dGVzdA==")
    ledger.set_alert_settings("p", {"daily_limit": Decimal(10)})
    ledger.set_threshold("p", "u", Decimal(4))
    charge(ledger, "e1", "6")
    charge(ledger, "e1", "6")  # the same id again: a duplicate
    charge(ledger, "e2", "4")
    types = sorted(event["type"] for event in stored_events(ledger))
    assert types == ["meter.threshold_crossed"] * 3 + ["project.spend_exceeded"]
    with ledger.reading() as connection:
        day = connection.execute(
            select(spend_totals.c.amount).where(spend_totals.c.period == "day")
        ).scalar_one()
    assert day == Decimal(10)


def test_increment_meter_alerts_too(ledger: Ledger) -> None:
    ledger.add_endpoint("p", "http://127.0.0.1:9/", ALL_TYPES, True, None, "whsec_dGVzdA==")
    ledger.set_alert_settings("p", {"threshold_shares": [Decimal(100)]})
    ledger.set_threshold("p", "u", Decimal("2.50"))
    ledger.increment_meter("p", "u", Decimal("2.50"))
    (event,) = stored_events(ledger)
    assert event["data"]["share"] == "100"
    assert event["data"]["current_usage"] == "2.50"


def test_alert_settings_change_only_what_is_given(ledger: Ledger) -> None:
    assert ledger.alert_settings("p").threshold_shares == [Decimal(50), Decimal(80), Decimal(100)]
    ledger.set_alert_settings("p", {"daily_limit": Decimal("9.99")})
    ledger.set_alert_settings("p", {"threshold_shares": [Decimal(90)]})
    settings = ledger.alert_settings("p")
    assert (settings.threshold_shares, settings.daily_limit) == ([Decimal(90)], Decimal("9.99"))
    ledger.set_alert_settings("p", {"daily_limit": None})
    assert ledger.alert_settings("p").daily_limit is None


def test_one_sender_at_a_time_holds_a_delivery(ledger: Ledger) -> None:
    endpoint = ledger.add_endpoint(
        "p", "http://127.0.0.1:9/", ALL_TYPES, True, None, "whsec_dGVzdA=="
    )
    delivery = ledger.send_test("p", endpoint.id)
    (claimed,) = ledger.claim_due(lease_micros=200_000)
    assert claimed.id == delivery.id
    assert "whsec" not in repr(claimed)
    assert ledger.claim_due(lease_micros=200_000) == []  # leased to the first
    time.sleep(0.25)
    (again,) = ledger.claim_due(lease_micros=200_000)  # the lease ran out
    ledger.finish_attempt(
        again.id, status=DeliveryStatus.DELIVERED, status_code=200, error=None, next_attempt_at=None
    )
    assert ledger.claim_due(lease_micros=200_000) == []
    done = ledger.get_delivery("p", delivery.id)
    assert (done.status, done.attempts, done.delivered_at is not None) == ("delivered", 1, True)


def test_deleting_the_project_deletes_its_alerts_and_webhooks(ledger: Ledger) -> None:
    ledger.add_endpoint("p", "http://127.0.0.1:9/", ALL_TYPES, True, None, "whsec_dGVzdA==")
    ledger.set_threshold("p", "u", Decimal(1))
    charge(ledger, "e1", "2")
    ledger.delete_project("p")
    with ledger.reading() as connection:
        for table in alert_metadata.sorted_tables:
            assert connection.execute(select(func.count()).select_from(table)).scalar_one() == 0


def test_a_version_5_ledger_gets_its_spend_totals_from_its_events(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    ledger = Ledger.open(url)
    ledger.ensure_project("p", "P")
    for index, amount in enumerate(["1.25", "2.50", "0.0001"]):
        charge(ledger, f"e{index}", amount)
    ledger.close()
    engine = create_engine(url)
    with engine.begin() as connection:  # as version 5 left it
        alert_metadata.drop_all(connection)
        rollup_metadata.drop_all(connection)
        connection.execute(schema_version.update().values(version=5))
    engine.dispose()
    again = Ledger.open(url)
    try:
        with again.reading() as connection:
            totals = dict(
                connection.execute(select(spend_totals.c.period, spend_totals.c.amount)).all()
            )
        assert totals == {"day": Decimal("3.7501"), "month": Decimal("3.7501")}
        assert again.stats("p", "all").total_events == 3
    finally:
        again.close()
