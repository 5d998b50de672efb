"""The alert and webhook methods (issue 17): the exact request each sends, the typed
answer it returns, and the input refused before anything is sent."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest

from agentmeter import AgentMeterValidationError, NotFoundError, ServerError
from agentmeter.models import AlertSettings, DeliveryStatus, WebhookDelivery, WebhookEndpoint

SECRET = "whsec_c2VjcmV0LW9mLXRoZS1lbmRwb2ludA=="
CREATED = "2026-11-28T15:00:00Z"


def endpoint_answer(**changes):
    answer = {
        "id": "whep_0a1b",
        "project_id": "proj_1",
        "url": "https://hooks.example.com/agentmeter",
        "event_types": ["meter.threshold_crossed", "project.spend_exceeded"],
        "enabled": True,
        "description": None,
        "created_at": CREATED,
    }
    return {**answer, **changes}


def delivery_answer(**changes):
    answer = {
        "id": "whdl_9f8e",
        "event_id": "evt_77aa",
        "endpoint_id": "whep_0a1b",
        "event_type": "webhook.test",
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": CREATED,
        "last_status_code": None,
        "last_error": None,
        "created_at": CREATED,
        "updated_at": CREATED,
        "delivered_at": None,
    }
    return {**answer, **changes}


def settings_answer(**changes):
    answer = {
        "project_id": "proj_1",
        "threshold_shares": ["50", "80", "100"],
        "daily_limit": "250.00",
        "monthly_limit": None,
    }
    return {**answer, **changes}


def sent(server, method, path, query=None):
    """The one request the server got: its method, path and query checked; its JSON body."""
    assert len(server.calls) == 1
    request = server.calls[0].request
    parts = urlsplit(request.url)
    assert (request.method, parts.path) == (method, path)
    assert parse_qs(parts.query) == (query or {})
    assert request.headers["Authorization"] == f"Bearer {server.api_key}"
    if request.body is None:
        return None
    assert request.headers["Content-Type"] == "application/json"
    return json.loads(request.body)


# ------------------------------------------------------------ endpoints


def test_create_webhook_endpoint_sends_the_body_and_keeps_the_secret_secret(client, server):
    server.post("/api/webhooks", status=201, json=endpoint_answer(secret=SECRET))
    made = client.create_webhook_endpoint(
        "https://hooks.example.com/agentmeter",
        ["meter.threshold_crossed", "project.spend_exceeded"],
        description="pager",
    )
    assert sent(server, "POST", "/api/webhooks") == {
        "project_id": "proj_1",
        "url": "https://hooks.example.com/agentmeter",
        "event_types": ["meter.threshold_crossed", "project.spend_exceeded"],
        "enabled": True,
        "description": "pager",
    }
    assert isinstance(made, WebhookEndpoint)
    assert made.id == "whep_0a1b"
    assert made.created_at == datetime(2026, 11, 28, 15, tzinfo=timezone.utc)
    assert made.secret is not None
    assert made.secret.get_secret_value() == SECRET
    assert SECRET not in repr(made)
    assert SECRET not in str(made)
    assert made.to_dict()["secret"] == SECRET  # the JSON form shows it, for `--format json`


def test_create_webhook_endpoint_is_not_retried(make_client, server, sleeps):
    """A retried POST could make a second endpoint (with a secret nobody saw)."""
    server.post("/api/webhooks", status=503, json={"error": {"code": "busy", "message": "busy"}})
    with make_client() as client, pytest.raises(ServerError):
        client.create_webhook_endpoint("https://h.example.com", ["billing_record.created"])
    assert len(server.calls) == 1
    assert sleeps == []


def test_a_disabled_endpoint_of_another_project(client, server):
    server.post("/api/webhooks", status=201, json=endpoint_answer(enabled=False, secret=SECRET))
    client.create_webhook_endpoint(
        "http://h.example.com/x", ("billing_record.updated",), enabled=False, project_id="proj_2"
    )
    body = sent(server, "POST", "/api/webhooks")
    assert (body["project_id"], body["enabled"], body["description"]) == ("proj_2", False, None)


@pytest.mark.parametrize(
    ("url", "types", "field"),
    [
        ("ftp://hooks.example.com", ["meter.threshold_crossed"], "url"),
        ("not a url", ["meter.threshold_crossed"], "url"),
        ("https://user:pw@hooks.example.com", ["meter.threshold_crossed"], "url"),
        ("https://hooks.example.com", ["meter.nope"], "event_types"),
        ("https://hooks.example.com", ["webhook.test"], "event_types"),  # not subscribable
        ("https://hooks.example.com", [], "event_types"),
    ],
)
def test_bad_endpoints_are_refused_before_sending(client, server, url, types, field):
    with pytest.raises(AgentMeterValidationError) as raised:
        client.create_webhook_endpoint(url, types)
    assert raised.value.field == field
    assert len(server.calls) == 0


def test_list_webhook_endpoints(client, server):
    server.get("/api/webhooks", json=[endpoint_answer(), endpoint_answer(id="whep_2")])
    found = client.list_webhook_endpoints()
    sent(server, "GET", "/api/webhooks", {"project_id": ["proj_1"]})
    assert [endpoint.id for endpoint in found] == ["whep_0a1b", "whep_2"]
    assert all(endpoint.secret is None for endpoint in found)
    assert "secret" not in found[0].to_dict()


def test_delete_webhook_endpoint_encodes_the_id(client, server):
    server.delete("/api/webhooks/whep%2F1", json={"deleted": True})
    assert client.delete_webhook_endpoint("whep/1") is True
    sent(server, "DELETE", "/api/webhooks/whep%2F1", {"project_id": ["proj_1"]})


def test_deleting_an_unknown_endpoint_raises_not_found(client, server):
    error = {"error": {"code": "not_found", "message": "no webhook endpoint whep_x"}}
    server.delete("/api/webhooks/whep_x", status=404, json=error)
    with pytest.raises(NotFoundError):
        client.delete_webhook_endpoint("whep_x")


def test_an_empty_id_is_refused(client, server):
    for call in (
        lambda: client.delete_webhook_endpoint(""),
        lambda: client.send_test_webhook(""),
        lambda: client.redeliver_webhook(""),
    ):
        with pytest.raises(AgentMeterValidationError):
            call()
    assert len(server.calls) == 0


def test_send_test_webhook(client, server):
    server.post("/api/webhooks/whep_0a1b/test", status=201, json=delivery_answer())
    delivery = client.send_test_webhook("whep_0a1b", project_id="proj_9")
    assert sent(server, "POST", "/api/webhooks/whep_0a1b/test") == {"project_id": "proj_9"}
    assert isinstance(delivery, WebhookDelivery)
    assert (delivery.event_type, delivery.status) == ("webhook.test", DeliveryStatus.PENDING)


# ----------------------------------------------------------- deliveries


def test_list_webhook_deliveries_sends_only_the_filters_given(client, server):
    server.get("/api/webhooks/deliveries", json=[delivery_answer(status="failed", attempts=8,
               last_status_code=500, last_error="HTTP 500")])  # fmt: skip
    found = client.list_webhook_deliveries()
    sent(server, "GET", "/api/webhooks/deliveries",
         {"project_id": ["proj_1"], "limit": ["100"], "offset": ["0"]})  # fmt: skip
    assert found[0].status is DeliveryStatus.FAILED
    assert (found[0].attempts, found[0].last_status_code) == (8, 500)


def test_list_webhook_deliveries_with_filters(client, server):
    server.get("/api/webhooks/deliveries", json=[])
    assert (
        client.list_webhook_deliveries(
            endpoint_id="whep_0a1b", status="delivered", limit=5, offset=10
        )
        == []
    )
    sent(server, "GET", "/api/webhooks/deliveries", {
        "project_id": ["proj_1"], "endpoint_id": ["whep_0a1b"], "status": ["delivered"],
        "limit": ["5"], "offset": ["10"],
    })  # fmt: skip


@pytest.mark.parametrize(
    ("options", "field"),
    [({"status": "lost"}, "status"), ({"limit": 0}, "limit"), ({"offset": -1}, "offset")],
)
def test_bad_delivery_filters_are_refused(client, server, options, field):
    with pytest.raises(AgentMeterValidationError) as raised:
        client.list_webhook_deliveries(**options)
    assert raised.value.field == field
    assert len(server.calls) == 0


def test_redeliver_webhook(client, server):
    server.post("/api/webhooks/deliveries/whdl_9f8e/redeliver",
                json=delivery_answer(event_type="billing_record.created", attempts=3))  # fmt: skip
    delivery = client.redeliver_webhook("whdl_9f8e")
    body = sent(server, "POST", "/api/webhooks/deliveries/whdl_9f8e/redeliver")
    assert body == {"project_id": "proj_1"}
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.PENDING, 3)


# --------------------------------------------------------------- alerts


def test_get_alert_settings_reads_money_exactly(client, server):
    server.get("/api/alerts", json=settings_answer(threshold_shares=["50", "80.5", "100"]))
    settings = client.get_alert_settings()
    sent(server, "GET", "/api/alerts", {"project_id": ["proj_1"]})
    assert isinstance(settings, AlertSettings)
    assert settings.threshold_shares == [Decimal(50), Decimal("80.5"), Decimal(100)]
    assert settings.daily_limit == Decimal("250.00")
    assert settings.monthly_limit is None


def test_set_alert_settings_sends_only_the_fields_given(client, server):
    server.put("/api/alerts", json=settings_answer())
    client.set_alert_settings(threshold_shares=[80, "50", Decimal("100")])
    assert sent(server, "PUT", "/api/alerts") == {
        "project_id": "proj_1",
        "threshold_shares": ["50", "80", "100"],
    }


def test_set_alert_settings_sends_null_for_an_explicit_none(client, server):
    server.put("/api/alerts", json=settings_answer(daily_limit=None, monthly_limit="9000"))
    settings = client.set_alert_settings(daily_limit=None, monthly_limit="9000")
    assert sent(server, "PUT", "/api/alerts") == {
        "project_id": "proj_1",
        "daily_limit": None,
        "monthly_limit": "9000",
    }
    assert (settings.daily_limit, settings.monthly_limit) == (None, Decimal(9000))


def test_set_alert_settings_with_nothing_given_sends_the_project_only(client, server):
    server.put("/api/alerts", json=settings_answer())
    client.set_alert_settings("proj_3")
    assert sent(server, "PUT", "/api/alerts") == {"project_id": "proj_3"}


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"threshold_shares": [0]}, "threshold_shares"),
        ({"threshold_shares": [50, 1001]}, "threshold_shares"),
        ({"threshold_shares": list(range(1, 12))}, "threshold_shares"),
        ({"threshold_shares": "50"}, "threshold_shares"),
        ({"daily_limit": 0}, "daily_limit"),
        ({"monthly_limit": "-5"}, "monthly_limit"),
        ({"monthly_limit": "lots"}, "monthly_limit"),
    ],
)
def test_bad_alert_settings_are_refused_before_sending(client, server, options, field):
    with pytest.raises(AgentMeterValidationError) as raised:
        client.set_alert_settings(**options)
    assert raised.value.field == field
    assert len(server.calls) == 0
