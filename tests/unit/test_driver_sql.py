"""The statements sent straight to the SQLite driver: same answers, same errors."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy.exc import OperationalError

from agentmeter.ledger import Ledger, driver_sql
from agentmeter.models import InstantPayEvent


def test_a_driver_error_is_raised_as_sqlalchemys(project_ledger: Ledger) -> None:
    """So the server answers a broken or locked database with 503, as before."""
    if project_ledger.dialect != "sqlite":
        pytest.skip("SQLite's driver only")
    with pytest.raises(OperationalError), project_ledger.writing() as connection:
        driver_sql.execute(connection, "SELECT * FROM no_such_table")
    with pytest.raises(OperationalError):
        driver_sql.read_one(project_ledger.engine, "SELECT * FROM no_such_table", ())


def test_one_event_is_stored_once_and_a_changed_resend_is_a_conflict(
    project_ledger: Ledger,
) -> None:
    """A one-event write learns from its insert alone whether the id was new."""
    event = InstantPayEvent(project_id="p", user_id="u", agent_id="a", amount=Decimal("0.3"))
    (first,) = project_ledger.record_events([event])
    (again,) = project_ledger.record_events([event])
    changed = event.model_copy(update={"amount": Decimal("0.4")})
    (conflict,) = project_ledger.record_events([changed])
    assert (first.duplicate, first.conflicts) == (False, ())
    assert (again.duplicate, again.conflicts, again.cost) == (True, (), Decimal("0.3"))
    assert conflict.duplicate
    assert conflict.conflicts
    meter = project_ledger.get_meter("p", "u")
    assert meter is not None
    assert meter.current_usage == Decimal("0.3")  # charged once


def test_a_meter_read_on_the_driver_is_the_meter(project_ledger: Ledger) -> None:
    assert project_ledger.get_meter("p", "nobody") is None
    project_ledger.set_threshold("p", "u", Decimal("10.50"))
    project_ledger.increment_meter("p", "u", Decimal("0.0000025"))
    meter = project_ledger.get_meter("p", "u")
    assert meter is not None
    assert (meter.threshold_amount, meter.current_usage) == (Decimal("10.50"), Decimal("0.0000025"))
    assert meter.updated_at is not None
    assert meter.last_reset_at is None
    project_ledger.reset_meter("p", "u")
    reset = project_ledger.get_meter("p", "u")
    assert reset is not None
    assert reset.current_usage == 0
    assert reset.last_reset_at is not None
