"""Every client method: the exact HTTP request it sends and the typed answer it returns."""

from __future__ import annotations

import json
import re
from datetime import date, datetime, timezone
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest

from agentmeter import (
    AgentMeterClient,
    AgentMeterConfigurationError,
    AgentMeterValidationError,
    APIRequestPayEvent,
    AuthenticationError,
    BatchResult,
    BillingRecord,
    BillingStatus,
    InstantPayEvent,
    MeterEventResponse,
    MeterStats,
    Project,
    ReportRow,
    TokenBasedPayEvent,
    UserMeter,
    __version__,
    create_client,
    quick_api_request_pay,
    quick_instant_pay,
    quick_token_based_pay,
)
from agentmeter.transport.http import HttpTransport

UUID7 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
WHEN = "2025-01-31T23:59:59Z"
ANY_JSON = object()  # check(..., body=ANY_JSON): some JSON body, checked by the test


def only_request(server):
    assert len(server.calls) == 1
    return server.calls[0].request


def check_request(server, request, method, path, query=None, body=None):
    """The request is exactly this, with the SDK's headers; ``body=ANY_JSON``: any JSON."""
    parts = urlsplit(request.url)
    assert request.method == method
    assert f"{parts.scheme}://{parts.netloc}" == server.base_url
    assert parts.path == path
    assert parse_qs(parts.query, keep_blank_values=True) == (query or {})
    assert request.headers["Authorization"] == f"Bearer {server.api_key}"
    assert request.headers["User-Agent"] == f"agentmeter-python/{__version__}"
    assert request.headers["Accept"] == "application/json"
    if body is None:
        assert request.body is None
        assert "Content-Type" not in request.headers
    else:
        assert request.headers["Content-Type"] == "application/json"
        sent = json.loads(request.body)
        assert body is ANY_JSON or sent == body
    return request


def check(server, method, path, query=None, body=None):
    """The server got exactly one request, and it is this one."""
    return check_request(server, only_request(server), method, path, query, body)


def event_body(request):
    """The JSON event sent, with its generated id and timestamp checked and removed."""
    sent = json.loads(request.body)
    assert UUID7.match(sent.pop("id"))
    stamp = sent.pop("timestamp")
    assert stamp.endswith("Z")
    assert datetime.fromisoformat(stamp.replace("Z", "+00:00")).tzinfo is not None
    return sent


def answer(event_id="evt_1", cost="0", duplicate=False):
    return {
        "success": True,
        "event_id": event_id,
        "cost": cost,
        "message": "recorded",
        "timestamp": WHEN,
        "duplicate": duplicate,
    }


def meter_answer(**changes):
    meter = {
        "project_id": "proj_1",
        "user_id": "user_1",
        "threshold_amount": "10.00",
        "current_usage": "2.5",
        "last_reset_at": None,
        "updated_at": WHEN,
    }
    meter.update(changes)
    return meter


PROJECT = {
    "id": "proj_2",
    "name": "Search bot",
    "description": "charges per query",
    "created_at": WHEN,
    "updated_at": WHEN,
}
RECORD = {
    "id": "br_1",
    "project_id": "proj_1",
    "period_start": "2025-01-01T00:00:00Z",
    "period_end": "2025-02-01T00:00:00Z",
    "amount": "12.35",
    "status": "pending",
    "created_at": WHEN,
    "updated_at": WHEN,
}


def api_event(**changes):
    fields = {"project_id": "proj_1", "agent_id": "agent_1", "user_id": "user_1"}
    fields["unit_price"] = "0.01"
    fields.update(changes)
    return APIRequestPayEvent(**fields)


# ------------------------------------------------------------------ health


def test_health_check(client, server):
    server.get("/health", json={"status": "healthy", "version": "0.3.0"})

    assert client.health_check() == {"status": "healthy", "version": "0.3.0"}
    check(server, "GET", "/health")


# ------------------------------------------------------------------ events


