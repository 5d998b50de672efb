"""The same calls give the same answers and the same errors over HTTP and embedded;
the default embedded ledger warns once."""

from __future__ import annotations

import logging
import threading
from datetime import timedelta
from decimal import Decimal

import pytest

from agentmeter import AgentMeterClient
from agentmeter.errors import AgentMeterAPIError
from agentmeter.models import APIRequestPayEvent, InstantPayEvent, TokenBasedPayEvent
from agentmeter.transport import local

from .conftest import BASE_TIME

# Fields that hold the moment a row was written: they differ between runs.
WRITE_TIMES = {"created_at", "updated_at", "last_reset_at"}


def without_write_times(value):
    if isinstance(value, dict):
        return {k: without_write_times(v) for k, v in value.items() if k not in WRITE_TIMES}
    if isinstance(value, list):
        return [without_write_times(item) for item in value]
    return value


def outcome(call):
    """A call's answer in JSON form, or its error as (class, status, code, message, details)."""
    try:
        answer = call()
    except AgentMeterAPIError as exc:
        return ("error", type(exc).__name__, exc.status_code, exc.code, exc.message, exc.details)
    if isinstance(answer, list):
        return [item.to_dict() if hasattr(item, "to_dict") else item for item in answer]
    return answer.to_dict() if hasattr(answer, "to_dict") else answer


def script(client, admin, project_id, unique):
    """Every endpoint, valid and invalid requests, in a fixed order."""
    common = {"project_id": project_id, "agent_id": "a1", "user_id": "u1"}
    events = [
        APIRequestPayEvent(
            **common,
            id=f"ev-{unique}-0",
            api_calls=3,
            unit_price="0.1",
            timestamp=BASE_TIME,
            metadata={"model": "m1"},
        ),
        TokenBasedPayEvent(
            **common,
            id=f"ev-{unique}-1",
            tokens_in=10,
            tokens_out=20,
            input_token_price="0.001",
            output_token_price="0.002",
            timestamp=BASE_TIME + timedelta(hours=1),
        ),
        InstantPayEvent(
            **{**common, "user_id": "u2"},
            id=f"ev-{unique}-2",
            amount="0.125",
            timestamp=BASE_TIME + timedelta(days=1),
        ),
    ]
    too_big = InstantPayEvent(
        **common, id=f"ev-{unique}-3", amount="1", metadata={"x": "y" * 20000}
    )
    raw = client.transport.request
    start, end = BASE_TIME.isoformat(), (BASE_TIME + timedelta(days=2)).isoformat()
    pid = {"project_id": project_id}
    calls = {
        "health": lambda: client.health_check(),
        "record": lambda: client.record_event(events[0]),
        "resend": lambda: client.record_event(events[0]),
        "batch": lambda: client.record_events([events[1], too_big, events[2], events[1]]),
        "events": lambda: client.get_events(),
        "events_paged": lambda: client.get_events(user_id="u1", limit=1, offset=1),
        "stats": lambda: client.get_meter_stats(timeframe="all"),
        "report": lambda: client.get_report(granularity="day", group_by=["user", "model"]),
        "meter": lambda: client.get_user_meter("u1"),
        "meter_unknown": lambda: client.get_user_meter("nobody"),
        "set": lambda: client.set_user_meter("5", user_id="u1"),
        "increment": lambda: client.increment_user_meter("0.5", user_id="u1"),
        "reset": lambda: client.reset_user_meter(user_id="u1"),
        "bill": lambda: client.create_billing_record(period_start=start, period_end=end),
        "update_project": lambda: admin.update_project(project_id, description="same"),
        "duplicate_project": lambda: admin.create_project("again", project_id=project_id),
        "missing_project": lambda: admin.get_project(f"{project_id}-missing"),
        "missing_bill": lambda: client.update_billing_record("bill_missing", status="paid"),
        "bad_payment_type": lambda: raw(
            "POST", "/api/meter/event", body={**common, "payment_type": "x"}
        ),
        "negative_amount": lambda: raw(
            "POST",
            "/api/meter/event",
            body={**common, "payment_type": "instant_pay", "amount": "-1"},
        ),
        "event_not_object": lambda: raw("POST", "/api/meter/event", body=[1, 2]),
        "events_not_list": lambda: raw("POST", "/api/meter/events/batch", body={"events": "none"}),
        "batch_too_big": lambda: raw(
            "POST", "/api/meter/events/batch", body={"events": [{}] * 1001}
        ),
        "body_not_object": lambda: raw("POST", "/api/meter/increment", body=[1]),
        "missing_threshold": lambda: raw("PUT", "/api/meter", body={**pid, "user_id": "u1"}),
        "limit_zero": lambda: raw("GET", "/api/meter/events", params={**pid, "limit": 0}),
        "limit_not_number": lambda: raw(
            "GET", "/api/meter/events", params={**pid, "limit": "many"}
        ),
        "bad_start_date": lambda: raw(
            "GET", "/api/meter/events", params={**pid, "start_date": "noon"}
        ),
        "odd_time_formats": lambda: raw(
            "GET",
            "/api/meter/events",
            params={**pid, "start_date": "2025-03-10T14:00:00+02", "end_date": "20250310T130000Z"},
        ),
        "bad_timeframe": lambda: raw("GET", "/api/meter/stats", params={**pid, "timeframe": "x"}),
        "bad_granularity": lambda: raw(
            "GET", "/api/meter/report", params={**pid, "granularity": "year"}
        ),
        "bad_group": lambda: raw(
            "GET", "/api/meter/report", params={**pid, "group_by": ["user", "colour"]}
        ),
        "usage_without_user": lambda: raw("GET", "/api/meter/usage", params=pid),
        "unknown_path": lambda: raw("GET", "/no/such/path"),
        "wrong_method": lambda: raw("DELETE", "/billing-records/bill_x"),
        "bad_status": lambda: raw("PATCH", "/billing-records/bill_x", body={"status": "lost"}),
    }
    answers = {name: without_write_times(outcome(call)) for name, call in calls.items()}
    answers["bill"]["id"] = "made by the ledger"
    return answers


