"""``agentmeter webhooks ...`` and ``agentmeter alerts ...`` (issue 17), against a server
faked with ``responses`` (the fake ``server`` fixture of tests/conftest.py): the
request each command sends, what it prints, and its exit code."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import pytest

SECRET = "whsec_c2VjcmV0LW9mLXRoZS1lbmRwb2ludA=="
WHEN = "2026-11-28T15:00:00Z"
ENDPOINT = {
    "id": "whep_3f2a",
    "project_id": "proj_1",
    "url": "https://hooks.example.com/agentmeter",
    "event_types": ["meter.threshold_crossed", "project.spend_exceeded"],
    "enabled": True,
    "description": "pager",
    "created_at": WHEN,
}
DELIVERY = {
    "id": "whdl_81c0",
    "event_id": "evt_5d1e",
    "endpoint_id": "whep_3f2a",
    "event_type": "webhook.test",
    "status": "pending",
    "attempts": 0,
    "next_attempt_at": WHEN,
    "last_status_code": None,
    "last_error": None,
    "created_at": WHEN,
    "updated_at": WHEN,
    "delivered_at": None,
}
SETTINGS = {
    "project_id": "proj_1",
    "threshold_shares": ["50", "80", "100"],
    "daily_limit": "250.00",
    "monthly_limit": None,
}


@pytest.fixture
def flags(server):
    return ["--base-url", server.base_url, "--api-key", server.api_key, "--project-id", "proj_1"]


def the_request(server, method, path, query=None):
    """The one request sent: method, path and query checked; its JSON body (or None)."""
    assert len(server.calls) == 1
    request = server.calls[0].request
    parts = urlsplit(request.url)
    assert (request.method, parts.path) == (method, path)
    assert parse_qs(parts.query) == (query or {})
    return None if request.body is None else json.loads(request.body)


# ------------------------------------------------------------ webhooks add


def test_add_prints_the_endpoint_and_its_secret_once(am, server, flags):
    server.post("/api/webhooks", status=201, json={**ENDPOINT, "secret": SECRET})
    done = am("webhooks", "add", ENDPOINT["url"],
              "--events", "meter.threshold_crossed,project.spend_exceeded",
              "--description", "pager", *flags)  # fmt: skip
    assert done.exit_code == 0, done.stderr
    assert the_request(server, "POST", "/api/webhooks") == {
        "project_id": "proj_1",
        "url": ENDPOINT["url"],
        "event_types": ["meter.threshold_crossed", "project.spend_exceeded"],
        "enabled": True,
        "description": "pager",
    }
    assert "whep_3f2a" in done.stdout
    secret_lines = [line for line in done.stdout.splitlines() if SECRET in line]
    assert len(secret_lines) == 1
    assert "shown only now" in secret_lines[0]


def test_add_as_json_has_the_id_and_the_secret(am, server, flags):
    server.post("/api/webhooks", status=201, json={**ENDPOINT, "secret": SECRET})
    done = am("webhooks", "add", ENDPOINT["url"], "--events", "billing_record.created",
              "--format", "json", *flags)  # fmt: skip
    assert done.exit_code == 0, done.stderr
    document = json.loads(done.stdout)
    assert (document["id"], document["secret"]) == ("whep_3f2a", SECRET)


def test_add_disabled_with_repeated_events(am, server, flags):
    server.post("/api/webhooks", status=201, json={**ENDPOINT, "enabled": False, "secret": SECRET})
    events = ["--events", "billing_record.created"]
    events += ["--events", "billing_record.updated,billing_record.created"]
    done = am("webhooks", "add", "http://hooks.example.com/x", *events, "--disabled", *flags)
    assert done.exit_code == 0, done.stderr
    body = the_request(server, "POST", "/api/webhooks")
    assert body["event_types"] == ["billing_record.created", "billing_record.updated"]
    assert (body["enabled"], body["description"]) == (False, None)


@pytest.mark.parametrize(
    ("url", "events", "field"),
    [
        ("ftp://hooks.example.com", "meter.threshold_crossed", "url"),
        ("https://hooks.example.com", "meter.nope", "event_types"),
        ("https://hooks.example.com", "webhook.test", "event_types"),
    ],
)
def test_add_refuses_bad_input_before_sending(am, server, flags, error_line, url, events, field):
    done = am("webhooks", "add", url, "--events", events, *flags)
    assert done.exit_code == 2
    assert error_line(done).startswith(f"error: {field}")
    assert len(server.calls) == 0


def test_add_needs_events(am, server, flags):
    done = am("webhooks", "add", "https://hooks.example.com", *flags)
    assert done.exit_code == 2
    assert "--events" in done.stderr


# ---------------------------------------------------- list, delete, test


def test_list_as_a_table_and_as_json(am, server, flags):
    second = {**ENDPOINT, "id": "whep_9", "enabled": False, "description": None}
    server.get("/api/webhooks", json=[ENDPOINT, second])
    done = am("webhooks", "list", *flags)
    assert done.exit_code == 0, done.stderr
    the_request(server, "GET", "/api/webhooks", {"project_id": ["proj_1"]})
    assert "whep_3f2a" in done.stdout
    assert "whep_9" in done.stdout
    assert "2 webhook endpoints" in done.stdout
    assert "secret" not in done.stdout.lower()

    listed = json.loads(am("webhooks", "list", "--format", "json", *flags).stdout)
    assert [item["id"] for item in listed] == ["whep_3f2a", "whep_9"]
    assert all("secret" not in item for item in listed)


def test_list_says_when_there_is_none(am, server, flags):
    server.get("/api/webhooks", json=[])
    done = am("webhooks", "list", *flags)
    assert done.exit_code == 0
    assert done.stdout.startswith("no webhook endpoints")


def test_delete(am, server, flags):
    server.delete("/api/webhooks/whep_3f2a", json={"deleted": True})
    done = am("webhooks", "delete", "whep_3f2a", *flags)
    assert done.exit_code == 0, done.stderr
    the_request(server, "DELETE", "/api/webhooks/whep_3f2a", {"project_id": ["proj_1"]})
    assert done.stdout.strip() == "whep_3f2a: deleted"


def test_deleting_an_unknown_endpoint_is_an_api_error(am, server, flags, error_line):
    answer = {"error": {"code": "not_found", "message": "no webhook endpoint whep_x"}}
    server.delete("/api/webhooks/whep_x", status=404, json=answer)
    done = am("webhooks", "delete", "whep_x", *flags)
    assert done.exit_code == 1
    assert "whep_x" in error_line(done)
    assert server.api_key not in done.stderr


def test_test_sends_a_test_event_and_shows_the_delivery(am, server, flags):
    server.post("/api/webhooks/whep_3f2a/test", status=201, json=DELIVERY)
    done = am("webhooks", "test", "whep_3f2a", *flags)
    assert done.exit_code == 0, done.stderr
    assert the_request(server, "POST", "/api/webhooks/whep_3f2a/test") == {"project_id": "proj_1"}
    assert "whdl_81c0" in done.stdout
    assert "webhook.test" in done.stdout
    assert "pending" in done.stdout


# ------------------------------------------------ deliveries, redeliver


def test_deliveries_with_filters(am, server, flags):
    failed = {**DELIVERY, "status": "failed", "attempts": 8, "last_status_code": 500,
              "last_error": "HTTP 500 [server error]", "next_attempt_at": None}  # fmt: skip
    server.get("/api/webhooks/deliveries", json=[failed])
    done = am("webhooks", "deliveries", "--endpoint", "whep_3f2a", "--status", "failed",
              "--limit", "20", *flags)  # fmt: skip
    assert done.exit_code == 0, done.stderr
    the_request(server, "GET", "/api/webhooks/deliveries", {
        "project_id": ["proj_1"], "endpoint_id": ["whep_3f2a"], "status": ["failed"],
        "limit": ["20"], "offset": ["0"],
    })  # fmt: skip
    row = next(line for line in done.stdout.splitlines() if "whdl_81c0" in line)
    assert row.split()[3:6] == ["failed", "8", "500"]
    assert "HTTP 500 [server error]" in row  # data, never read as markup
    assert "1 delivery" in done.stdout


def test_deliveries_as_json_and_a_count_of_several(am, server, flags):
    server.get("/api/webhooks/deliveries", json=[DELIVERY, {**DELIVERY, "id": "whdl_2"}])
    done = am("webhooks", "deliveries", "--format", "json", *flags)
    assert json.loads(done.stdout) == [DELIVERY, {**DELIVERY, "id": "whdl_2"}]
    assert "2 deliveries" in am("webhooks", "deliveries", *flags).stdout


@pytest.mark.parametrize("bad", [["--status", "lost"], ["--limit", "0"], ["--limit", "1001"]])
def test_deliveries_refuses_bad_filters(am, server, flags, bad):
    done = am("webhooks", "deliveries", *bad, *flags)
    assert done.exit_code == 2
    assert len(server.calls) == 0


def test_redeliver(am, server, flags):
    again = {**DELIVERY, "event_type": "billing_record.created", "attempts": 3}
    server.post("/api/webhooks/deliveries/whdl_81c0/redeliver", json=again)
    done = am("webhooks", "redeliver", "whdl_81c0", "--format", "json", *flags)
    assert done.exit_code == 0, done.stderr
    body = the_request(server, "POST", "/api/webhooks/deliveries/whdl_81c0/redeliver")
    assert body == {"project_id": "proj_1"}
    assert json.loads(done.stdout)["attempts"] == 3


# ------------------------------------------------------------------ alerts


def test_alerts_list_prints_money_exactly(am, server, flags):
    exact = {**SETTINGS, "threshold_shares": ["50", "80.5"], "monthly_limit": "12345.6789"}
    server.get("/api/alerts", json=exact)
    done = am("alerts", "list", *flags)
    assert done.exit_code == 0, done.stderr
    the_request(server, "GET", "/api/alerts", {"project_id": ["proj_1"]})
    assert "50%, 80.5%" in done.stdout
    assert "12,345.6789" in done.stdout
    daily = next(line for line in done.stdout.splitlines() if "Daily" in line)
    assert daily.split()[-1] == "250"


def test_alerts_list_as_json_keeps_the_wire_text(am, server, flags):
    server.get("/api/alerts", json=SETTINGS)
    done = am("alerts", "list", "--format", "json", *flags)
    assert json.loads(done.stdout) == SETTINGS


def test_alerts_set_sends_only_what_is_given(am, server, flags):
    server.put("/api/alerts", json=SETTINGS)
    done = am("alerts", "set", "--shares", "50,80,100", "--daily-limit", "250.00", *flags)
    assert done.exit_code == 0, done.stderr
    assert the_request(server, "PUT", "/api/alerts") == {
        "project_id": "proj_1",
        "threshold_shares": ["50", "80", "100"],
        "daily_limit": "250.00",
    }
    assert "50%, 80%, 100%" in done.stdout


def test_alerts_set_clears_a_limit_with_null(am, server, flags):
    server.put("/api/alerts", json={**SETTINGS, "daily_limit": None})
    done = am("alerts", "set", "--clear-daily", "--monthly-limit", "0.1", *flags)
    assert done.exit_code == 0, done.stderr
    assert the_request(server, "PUT", "/api/alerts") == {
        "project_id": "proj_1",
        "daily_limit": None,
        "monthly_limit": "0.1",
    }


def test_alerts_set_shares_none_turns_share_alerts_off(am, server, flags):
    server.put("/api/alerts", json={**SETTINGS, "threshold_shares": []})
    done = am("alerts", "set", "--shares", "none", *flags)
    assert done.exit_code == 0, done.stderr
    assert the_request(server, "PUT", "/api/alerts")["threshold_shares"] == []
    assert "none" in next(line for line in done.stdout.splitlines() if "shares" in line)


@pytest.mark.parametrize(
    ("args", "says"),
    [
        ([], "nothing to change"),
        (["--daily-limit", "5", "--clear-daily"], "not both"),
        (["--shares", "0,50"], "threshold_shares"),
        (["--shares", "50,lots"], "'lots' is not a percent"),
        (["--monthly-limit", "0"], "monthly_limit"),
        (["--daily-limit", "-1"], "daily"),
    ],
)
def test_alerts_set_refuses_bad_input_before_sending(am, server, flags, error_line, args, says):
    done = am("alerts", "set", *args, *flags)
    assert done.exit_code == 2
    assert says in error_line(done)
    assert len(server.calls) == 0


def test_the_groups_are_in_the_help(am):
    done = am("--help")
    assert "webhooks" in done.stdout
    assert "alerts" in done.stdout
    for group in ("webhooks", "alerts"):
        assert am(group, "--help").exit_code == 0