def test_record_event_sends_the_event_as_is(client, server):
    event = TokenBasedPayEvent(
        project_id="proj_9",
        agent_id="agent_9",
        user_id="user_9",
        tokens_in=1000,
        tokens_out=500,
        input_token_price="0.004",
        output_token_price="0.0001",
        metadata={"model": "gpt-4o"},
    )
    server.post("/api/meter/event", status=201, json=answer(event.id, "4.05"))

    result = client.record_event(event)

    check(server, "POST", "/api/meter/event", body=event.to_dict())
    assert isinstance(result, MeterEventResponse)
    assert result.event_id == event.id
    assert result.cost == Decimal("4.05")
    assert result.timestamp == datetime(2025, 1, 31, 23, 59, 59, tzinfo=timezone.utc)
    assert result.duplicate is False


def test_record_event_reads_money_numbers_exactly(client, server):
    # 0.300000000000000001 as a float would be 0.3: it must never pass through one.
    server.post(
        "/api/meter/event",
        status=201,
        body='{"success": true, "event_id": "e1", "cost": 0.300000000000000001}',
        content_type="application/json",
    )

    result = client.record_event(api_event())

    assert result.cost == Decimal("0.300000000000000001")


def test_record_event_rejects_what_is_not_an_event(client, server):
    with pytest.raises(TypeError):
        client.record_event({"payment_type": "instant_pay"})
    assert len(server.calls) == 0


def test_record_api_request_pay(client, server):
    server.post("/api/meter/event", status=201, json=answer(cost="4.000"))

    result = client.record_api_request_pay(
        api_calls=1000, unit_price=0.004, metadata={"route": "/search"}
    )

    request = check(server, "POST", "/api/meter/event", body=ANY_JSON)
    assert event_body(request) == {
        "project_id": "proj_1",
        "agent_id": "agent_1",
        "user_id": "user_1",
        "metadata": {"route": "/search"},
        "payment_type": "api_request_pay",
        "event_type": "api_call",
        "api_calls": 1000,
        "unit_price": "0.004",
        "total_cost": "4.000",
    }
    assert result.cost == Decimal("4")
    assert result.message == "recorded"


def test_record_api_request_pay_defaults_come_from_the_config(client, server):
    server.post("/api/meter/event", status=201, json=answer())

    client.record_api_request_pay()

    sent = event_body(only_request(server))
    assert sent["api_calls"] == 1
    assert sent["unit_price"] == "0.001"  # AgentMeterConfig.api_request_unit_price
    assert (sent["project_id"], sent["agent_id"], sent["user_id"]) == (
        "proj_1",
        "agent_1",
        "user_1",
    )


def test_explicit_ids_win_over_the_client_defaults(client, server):
    server.post("/api/meter/event", status=201, json=answer())

    client.record_api_request_pay(project_id="proj_x", agent_id="agent_x", user_id="user_x")

    sent = event_body(only_request(server))
    assert (sent["project_id"], sent["agent_id"], sent["user_id"]) == (
        "proj_x",
        "agent_x",
        "user_x",
    )


def test_without_agent_or_user_the_event_says_default_and_anonymous(server, api_key, base_url):
    server.post("/api/meter/event", status=201, json=answer())
    client = AgentMeterClient(api_key=api_key, base_url=base_url, project_id="proj_1")

    client.record_instant_pay("1")

    sent = event_body(only_request(server))
    assert (sent["agent_id"], sent["user_id"]) == ("default", "anonymous")


def test_record_token_based_pay(client, server):
    server.post("/api/meter/event", status=201, json=answer(cost="4.05"))

    result = client.record_token_based_pay(
        tokens_in=1000, tokens_out=500, input_token_price="0.004", output_token_price=0.0001
    )

    request = check(server, "POST", "/api/meter/event", body=ANY_JSON)
    assert event_body(request) == {
        "project_id": "proj_1",
        "agent_id": "agent_1",
        "user_id": "user_1",
        "metadata": {},
        "payment_type": "token_based_pay",
        "event_type": "token_usage",
        "tokens_in": 1000,
        "tokens_out": 500,
        "input_token_price": "0.004",
        "output_token_price": "0.0001",
        "total_cost": "4.0500",
    }
    assert result.cost == Decimal("4.05")


def test_record_token_based_pay_default_prices(client, server):
    server.post("/api/meter/event", status=201, json=answer())

    client.record_token_based_pay(tokens_in=10, tokens_out=20)

    sent = event_body(only_request(server))
    assert sent["input_token_price"] == "0.000004"
    assert sent["output_token_price"] == "0.000001"
    assert sent["total_cost"] == "0.000060"


