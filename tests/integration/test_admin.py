"""Projects and billing records, over HTTP and embedded."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest

from agentmeter.errors import (
    AgentMeterValidationError,
    ConflictError,
    NotFoundError,
    UnprocessableEntityError,
)
from agentmeter.models import BillingStatus, InstantPayEvent

from .conftest import BASE_TIME

# ----------------------------------------------------------------- projects


def test_create_a_project_without_an_id(backend):
    project = backend.admin.create_project("Acme agents", description="the shop")

    assert project.id.startswith("proj_")
    assert (project.name, project.description) == ("Acme agents", "the shop")
    assert project.api_key is not None
    assert project.api_key.get_secret_value().startswith("am_proj_")
    assert project.created_at is not None
    assert project.created_at == project.updated_at
    fetched = backend.admin.get_project(project.id)
    assert fetched.api_key is None  # the key is shown once, in the creating answer
    assert fetched.model_dump(exclude={"api_key"}) == project.model_dump(exclude={"api_key"})


def test_create_a_project_with_an_id_and_refuse_it_twice(backend, unique):
    project = backend.admin.create_project("Chosen", project_id=f"proj_chosen_{unique}")
    assert project.id == f"proj_chosen_{unique}"
    assert project.description is None

    with pytest.raises(ConflictError) as caught:
        backend.admin.create_project("Again", project_id=project.id)
    assert (caught.value.status_code, caught.value.code) == (409, "conflict")
    assert backend.admin.get_project(project.id).name == "Chosen"


def test_list_projects(backend):
    made = [backend.new_project("listed") for _ in range(3)]
    listed = {project.id: project for project in backend.admin.list_projects()}
    for project in made:
        assert listed[project.id].name == project.name
        assert listed[project.id].api_key is None


def test_update_a_project(backend, project):
    renamed = backend.admin.update_project(project.id, name="Renamed")
    assert (renamed.name, renamed.description) == ("Renamed", None)
    described = backend.admin.update_project(project.id, description="now with text")
    assert (described.name, described.description) == ("Renamed", "now with text")
    assert described.updated_at >= described.created_at
    assert described.created_at == project.created_at
    assert backend.admin.get_project(project.id) == described
    unchanged = backend.admin.update_project(project.id)
    assert unchanged == described


def test_unknown_projects_are_404(backend, unique):
    missing = f"proj_missing_{unique}"
    for call in (
        lambda: backend.admin.get_project(missing),
        lambda: backend.admin.update_project(missing, name="x"),
        lambda: backend.admin.delete_project(missing),
    ):
        with pytest.raises(NotFoundError) as caught:
            call()
        assert (caught.value.status_code, caught.value.code) == (404, "not_found")


def test_project_fields_are_validated(backend):
    with pytest.raises(AgentMeterValidationError) as at_call_site:
        backend.admin.create_project("x", project_id="has space")
    assert at_call_site.value.field == "id"
    for body, field in [
        ({"name": ""}, "name"),
        ({"description": "no name"}, "name"),
        ({"name": "x", "id": "has space"}, "id"),
        ({"name": "x" * 201}, "name"),
    ]:
        with pytest.raises(UnprocessableEntityError) as caught:
            backend.admin.transport.request("POST", "/projects", body=body)
        assert [detail["field"] for detail in caught.value.details] == [field]


def test_delete_a_project_and_its_data(backend, client, project):
    client.record_instant_pay(amount="1.5", user_id="u1")
    client.set_user_meter(threshold_amount="10", user_id="u1")
    client.create_billing_record(
        period_start=BASE_TIME, period_end=BASE_TIME + timedelta(days=1), amount="3"
    )

    assert backend.admin.delete_project(project.id) == {"deleted": True}

    with pytest.raises(NotFoundError):
        backend.admin.get_project(project.id)
    assert project.id not in {listed.id for listed in backend.admin.list_projects()}
    assert backend.admin.get_events(project_id=project.id) == []
    assert backend.admin.get_meter_stats(project_id=project.id, timeframe="all").total_events == 0
    meter = backend.admin.get_user_meter("u1", project_id=project.id)
    assert (meter.current_usage, meter.threshold_amount) == (Decimal(0), None)
    assert backend.admin.list_billing_records(project_id=project.id) == []
    # The id is free again, and the new project starts empty.
    again = backend.admin.create_project("reborn", project_id=project.id)
    assert backend.admin.get_events(project_id=again.id) == []


# ---------------------------------------------------------- billing records


def charge(client, amount, at, user="u1"):
    return InstantPayEvent(
        project_id=client.project_id, agent_id="a1", user_id=user, amount=amount, timestamp=at
    )


def test_a_billing_record_with_an_amount_keeps_it_exactly(client):
    start, end = BASE_TIME, BASE_TIME + timedelta(days=30)
    record = client.create_billing_record(period_start=start, period_end=end, amount="12.345")

    assert record.id
    assert record.project_id == client.project_id
    assert (record.period_start, record.period_end) == (start, end)
    assert record.amount == Decimal("12.345")
    assert record.status is BillingStatus.PENDING
    assert client.list_billing_records() == [record]


def test_without_an_amount_the_period_is_summed_and_rounded_once_half_even(client):
    day = timedelta(days=1)
    p1, p2, p3 = BASE_TIME, BASE_TIME + day, BASE_TIME + 2 * day
    events = [
        # Period 1: 0.1 + 0.025 = 0.125 -> 0.12 (half-up would say 0.13).
        charge(client, "0.1", p1),  # at the start: inside
        charge(client, "0.025", p2 - timedelta(microseconds=1), user="u2"),
        # Period 2: 3 x 0.006 = 0.018 -> 0.02 (rounding each first would say 0.03).
        charge(client, "0.006", p2),  # at the end of period 1: outside it
        charge(client, "0.006", p2 + timedelta(hours=5)),
        charge(client, "0.006", p3 - timedelta(microseconds=1)),
        charge(client, "100", p3),  # in neither period
    ]
    assert client.record_events(events).accepted == 6
    cent = Decimal("0.01")
    assert Decimal("0.125").quantize(cent, rounding=ROUND_HALF_UP) == Decimal("0.13")
    assert 3 * Decimal("0.006").quantize(cent) == Decimal("0.03")

    first = client.create_billing_record(period_start=p1, period_end=p2)
    second = client.create_billing_record(
        period_start=p2, period_end=p3, status=BillingStatus.INVOICED
    )
    empty = client.create_billing_record(period_start=p1 - day, period_end=p1)

    assert first.amount == Decimal("0.12")
    assert second.amount == Decimal("0.02")
    assert second.status is BillingStatus.INVOICED
    assert empty.amount == Decimal(0)
    assert str(first.amount) == "0.12"
    # Newest period first.
    assert [record.id for record in client.list_billing_records()] == [
        second.id,
        first.id,
        empty.id,
    ]


def test_half_even_rounds_halves_to_the_even_cent(client):
    day = timedelta(days=1)
    cases = [
        ("0.135", "0.14"),
        ("0.145", "0.14"),
        ("0.005", "0.00"),
        ("0.015", "0.02"),
        ("2.4449999", "2.44"),
        ("0.1250001", "0.13"),
    ]
    for index, (cost, billed) in enumerate(cases):
        start = BASE_TIME + index * day
        client.record_event(charge(client, cost, start))
        record = client.create_billing_record(period_start=start, period_end=start + day)
        assert record.amount == Decimal(billed), cost


def test_update_a_billing_record(client):
    record = client.create_billing_record(
        period_start=BASE_TIME, period_end=BASE_TIME + timedelta(days=1), amount="5"
    )

    paid = client.update_billing_record(record.id, status="paid")
    assert (paid.status, paid.amount) == (BillingStatus.PAID, Decimal("5"))
    corrected = client.update_billing_record(record.id, amount="4.995")
    assert (corrected.status, corrected.amount) == (BillingStatus.PAID, Decimal("4.995"))
    both = client.update_billing_record(record.id, status=BillingStatus.VOID, amount=0)
    assert (both.status, both.amount) == (BillingStatus.VOID, Decimal(0))
    assert both.created_at == record.created_at
    assert both.updated_at >= record.updated_at
    assert client.list_billing_records() == [both]


def test_unknown_billing_record_is_404(client, unique):
    with pytest.raises(NotFoundError) as caught:
        client.update_billing_record(f"bill_{unique}", status="paid")
    assert caught.value.status_code == 404


def test_billing_fields_are_validated(client):
    with pytest.raises(AgentMeterValidationError) as at_call_site:
        client.create_billing_record(period_start=BASE_TIME, period_end=BASE_TIME)
    assert at_call_site.value.field == "period_end"
    start = BASE_TIME.isoformat()
    end = (BASE_TIME + timedelta(days=1)).isoformat()
    pid = client.project_id
    for body, field in [
        ({"period_start": end, "period_end": start}, "period_end"),
        ({"period_start": start, "period_end": end, "amount": "-0.01"}, "amount"),
        ({"period_start": start, "period_end": end, "status": "lost"}, "status"),
        ({"period_start": "soon", "period_end": end}, "period_start"),
        ({"period_end": end}, "period_start"),
    ]:
        with pytest.raises(UnprocessableEntityError) as caught:
            client.transport.request("POST", "/billing-records", body={"project_id": pid, **body})
        assert caught.value.details[0]["field"] == field, body
    assert client.list_billing_records() == []


def test_billing_periods_are_utc(client):
    """An offset is converted; a naive time is read as UTC."""
    tz = timezone(timedelta(hours=2))
    record = client.create_billing_record(
        period_start=datetime(2025, 3, 10, 14, 0, tzinfo=tz),
        period_end=datetime(2025, 3, 11, 0, 0),
        amount="1",
    )
    assert record.period_start == datetime(2025, 3, 10, 12, 0, tzinfo=timezone.utc)
    assert record.period_end == datetime(2025, 3, 11, 0, 0, tzinfo=timezone.utc)


def test_project_keys_are_stored_hashed_only(backend, scan):
    project = backend.new_project("hashed")
    key = project.api_key.get_secret_value()
    url = backend.server.db_url if backend.server else backend.url
    if not url.startswith("sqlite"):
        rows = _api_key_rows(url)
        assert key not in str(rows)
        assert hashlib.sha256(key.encode()).hexdigest() in str(rows)
        return
    db = Path(url.removeprefix("sqlite:///"))
    files = [db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")]

    assert scan(files, [project.id]) != []  # the positive control: the project is in there
    assert scan(files, [key]) == []
    assert scan(files, [hashlib.sha256(key.encode()).hexdigest()]) != []


def _api_key_rows(url: str) -> list[tuple]:
    """Everything the api_keys table of a database holds."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return [tuple(row) for row in connection.execute(text("SELECT * FROM api_keys"))]
    finally:
        engine.dispose()
