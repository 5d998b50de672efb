"""The published AgentMeter 0.2.0 client against our live reference server.

``v02_script.py`` runs with the python of a separate venv holding
``agentmeter==0.2.0`` (see conftest.py) and prints what each 0.2 call
answered; these tests check those answers, and then check through this
repository's client that the ledger holds exactly the events and money that
0.2 sent (0.2 sends floats; the server must store ``0.3`` as exactly 0.3).

What 0.2 itself gets wrong is asserted here as a *known limitation* (so a
change in behaviour is noticed); what the server does against 0.2 users'
code is marked ``xfail(strict=True)`` with the reason.
"""

from __future__ import annotations

import json
import subprocess
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from agentmeter.testing import LiveServer

SCRIPT = Path(__file__).with_name("v02_script.py")
FIXED_EVENT_ID = "compat-v02-fixed-0001"


@pytest.fixture(scope="module")
def live_server(tmp_path_factory):
    database = tmp_path_factory.mktemp("compat-ledger") / "ledger.db"
    with LiveServer(f"sqlite:///{database}") as server:
        yield server


@pytest.fixture(scope="module")
def project(live_server):
    with live_server.client() as admin:
        return admin.create_project("compat-v02")


@pytest.fixture(scope="module")
def ours(live_server, project):
    """This repository's client, with the project key: to look into the ledger."""
    with live_server.client(
        project.api_key.get_secret_value(), project_id=project.id, retry_attempts=0
    ) as client:
        yield client