def test_record_instant_pay(client, server):
    server.post("/api/meter/event", status=201, json=answer(cost="0.0000001"))

    result = client.record_instant_pay(Decimal("1E-7"), "one lookup", user_id="user_2")

    request = check(server, "POST", "/api/meter/event", body=ANY_JSON)
    assert event_body(request) == {
        "project_id": "proj_1",
        "agent_id": "agent_1",
        "user_id": "user_2",
        "metadata": {},
        "payment_type": "instant_pay",
        "event_type": "instant_payment",
        "amount": "0.0000001",
        "description": "one lookup",
        "total_cost": "0.0000001",
    }
    assert result.cost == Decimal("0.0000001")


# ------------------------------------------------------------ batch events


def test_record_events_uses_the_batch_endpoint(client, server):
    events = [api_event(), api_event(), api_event(unit_price="0.02")]
    server.post(
        "/api/meter/events/batch",
        json={
            "accepted": 1,
            "duplicates": 1,
            "rejected": [
                {
                    "index": 2,
                    "id": events[2].id,
                    "error": {"code": "invalid_field", "message": "unit_price: too high"},
                }
            ],
        },
    )

    result = client.record_events(events)

    body = {"events": [event.to_dict() for event in events]}
    check(server, "POST", "/api/meter/events/batch", body=body)
    assert isinstance(result, BatchResult)
    assert (result.accepted, result.duplicates, result.ok) == (1, 1, False)
    assert [(item.index, item.id, item.error.code) for item in result.rejected] == [
        (2, events[2].id, "invalid_field")
    ]


def test_record_events_sends_at_most_1000_per_request(client, server):
    events = [api_event() for _ in range(2500)]
    server.post("/api/meter/events/batch", json={"accepted": 1000})
    server.post(
        "/api/meter/events/batch",
        json={
            "accepted": 999,
            "rejected": [{"index": 5, "id": "x", "error": {"code": "bad", "message": "no"}}],
        },
    )
    server.post("/api/meter/events/batch", json={"accepted": 498, "duplicates": 2})

    result = client.record_events(iter(events))

    sizes = [len(json.loads(call.request.body)["events"]) for call in server.calls]
    assert sizes == [1000, 1000, 500]
    sent_ids = [e["id"] for call in server.calls for e in json.loads(call.request.body)["events"]]
    assert sent_ids == [event.id for event in events]
    assert (result.accepted, result.duplicates) == (2497, 2)
    assert [item.index for item in result.rejected] == [1005]  # index in the whole list


def test_record_events_of_nothing_sends_nothing(client, server):
    assert client.record_events([]) == BatchResult()
    assert len(server.calls) == 0


def test_record_events_falls_back_to_single_events_on_404(client, server):
    events = [api_event(), api_event(), api_event()]
    server.post(
        "/api/meter/events/batch",
        status=404,
        json={"error": {"code": "not_found", "message": "no such path"}},
    )
    server.post("/api/meter/event", status=201, json=answer(events[0].id))
    server.post(
        "/api/meter/event",
        status=422,
        json={
            "error": {
                "code": "invalid_field",
                "message": "unit_price is too high",
                "details": [{"field": "unit_price", "message": "too high"}],
            }
        },
    )
    server.post("/api/meter/event", status=200, json=answer(events[2].id, duplicate=True))

    result = client.record_events(events)

    calls = [call.request for call in server.calls]
    assert [urlsplit(request.url).path for request in calls] == [
        "/api/meter/events/batch",
        "/api/meter/event",
        "/api/meter/event",
        "/api/meter/event",
    ]
    for request, event in zip(calls[1:], events, strict=True):
        check_request(server, request, "POST", "/api/meter/event", body=event.to_dict())
    assert (result.accepted, result.duplicates) == (1, 1)
    [rejected] = result.rejected
    assert (rejected.index, rejected.id, rejected.error.code) == (1, events[1].id, "invalid_field")
    assert "unit_price is too high" in rejected.error.message
    assert rejected.error.details == [{"field": "unit_price", "message": "too high"}]


