"""``agentmeter prices missing`` and the warning of ``billing create``: events
recorded at 0 for want of a price, found by model, on each backend the CLI
reaches (the embedded ledger, a live server on SQLite, one on PostgreSQL)."""

from __future__ import annotations

import csv
import io
import json
import uuid
from datetime import datetime, timedelta, timezone

from agentmeter.models import TokenBasedPayEvent

MARCH = datetime(2025, 3, 10, 12, tzinfo=timezone.utc)


def unpriced(project_id: str, model: str, tokens_in: int, at: datetime) -> TokenBasedPayEvent:
    return TokenBasedPayEvent(
        id=f"ev-{uuid.uuid4()}",
        project_id=project_id,
        agent_id="agent",
        user_id="alice",
        tokens_in=tokens_in,
        tokens_out=tokens_in // 10,
        input_token_price=0,
        output_token_price=0,
        timestamp=at,
        metadata={"model": model, "unpriced": True},
    )


def priced(project_id: str, at: datetime) -> TokenBasedPayEvent:
    return TokenBasedPayEvent(
        project_id=project_id,
        agent_id="agent",
        user_id="alice",
        tokens_in=1000,
        tokens_out=100,
        input_token_price="0.000003",
        output_token_price="0.000015",
        timestamp=at,
        metadata={"model": "gpt-4o"},
    )


def record_two_unpriced_models(target) -> None:
    pid = target.project_id
    result = target.client.record_events(
        [
            unpriced(pid, "house-b", 1000, MARCH),
            unpriced(pid, "house-a", 2000, MARCH + timedelta(hours=1)),
            unpriced(pid, "house-a", 1500, MARCH + timedelta(days=1)),
            unpriced(pid, "house-a", 9, MARCH - timedelta(days=60)),  # January
            priced(pid, MARCH),
        ]
    )
    assert result.accepted == 5, result


def test_none_missing_says_so(am, target):
    target.client.record_events([priced(target.project_id, MARCH)])
    table = am("prices", "missing", *target.flags)
    assert (table.exit_code, table.stdout) == (0, "no unpriced events\n"), table.stderr
    document = am("prices", "missing", *target.flags, "--format", "json")
    assert document.exit_code == 0
    assert json.loads(document.stdout) == {"models": []}
    sheet = am("prices", "missing", *target.flags, "--format", "csv")
    assert sheet.stdout == "model,events,tokens_in,tokens_out,first_seen,last_seen\n"


def test_two_unpriced_models_in_a_table(am, target):
    record_two_unpriced_models(target)
    done = am("prices", "missing", *target.flags)
    assert done.exit_code == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split() == [
        "model",
        "events",
        "tokens_in",
        "tokens_out",
        "first_seen",
        "last_seen",
    ]
    assert lines[2].split() == [
        "house-a",
        "3",
        "3,509",
        "350",
        "2025-01-09T12:00:00Z",
        "2025-03-11T12:00:00Z",
    ]
    assert lines[3].split()[:4] == ["house-b", "1", "1,000", "100"]
    assert "2 unpriced models" in done.stdout
    assert "agentmeter prices set MODEL" in done.stdout


def test_two_unpriced_models_as_json_and_csv_within_dates(am, target):
    record_two_unpriced_models(target)
    window = ["--start-date", "2025-03-01", "--end-date", "2025-03-11"]
    done = am("prices", "missing", *target.flags, *window, "--format", "json")
    assert done.exit_code == 0, done.stderr
    assert json.loads(done.stdout) == {
        "models": [
            {
                "model": "house-a",
                "events": 1,
                "tokens_in": 2000,
                "tokens_out": 200,
                "first_seen": "2025-03-10T13:00:00Z",
                "last_seen": "2025-03-10T13:00:00Z",
            },
            {
                "model": "house-b",
                "events": 1,
                "tokens_in": 1000,
                "tokens_out": 100,
                "first_seen": "2025-03-10T12:00:00Z",
                "last_seen": "2025-03-10T12:00:00Z",
            },
        ]
    }
    sheet = am("prices", "missing", *target.flags, "--since", "2025-03-01", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(sheet.stdout)))
    assert [(row["model"], row["events"], row["tokens_in"]) for row in rows] == [
        ("house-a", "2", "3500"),
        ("house-b", "1", "1000"),
    ]