@pytest.fixture(scope="module")
def v02(v02_python, v02_environ, live_server, project, tmp_path_factory):
    """The answers of every 0.2 call, keyed by step name (see v02_script.py)."""
    config = {
        "url": live_server.url,
        "api_key": project.api_key.get_secret_value(),
        "project_id": project.id,
        "fixed_event_id": FIXED_EVENT_ID,
    }
    result = subprocess.run(
        [str(v02_python), str(SCRIPT), json.dumps(config)],
        capture_output=True,
        text=True,
        timeout=120,
        env=v02_environ(TZ="UTC"),
        cwd=tmp_path_factory.mktemp("compat-run"),
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(
            f"the 0.2 script failed ({result.returncode}):\n{result.stderr[-4000:]}",
            pytrace=False,
        )
    return json.loads(result.stdout)


def ok(v02, step):
    """The answer of a step that must have worked."""
    outcome = v02[step]
    assert "ok" in outcome, f"{step} failed under 0.2: {outcome.get('error')}"
    return outcome["ok"]


def error(v02, step):
    outcome = v02[step]
    assert "error" in outcome, f"{step} was expected to fail under 0.2, got {outcome}"
    return outcome["error"]


def our_events(ours):
    return {event.id: event for event in ours.get_events(limit=1000)}


# ------------------------------------------------------------------ set-up


def test_runs_the_published_0_2_client(v02, v02_python):
    environment = ok(v02, "environment")
    assert environment["version"] == "0.2.0"
    venv = v02_python.parent.parent
    assert Path(environment["file"]).resolve().is_relative_to(venv.resolve())
    assert ok(v02, "health")["status"] == "healthy"


def test_known_limitation_0_2_does_not_declare_requests(v02_python, v02_environ, tmp_path):
    """0.2.0's client.py imports ``requests`` but its metadata requires only httpx
    and pydantic: ``pip install agentmeter==0.2.0`` alone gives a package whose
    ``import agentmeter`` raises ModuleNotFoundError. Its users install requests
    themselves (so does conftest.py)."""
    probe = (
        "import importlib.metadata as m, importlib.util, json, pathlib; "
        "spec = importlib.util.find_spec('agentmeter'); "
        "client = pathlib.Path(spec.origin).with_name('client.py').read_text(); "
        "print(json.dumps([m.requires('agentmeter'), 'import requests' in client, spec.origin]))"
    )
    result = subprocess.run(
        [str(v02_python), "-c", probe],
        capture_output=True,
        text=True,
        timeout=60,
        env=v02_environ(),
        cwd=tmp_path,  # not the repo: ``-c`` puts the working directory on sys.path
        check=True,
    )
    requires, imports_requests, origin = json.loads(result.stdout)
    assert Path(origin).resolve().is_relative_to(v02_python.parent.parent.resolve())
    runtime = [item for item in requires if "extra ==" not in item]
    assert imports_requests
    assert not any(item.startswith("requests") for item in runtime), runtime
    assert any(item.startswith("httpx") for item in runtime)


# ------------------------------------------------------------------ events


def test_records_all_three_payment_types(v02):
    api = ok(v02, "api_request")
    token = ok(v02, "token")
    first, second = ok(v02, "instant_1"), ok(v02, "instant_2")
    # 0.2 parses the server's decimal-string cost into a float.
    assert v02["api_request"]["types"]["cost"] == "float"
    assert api["success"] is True
    assert api["cost"] == 0.9  # 3 x 0.3, not 0.8999999999999999
    assert token["cost"] == 0.053  # 1000 x 0.000003 + 500 x 0.0001
    assert (first["cost"], second["cost"]) == (0.1, 0.2)
    for answer in (api, token, first, second):
        assert answer["message"] == "event recorded"
        assert answer["event_id"]
        assert answer["timestamp"].endswith("+00:00")


def test_ledger_holds_exactly_what_0_2_sent(v02, ours):
    stored = our_events(ours)
    # Six events: the unawaited coroutine and the event 0.2 refused to build
    # sent nothing; the fixed id was sent twice and is stored once.
    assert len(stored) == 6
    api = stored[ok(v02, "api_request")["event_id"]]
    assert api.payment_type.value == "api_request_pay"
    assert api.event_type.value == "api_call"
    assert api.api_calls == 3
    assert api.unit_price == Decimal("0.3")
    assert str(api.unit_price) == "0.3"  # the float 0.3 stored as exactly 0.3
    assert api.total_cost == Decimal("0.9")
    assert api.metadata == {"model": "m1"}
    assert (api.user_id, api.agent_id) == ("alice", "agent-02")

    token = stored[ok(v02, "token")["event_id"]]
    assert (token.tokens_in, token.tokens_out) == (1000, 500)
    assert token.input_token_price == Decimal("0.000003")  # sent as 3e-06
    assert token.output_token_price == Decimal("0.0001")
    assert token.total_cost == Decimal("0.053")

    first = stored[ok(v02, "instant_1")["event_id"]]
    second = stored[ok(v02, "instant_2")["event_id"]]
    assert (first.amount, first.description, first.user_id) == (Decimal("0.1"), "one", "alice")
    assert (second.amount, second.description, second.user_id) == (Decimal("0.2"), "two", "carol")
    assert first.total_cost + second.total_cost == Decimal("0.3")


def test_stats_sum_exactly(v02, ours):
    # Updated for issue 11: every timeframe ends now, so tokyo's event (0.5),
    # stamped nine hours ahead (see the known limitation below), is not counted
    # until its time comes; every event is in the ledger (the next tests).
    expected_cost = Decimal("0.9") + Decimal("0.053") + Decimal("0.1") + Decimal("0.2")
    expected_cost += Decimal("0.70")  # the fixed id once
    stats = ours.get_meter_stats(timeframe="all")
    assert stats.total_cost == expected_cost == Decimal("1.953")
    assert (stats.total_api_calls, stats.total_tokens_in, stats.total_tokens_out) == (5, 1000, 500)
    assert stats.total_events == 5
    for step, timeframe in (("stats_30_days", "30 days"), ("stats_all", "all")):
        answer = ok(v02, step)
        assert v02[step]["types"]["total_cost"] == "float"
        assert answer == {
            "total_api_calls": 5,
            "total_tokens_in": 1000,
            "total_tokens_out": 500,
            "total_cost": 1.953,
            "timeframe": timeframe,
        }


def test_same_event_id_twice_is_stored_and_charged_once(v02, ours):
    first, again = ok(v02, "fixed_first"), ok(v02, "fixed_again")
    assert first["event_id"] == again["event_id"] == FIXED_EVENT_ID
    assert first["cost"] == again["cost"] == 0.7
    assert first["message"] == "event recorded"
    assert "duplicate" in again["message"]  # 0.2's model drops the "duplicate" field
    assert again["timestamp"] == first["timestamp"]  # the stored event's time
    assert ours.get_events(user_id="dave")[0].id == FIXED_EVENT_ID
    assert len(ours.get_events(user_id="dave")) == 1
    assert ours.get_user_meter(user_id="dave").current_usage == Decimal("0.7")


def test_event_costs_charge_user_meters(v02, ours):
    assert ours.get_user_meter(user_id="alice").current_usage == Decimal("1.053")
    assert ours.get_user_meter(user_id="carol").current_usage == Decimal("0.2")
    assert ours.get_user_meter(user_id="tokyo").current_usage == Decimal("0.5")


def test_known_limitation_record_methods_are_coroutines(v02, ours):
    """0.2's record_* methods are ``async``: called without ``await`` they return
    a coroutine and record nothing (Python warns "never awaited")."""
    unawaited = ok(v02, "unawaited")
    assert unawaited["type"] == "coroutine"
    assert any("never awaited" in warning for warning in unawaited["warnings"])
    assert all(
        event.unit_price != Decimal(5)
        for event in ours.get_events(limit=1000)
        if event.payment_type.value == "api_request_pay"
    )


def test_known_limitation_0_2_context_managers_and_tracker_record_nothing(v02, ours):
    """0.2's own capture surfaces lose events against any server:

    - ``track_api_request_pay(...)`` (and the other ``track_*`` blocks, the
      ``meter_*`` decorators) call the async ``record_*`` without ``await``;
    - ``AgentMeterTracker.track_event`` builds a bare ``MeterEvent`` with no
      ``payment_type`` (its ``api_calls``/``tokens_*`` are dropped by pydantic),
      which the server refuses with 422; the tracker prints a warning and drops it.
    """
    assert any("never awaited" in w for w in ok(v02, "context_manager")["warnings"])
    assert ours.get_events(user_id="erin") == []
    printed = ok(v02, "tracker_track_event")["printed"]
    assert printed.startswith("Warning: Failed to record AgentMeter event:")
    assert "payment_type" in printed
    assert ours.get_events(user_id="frank") == []


def test_known_limitation_instant_pay_needs_a_description(v02):
    """0.2's ``record_instant_pay`` defaults ``description`` to None, which its own
    InstantPayEvent model refuses: pydantic raises before anything is sent."""
    failure = error(v02, "instant_no_description")
    assert failure["type"] == "ValidationError"
    assert failure["module"].startswith("pydantic")
    assert "description" in failure["message"]


def test_known_limitation_naive_local_time_is_read_as_utc(v02, ours):
    """0.2 stamps events with ``datetime.now()``: naive *local* time. The server
    reads a naive time as UTC (WIRE.md), so under TZ=JST-9 (UTC+9) 0.2's event
    is stored nine hours in the future (a naive time is allowed up to 14 hours
    ahead for this reason, where a time with an offset is refused beyond 5 minutes),
    and stats leave it out until then. Run 0.2 clients with TZ=UTC."""
    sent_after = datetime.fromisoformat(ok(v02, "tokyo_sent_around")["utc_before"])
    answer = ok(v02, "tokyo")
    stored = ours.get_events(user_id="tokyo")
    assert len(stored) == 1
    shift = stored[0].timestamp - sent_after
    assert timedelta(hours=9) <= shift < timedelta(hours=9, minutes=1)
    assert datetime.fromisoformat(answer["timestamp"]) == stored[0].timestamp


# ------------------------------------------------------------------- reads


def test_get_events_returns_the_raw_json_list(v02):
    """0.2's get_events returns the parsed JSON as is: a list of dicts.

    Known limitation: money in it is the wire's decimal text (``"0.3"``), not a
    float, so 0.2 code doing arithmetic on ``event["total_cost"]`` must convert.
    """
    assert v02["events_all"]["types"] == "list"
    events = ok(v02, "events_all")
    assert len(events) == 6
    assert all(isinstance(event, dict) for event in events)
    assert events[0]["user_id"] == "tokyo"  # newest first: stamped nine hours ahead
    by_id = {event["id"]: event for event in events}
    api = by_id[ok(v02, "api_request")["event_id"]]
    assert api["unit_price"] == "0.3"
    assert isinstance(api["total_cost"], str)
    assert Decimal(api["total_cost"]) == Decimal("0.9")
    assert api["payment_type"] == "api_request_pay"
    assert api["timestamp"].endswith("Z")

    alice = ok(v02, "events_alice")
    assert len(alice) == 3
    assert {event["user_id"] for event in alice} == {"alice"}
    instant = ok(v02, "events_instant")
    assert sorted(event["amount"] for event in instant) == ["0.1", "0.2", "0.5"]
    assert {event["event_type"] for event in instant} == {"instant_payment"}


# ------------------------------------------------------------- user meters


def test_user_meter_set_get_increment_reset(v02, ours):
    set_answer = ok(v02, "meter_set")
    assert v02["meter_set"]["types"]["threshold_amount"] == "float"
    assert set_answer["threshold_amount"] == 10.5
    assert set_answer["current_usage"] == 0.0
    assert ok(v02, "meter_get_after_set") == set_answer

    assert ok(v02, "meter_increment_1")["current_usage"] == 0.1
    # 0.1 + 0.2 summed exactly on the server: 0.3, not 0.30000000000000004
    assert ok(v02, "meter_increment_2")["current_usage"] == 0.3
    assert ok(v02, "meter_get_after_increment")["current_usage"] == 0.3

    reset = ok(v02, "meter_reset")
    assert reset["current_usage"] == 0.0
    assert reset["threshold_amount"] == 10.5  # a reset keeps the budget
    assert reset["last_reset_at"] > set_answer["last_reset_at"]
    assert ok(v02, "meter_get_after_reset") == reset

    meter = ours.get_user_meter(user_id="bob")
    assert meter.threshold_amount == Decimal("10.5")
    assert meter.current_usage == Decimal(0)


def test_invalid_money_is_a_422_that_0_2_reports(v02):
    failure = error(v02, "meter_negative_increment")
    assert failure["type"] == "AgentMeterAPIError"
    assert failure["status_code"] == 422
    # 0.2 shows the server's error.message: the WIRE.md error envelope.
    assert failure["message"].startswith("amount:")


def test_get_user_meter_of_a_charged_user_without_threshold(v02):
    """An unset threshold goes on the wire as "0" with threshold_set false, which
    0.2 can read (our client reads it back as None)."""
    meter = ok(v02, "meter_get_charged_never_set")
    assert meter["current_usage"] == 1.053
    assert meter["threshold_amount"] == 0.0


def test_get_user_meter_of_an_unknown_user_is_a_clean_404(v02):
    """A user never charged nor given a budget has no meter: 0.2 gets its own
    clean "not found" error instead of failing to parse nulls."""
    failure = error(v02, "meter_get_unknown_user")
    assert "404" in str(failure) or "not found" in str(failure).lower()


# --------------------------------------------------------- billing records


def test_billing_records(v02, ours, project):
    created = ok(v02, "billing_create")
    assert v02["billing_create"]["types"]["amount"] == "float"
    assert created["amount"] == 12.34
    assert created["status"] == "pending"
    assert created["project_id"] == project.id
    # 0.2 sends naive period times; the server reads them as UTC.
    assert created["period_start"] == "2025-01-01T00:00:00+00:00"
    assert created["period_end"] == "2025-02-01T00:00:00+00:00"
    assert [record["id"] for record in ok(v02, "billing_list")] == [created["id"]]
    assert ok(v02, "billing_update")["status"] == "paid"
    assert ok(v02, "billing_update_amount")["amount"] == 0.7

    (record,) = ours.list_billing_records()
    assert record.id == created["id"]
    assert record.amount == Decimal("0.7")
    assert str(record.amount) == "0.7"
    assert record.status.value == "paid"
    assert record.period_start.isoformat() == "2025-01-01T00:00:00+00:00"


# ------------------------------------------------------------- keys, access


def test_project_key_on_project_endpoints(v02, project):
    assert ok(v02, "project_get")["id"] == project.id
    assert [item["id"] for item in ok(v02, "project_list")] == [project.id]
    assert error(v02, "project_create_with_project_key")["status_code"] == 403
    assert error(v02, "project_other")["status_code"] == 403


def test_wrong_key_is_401(v02):
    failure = error(v02, "wrong_key")
    assert failure["type"] == "AgentMeterAPIError"
    assert failure["status_code"] == 401