def test_after_a_404_the_client_no_longer_asks_for_the_batch_endpoint(client, server):
    server.post("/api/meter/events/batch", status=404)
    server.post("/api/meter/event", status=201, json=answer())

    client.record_events([api_event()])
    client.record_events([api_event()])

    paths = [urlsplit(call.request.url).path for call in server.calls]
    assert paths == ["/api/meter/events/batch", "/api/meter/event", "/api/meter/event"]


def test_single_event_fallback_raises_errors_that_do_not_reject_an_event(client, server):
    server.post("/api/meter/events/batch", status=404)
    server.post("/api/meter/event", status=401, json={"error": {"code": "bad_key"}})

    with pytest.raises(AuthenticationError):
        client.record_events([api_event(), api_event()])
    assert len(server.calls) == 2


# ----------------------------------------------------------------- queries


def test_get_events_defaults(client, server):
    server.get("/api/meter/events", json=[])

    assert client.get_events() == []
    check(
        server,
        "GET",
        "/api/meter/events",
        query={"project_id": ["proj_1"], "limit": ["100"], "offset": ["0"]},
    )


def test_get_events_with_every_filter_returns_typed_events(client, server):
    stored = [
        InstantPayEvent(project_id="proj_1", agent_id="a", amount="2.5").to_dict(),
        api_event().to_dict(),
    ]
    server.get("/api/meter/events", json={"events": stored})

    events = client.get_events(
        agent_id="agent_2",
        user_id="user_2",
        event_type="api_call",
        payment_type="api_request_pay",
        start_date=date(2025, 1, 1),
        end_date="2025-01-31T23:59:59+02:00",
        limit=10,
        offset=20,
    )

    check(
        server,
        "GET",
        "/api/meter/events",
        query={
            "project_id": ["proj_1"],
            "agent_id": ["agent_2"],
            "user_id": ["user_2"],
            "event_type": ["api_call"],
            "payment_type": ["api_request_pay"],
            "start_date": ["2025-01-01T00:00:00Z"],
            "end_date": ["2025-01-31T21:59:59Z"],
            "limit": ["10"],
            "offset": ["20"],
        },
    )
    assert [type(event) for event in events] == [InstantPayEvent, APIRequestPayEvent]
    assert events[0].total_cost == Decimal("2.5")
    assert events[1].id == stored[1]["id"]


def test_get_meter_stats(client, server):
    server.get(
        "/api/meter/stats",
        body=(
            '{"total_api_calls": 3, "total_tokens_in": 1000, "total_tokens_out": 500,'
            ' "total_cost": 12.345678901234567891, "timeframe": "7 days"}'
        ),
        content_type="application/json",
    )

    stats = client.get_meter_stats(timeframe="7 days")

    check(
        server,
        "GET",
        "/api/meter/stats",
        query={"project_id": ["proj_1"], "timeframe": ["7 days"]},
    )
    assert isinstance(stats, MeterStats)
    assert stats.total_cost == Decimal("12.345678901234567891")
    assert (stats.total_api_calls, stats.total_tokens, stats.timeframe) == (3, 1500, "7 days")


def test_get_meter_stats_default_timeframe(client, server):
    server.get("/api/meter/stats", json={})

    client.get_meter_stats(project_id="proj_2")

    query = parse_qs(urlsplit(only_request(server).url).query)
    assert query == {"project_id": ["proj_2"], "timeframe": ["30 days"]}


def test_get_report_repeats_group_by(client, server):
    rows = [
        {"period": "2025-01-01", "user_id": "u1", "model": "gpt-4o", "events": 2, "cost": "0.5"},
        {"period": "2025-01-02", "user_id": "u2", "model": None, "events": 1, "cost": 0.25},
    ]
    server.get("/api/meter/report", json={"rows": rows})

    report = client.get_report(
        granularity="month",
        group_by=["user", "model"],
        start_date="2025-01-01T00:00:00Z",
        end_date=datetime(2025, 2, 1, tzinfo=timezone.utc),
        user_id="u1",
        agent_id="agent_1",
    )

    check(
        server,
        "GET",
        "/api/meter/report",
        query={
            "project_id": ["proj_1"],
            "granularity": ["month"],
            "group_by": ["user", "model"],
            "start_date": ["2025-01-01T00:00:00Z"],
            "end_date": ["2025-02-01T00:00:00Z"],
            "user_id": ["u1"],
            "agent_id": ["agent_1"],
        },
    )
    assert all(isinstance(row, ReportRow) for row in report)
    assert [(row.period, row.user_id, row.model, row.cost) for row in report] == [
        ("2025-01-01", "u1", "gpt-4o", Decimal("0.5")),
        ("2025-01-02", "u2", None, Decimal("0.25")),
    ]