def test_an_end_before_the_start_is_a_usage_error(am, target):
    done = am("prices", "missing", *target.flags, "--start-date", "2025-03-02",
              "--end-date", "2025-03-01")  # fmt: skip
    assert done.exit_code == 2
    assert "--end-date" in done.stderr


# ------------------------------------------------------ billing create


def bill(am, target, since: str, until: str):
    done = am("billing", "create", *target.flags, "--since", since, "--until", until)
    assert done.exit_code == 0, done.stderr
    return done


def test_billing_create_warns_of_unpriced_events_in_the_period(am, target):
    record_two_unpriced_models(target)
    done = bill(am, target, "2025-03-01", "2025-04-01")

    assert "pending" in done.stdout  # the record is made all the same
    assert len(target.client.list_billing_records()) == 1
    warning = done.stderr
    assert warning.startswith("warning: 2 models of this period had no price")
    assert "house-a: 2 events, 3,500 tokens in, 350 out" in warning
    assert "house-b: 1 event, 1,000 tokens in, 100 out" in warning
    assert "agentmeter prices set MODEL --input X --output Y" in warning


def test_billing_create_does_not_warn_without_unpriced_events_in_the_period(am, target):
    record_two_unpriced_models(target)
    done = bill(am, target, "2025-02-01", "2025-03-01")  # unpriced in January and March only
    assert done.stderr == ""
    target.client.record_events([priced(target.project_id, MARCH + timedelta(days=40))])
    done = bill(am, target, "2025-04-01", "2025-05-01")
    assert done.stderr == ""
    assert "pending" in done.stdout


def test_billing_create_as_json_keeps_stdout_clean(am, target):
    record_two_unpriced_models(target)
    done = am("billing", "create", *target.flags, "--since", "2025-01-01", "--until",
              "2025-04-01", "--format", "json")  # fmt: skip
    assert done.exit_code == 0, done.stderr
    assert json.loads(done.stdout)["status"] == "pending"
    assert "house-a: 3 events" in done.stderr


RECORD = {
    "id": "bill_1",
    "project_id": "proj_1",
    "period_start": "2025-03-01T00:00:00Z",
    "period_end": "2025-04-01T00:00:00Z",
    "amount": "12.50",
    "status": "pending",
}
FLAGS = ["--project-id", "proj_1"]


def test_billing_create_on_a_server_without_the_endpoint_just_bills(am, server, monkeypatch):
    """A server before GET /api/prices/missing answers 404: nothing to warn of."""
    monkeypatch.setenv("AGENTMETER_RETRY_ATTEMPTS", "0")
    server.post("/billing-records", json=RECORD, status=201)
    server.get("/api/prices/missing", json={"error": {"code": "not_found"}}, status=404)
    done = am("billing", "create", "--base-url", server.base_url, "--api-key", server.api_key,
              *FLAGS, "--since", "2025-03-01", "--until", "2025-04-01")  # fmt: skip
    assert (done.exit_code, done.stderr) == (0, "")
    assert "12.5" in done.stdout


def test_a_failed_look_for_unpriced_events_is_a_warning_not_an_error(am, server, monkeypatch):
    """The record is made: failing the command would invite a second one."""
    monkeypatch.setenv("AGENTMETER_RETRY_ATTEMPTS", "0")
    server.post("/billing-records", json=RECORD, status=201)
    server.get("/api/prices/missing", json={"error": {"code": "boom"}}, status=500)
    done = am("billing", "create", "--base-url", server.base_url, "--api-key", server.api_key,
              *FLAGS, "--since", "2025-03-01", "--until", "2025-04-01")  # fmt: skip
    assert done.exit_code == 0
    assert "12.5" in done.stdout
    assert done.stderr.startswith("warning: could not look for unpriced events")
    assert server.api_key not in done.stderr