def test_both_modes_give_the_same_answers_and_errors(
    live_server, http_admin, embedded_admin, embedded_url, unique
):
    project_id = f"proj_same_{unique}"
    http_project = http_admin.create_project("same", project_id=project_id)
    embedded_admin.create_project("same", project_id=project_id)
    key = http_project.api_key.get_secret_value()
    with live_server.client(key, project_id=project_id, retry_attempts=0) as over_http:
        http_run = script(over_http, http_admin, project_id, unique)
    with AgentMeterClient(base_url=embedded_url, project_id=project_id) as embedded:
        embedded_run = script(embedded, embedded_admin, project_id, unique)

    assert list(http_run) == list(embedded_run)
    for step, http_answer in http_run.items():
        assert http_answer == embedded_run[step], step
    # And the answers are the right ones, not merely equal.
    assert http_run["resend"]["duplicate"] is True
    assert http_run["batch"]["accepted"] == 2
    assert http_run["stats"]["total_cost"] == "0.475"
    assert http_run["bill"]["amount"] == "0.48"  # 0.475 -> 0.48 (half-even: 8 is even)
    assert [item["id"] for item in http_run["odd_time_formats"]] == [f"ev-{unique}-0"]
    expected_errors = {
        "duplicate_project": 409,
        "missing_project": 404,
        "missing_bill": 404,
        "bad_payment_type": 422,
        "negative_amount": 422,
        "event_not_object": 400,
        "events_not_list": 422,
        "batch_too_big": 413,
        "body_not_object": 400,
        "missing_threshold": 422,
        "limit_zero": 422,
        "limit_not_number": 422,
        "bad_start_date": 422,
        "bad_timeframe": 422,
        "bad_granularity": 422,
        "bad_group": 422,
        "usage_without_user": 422,
        "unknown_path": 404,
        "wrong_method": 405,
        "bad_status": 404,
    }
    for step, status in expected_errors.items():
        assert http_run[step][0] == "error", step
        assert http_run[step][2] == status, step


def test_the_default_ledger_is_used_with_one_warning(tmp_path, monkeypatch, caplog):
    """No key, no URL: the embedded ledger at ~/.agentmeter/ledger.db, said once."""
    default = tmp_path / "home" / ".agentmeter" / "ledger.db"
    monkeypatch.setattr(local, "DEFAULT_LEDGER", default)
    monkeypatch.setattr(local, "_warned_default", threading.Event())
    caplog.set_level(logging.WARNING, logger="agentmeter")

    with AgentMeterClient(agent_id="a1") as first, AgentMeterClient(agent_id="a1") as second:
        first.record_instant_pay(amount="0.25")
        assert second.get_meter_stats(timeframe="all").total_cost == Decimal("0.25")
        assert first.project_id is None
        assert [event.project_id for event in second.get_events()] == ["default"]

    warnings = [record for record in caplog.records if record.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert str(default) in warnings[0].getMessage()
    assert default.exists()


@pytest.mark.parametrize("url", ["sqlite:///{tmp}/nested/dir/ledger.db"])
def test_an_embedded_url_makes_its_directory(tmp_path, url):
    with AgentMeterClient(base_url=url.format(tmp=tmp_path), agent_id="a1") as client:
        client.record_api_request_pay(unit_price="0.5")
        assert client.get_meter_stats(timeframe="all").total_events == 1
    assert (tmp_path / "nested" / "dir" / "ledger.db").exists()