def test_get_report_defaults_and_a_single_group(client, server):
    server.get("/api/meter/report", json=[])

    assert client.get_report(group_by="payment_type") == []
    query = parse_qs(urlsplit(only_request(server).url).query)
    assert query == {
        "project_id": ["proj_1"],
        "granularity": ["day"],
        "group_by": ["payment_type"],
    }


# -------------------------------------------------------------- user meters


def test_get_user_meter(client, server):
    server.get("/api/meter/usage", json=meter_answer())

    meter = client.get_user_meter()

    check(
        server,
        "GET",
        "/api/meter/usage",
        query={"project_id": ["proj_1"], "user_id": ["user_1"]},
    )
    assert isinstance(meter, UserMeter)
    assert meter.threshold_amount == Decimal("10.00")
    assert meter.remaining_budget == Decimal("7.50")
    assert meter.last_reset_at is None


def test_set_user_meter(client, server):
    server.put("/api/meter", json=meter_answer(user_id="user_2", threshold_amount="10.5"))

    meter = client.set_user_meter(10.5, user_id="user_2")

    check(
        server,
        "PUT",
        "/api/meter",
        body={"project_id": "proj_1", "user_id": "user_2", "threshold_amount": "10.5"},
    )
    assert meter.threshold_amount == Decimal("10.5")


def test_increment_user_meter(client, server):
    server.post("/api/meter/increment", json=meter_answer(current_usage="2.75"))

    meter = client.increment_user_meter("0.25")

    check(
        server,
        "POST",
        "/api/meter/increment",
        body={"project_id": "proj_1", "user_id": "user_1", "amount": "0.25"},
    )
    assert meter.current_usage == Decimal("2.75")


def test_reset_user_meter(client, server):
    server.post("/api/meter/reset", json=meter_answer(current_usage=0, last_reset_at=WHEN))

    meter = client.reset_user_meter(project_id="proj_2")

    check(
        server,
        "POST",
        "/api/meter/reset",
        body={"project_id": "proj_2", "user_id": "user_1"},
    )
    assert meter.current_usage == 0
    assert meter.last_reset_at == datetime(2025, 1, 31, 23, 59, 59, tzinfo=timezone.utc)


# ----------------------------------------------------------------- projects


def test_create_project(client, server):
    server.post("/projects", status=201, json={**PROJECT, "api_key": "am_proj_new_key"})

    project = client.create_project("Search bot", "charges per query", project_id="proj_2")

    check(
        server,
        "POST",
        "/projects",
        body={"name": "Search bot", "description": "charges per query", "id": "proj_2"},
    )
    assert isinstance(project, Project)
    assert project.api_key.get_secret_value() == "am_proj_new_key"
    assert "am_proj_new_key" not in repr(project)


def test_create_project_leaves_out_what_is_not_given(client, server):
    server.post("/projects", status=201, json=PROJECT)

    client.create_project("Search bot")

    check(server, "POST", "/projects", body={"name": "Search bot"})


def test_get_project_quotes_the_id(client, server):
    server.get("/projects/a%2Fb%20c", json=PROJECT)

    project = client.get_project("a/b c")

    check(server, "GET", "/projects/a%2Fb%20c")
    assert project.created_at == datetime(2025, 1, 31, 23, 59, 59, tzinfo=timezone.utc)


def test_list_projects(client, server):
    server.get("/projects", json=[PROJECT, {**PROJECT, "id": "proj_3"}])

    projects = client.list_projects()

    check(server, "GET", "/projects")
    assert [project.id for project in projects] == ["proj_2", "proj_3"]


def test_list_projects_in_an_envelope(client, server):
    server.get("/projects", json={"projects": [PROJECT]})

    assert [project.name for project in client.list_projects()] == ["Search bot"]


def test_update_project(client, server):
    server.patch("/projects/proj_2", json={**PROJECT, "name": "Renamed"})

    project = client.update_project("proj_2", name="Renamed")

    check(server, "PATCH", "/projects/proj_2", body={"name": "Renamed"})
    assert project.name == "Renamed"


def test_delete_project(client, server):
    server.delete("/projects/proj_2", json={"deleted": True})

    assert client.delete_project("proj_2") == {"deleted": True}
    check(server, "DELETE", "/projects/proj_2")


def test_delete_project_with_an_empty_answer(client, server):
    server.delete("/projects/proj_2", status=204)

    assert client.delete_project("proj_2") == {"deleted": True}


# ---------------------------------------------------------- billing records


def test_create_billing_record_with_amount(client, server):
    server.post("/billing-records", status=201, json=RECORD)

    record = client.create_billing_record(
        period_start=date(2025, 1, 1),
        period_end="2025-02-01T00:00:00Z",
        amount="12.35",
        status="invoiced",
    )

    check(
        server,
        "POST",
        "/billing-records",
        body={
            "project_id": "proj_1",
            "period_start": "2025-01-01T00:00:00Z",
            "period_end": "2025-02-01T00:00:00Z",
            "amount": "12.35",
            "status": "invoiced",
        },
    )
    assert isinstance(record, BillingRecord)
    assert record.amount == Decimal("12.35")
    assert record.status is BillingStatus.PENDING


def test_create_billing_record_without_amount_lets_the_server_sum(client, server):
    server.post("/billing-records", status=201, json=RECORD)

    client.create_billing_record(
        project_id="proj_1",
        period_start=datetime(2025, 1, 1, 1, tzinfo=timezone.utc),
        period_end=datetime(2025, 2, 1),
    )

    check(
        server,
        "POST",
        "/billing-records",
        body={
            "project_id": "proj_1",
            "period_start": "2025-01-01T01:00:00Z",
            "period_end": "2025-02-01T00:00:00Z",
            "status": "pending",
        },
    )


def test_list_billing_records(client, server):
    server.get("/billing-records", json={"billing_records": [RECORD]})

    records = client.list_billing_records()

    check(server, "GET", "/billing-records", query={"project_id": ["proj_1"]})
    assert [(record.id, record.amount) for record in records] == [("br_1", Decimal("12.35"))]


def test_update_billing_record(client, server):
    server.patch("/billing-records/br_1", json={**RECORD, "status": "paid", "amount": 13})

    record = client.update_billing_record("br_1", status=BillingStatus.PAID, amount=Decimal("13"))

    check(
        server,
        "PATCH",
        "/billing-records/br_1",
        body={"status": "paid", "amount": "13"},
    )
    assert (record.status, record.amount) == (BillingStatus.PAID, Decimal("13"))


# ---------------------------------------------------------- module helpers


def test_create_client(server, api_key, base_url):
    server.post("/api/meter/event", status=201, json=answer())

    client = create_client(api_key, "proj_1", "agent_1", base_url=base_url + "/")

    assert isinstance(client, AgentMeterClient)
    assert isinstance(client.transport, HttpTransport)
    assert (client.base_url, client.project_id, client.agent_id) == (base_url, "proj_1", "agent_1")
    client.record_instant_pay("1")
    request = check(server, "POST", "/api/meter/event", body=ANY_JSON)
    assert event_body(request)["user_id"] == "anonymous"


def test_create_client_reads_the_environment(server, monkeypatch, api_key, base_url):
    monkeypatch.setenv("AGENTMETER_API_KEY", api_key)
    monkeypatch.setenv("AGENTMETER_BASE_URL", base_url)
    monkeypatch.setenv("AGENTMETER_PROJECT_ID", "proj_env")
    monkeypatch.setenv("AGENTMETER_USER_ID", "user_env")
    server.post("/api/meter/event", status=201, json=answer())

    client = create_client()
    client.record_instant_pay("1")

    assert (client.project_id, client.user_id) == ("proj_env", "user_env")
    sent = event_body(only_request(server))
    assert (sent["project_id"], sent["user_id"]) == ("proj_env", "user_env")


def test_quick_api_request_pay(client, server):
    server.post("/api/meter/event", status=201, json=answer(cost="0.02"))

    result = quick_api_request_pay(client, user_id="user_5", api_calls=2, unit_price="0.01")

    sent = event_body(only_request(server))
    assert (sent["project_id"], sent["agent_id"], sent["user_id"]) == (
        "proj_1",
        "agent_1",
        "user_5",
    )
    assert (sent["api_calls"], sent["unit_price"], sent["total_cost"]) == (2, "0.01", "0.02")
    assert result.cost == Decimal("0.02")


def test_quick_token_based_pay(client, server):
    server.post("/api/meter/event", status=201, json=answer(cost="0.007"))

    quick_token_based_pay(client, "proj_7", "agent_7", "user_7", 1, 3, "0.001", "0.002")

    sent = event_body(only_request(server))
    assert sent == {
        "project_id": "proj_7",
        "agent_id": "agent_7",
        "user_id": "user_7",
        "metadata": {},
        "payment_type": "token_based_pay",
        "event_type": "token_usage",
        "tokens_in": 1,
        "tokens_out": 3,
        "input_token_price": "0.001",
        "output_token_price": "0.002",
        "total_cost": "0.007",
    }


def test_quick_instant_pay(client, server):
    server.post("/api/meter/event", status=201, json=answer(cost="5"))

    quick_instant_pay(client, amount=5)

    sent = event_body(only_request(server))
    assert (sent["amount"], sent["description"], sent["user_id"]) == (
        "5",
        "Instant payment",
        "user_1",
    )


# ------------------------------------------------ invalid input: nothing sent

INVALID_CALLS = [
    ("unit_price", lambda c: c.record_api_request_pay(unit_price=-1)),
    ("unit_price", lambda c: c.record_api_request_pay(unit_price=float("nan"))),
    ("api_calls", lambda c: c.record_api_request_pay(api_calls=-1)),
    ("api_calls", lambda c: c.record_api_request_pay(api_calls=True)),
    ("tokens_in", lambda c: c.record_token_based_pay(tokens_in=1.5)),
    ("tokens_out", lambda c: c.record_token_based_pay(tokens_out="10")),
    ("input_token_price", lambda c: c.record_token_based_pay(input_token_price=float("inf"))),
    ("output_token_price", lambda c: c.record_token_based_pay(output_token_price="1e-19")),
    ("amount", lambda c: c.record_instant_pay("-0.01")),
    ("amount", lambda c: c.record_instant_pay(Decimal("1E+15"))),
    ("amount", lambda c: c.record_instant_pay(None)),
    ("threshold_amount", lambda c: c.set_user_meter(float("-inf"))),
    ("amount", lambda c: c.increment_user_meter([1])),
    ("amount", lambda c: c.create_billing_record(None, "2025-01-01", "2025-02-01", "NaN")),
    ("period_end", lambda c: c.create_billing_record(None, "2025-02-01", "2025-01-01")),
    ("period_start", lambda c: c.create_billing_record(None, "yesterday", "2025-01-01")),
    ("amount", lambda c: c.update_billing_record("br_1", amount=-5)),
    ("status", lambda c: c.update_billing_record("br_1", status="lost")),
    ("limit", lambda c: c.get_events(limit=5000)),
    ("start_date", lambda c: c.get_events(start_date="last week")),
    ("timeframe", lambda c: c.get_meter_stats(timeframe="fortnight")),
    ("granularity", lambda c: c.get_report(granularity="week")),
    ("group_by.0", lambda c: c.get_report(group_by=["country"])),
    ("name", lambda c: c.create_project("")),
    ("project_id", lambda c: c.get_project("")),
    ("record_id", lambda c: c.update_billing_record("", status="paid")),
]


@pytest.mark.parametrize(("field", "call"), INVALID_CALLS)
def test_invalid_input_raises_at_the_call_site_and_sends_nothing(client, server, field, call):
    with pytest.raises(AgentMeterValidationError) as raised:
        call(client)

    assert raised.value.field == field
    assert field in str(raised.value)
    assert isinstance(raised.value, ValueError)
    assert len(server.calls) == 0


def test_a_method_needing_a_project_says_how_to_set_one(server, api_key, base_url):
    client = AgentMeterClient(api_key=api_key, base_url=base_url)

    with pytest.raises(AgentMeterConfigurationError, match="AGENTMETER_PROJECT_ID"):
        client.record_api_request_pay(unit_price="0.01")
    assert len(server.calls) == 0
