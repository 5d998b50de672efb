"""Drive the published AgentMeter 0.2.0 client against a live server; print JSON.

Run by ``test_compat_v02.py`` with the python of a separate virtualenv that has
``agentmeter==0.2.0`` installed (never this repository's package)::

    python v02_script.py '{"url": ..., "api_key": ..., "project_id": ...}'

Every step is recorded as ``{"ok": <result>}`` or ``{"error": {...}}`` so the
test can assert on each one; the script itself asserts nothing. It uses only
the standard library and the 0.2 package.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import gc
import io
import json
import os
import sys
import time
import traceback
import warnings


def _jsonable(value):
    """A 0.2 answer (pydantic model, list, dict, float, datetime) as JSON data."""
    if hasattr(value, "model_dump"):
        value = value.model_dump()
    if isinstance(value, dict):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(item) for item in value]
    if isinstance(value, (datetime.datetime, datetime.date)):
        return value.isoformat()
    if hasattr(value, "value"):  # an enum
        return value.value
    return value


def _types(value):
    """The Python type name of each field of a 0.2 model (to show float vs str)."""
    if hasattr(value, "model_dump"):
        value = value.model_dump()
    if isinstance(value, dict):
        return {str(key): type(item).__name__ for key, item in value.items()}
    return type(value).__name__


class Steps:
    def __init__(self) -> None:
        self.results: dict[str, dict] = {}

    def run(self, name, call):
        try:
            value = call()
        except Exception as exc:  # recorded for the test, never raised
            self.results[name] = {
                "error": {
                    "type": type(exc).__name__,
                    "module": type(exc).__module__,
                    "message": str(exc),
                    "status_code": getattr(exc, "status_code", None),
                    "traceback": traceback.format_exc(limit=3),
                }
            }
            return None
        self.results[name] = {"ok": _jsonable(value), "types": _types(value)}
        return value


def main() -> None:
    config = json.loads(sys.argv[1])
    # The published 0.2.0, from the venv running this script (not this repo).
    import agentmeter
    from agentmeter import (
        AgentMeterClient,
        AgentMeterTracker,
        APIRequestPayEvent,
        track_api_request_pay,
    )
    from agentmeter.exceptions import AgentMeterAPIError

    project_id = config["project_id"]
    steps = Steps()
    steps.results["environment"] = {
        "ok": {
            "version": agentmeter.__version__,
            "file": agentmeter.__file__,
            "executable": sys.executable,
            "tz": os.environ.get("TZ"),
        }
    }
    client = AgentMeterClient(
        api_key=config["api_key"],
        project_id=project_id,
        agent_id="agent-02",
        user_id="alice",
        base_url=config["url"],
    )
    steps.run("health", client.health_check)

    # --- events of the three payment types (0.2's record_* are coroutines)
    steps.run(
        "api_request",
        lambda: asyncio.run(
            client.record_api_request_pay(api_calls=3, unit_price=0.3, metadata={"model": "m1"})
        ),
    )
    steps.run(
        "token",
        lambda: asyncio.run(
            client.record_token_based_pay(
                tokens_in=1000,
                tokens_out=500,
                input_token_price=0.000003,
                output_token_price=0.0001,
            )
        ),
    )
    steps.run(
        "instant_1",
        lambda: asyncio.run(client.record_instant_pay(amount=0.1, description="one")),
    )
    steps.run(
        "instant_2",
        lambda: asyncio.run(
            client.record_instant_pay(amount=0.2, description="two", user_id="carol")
        ),
    )
    # 0.2's own model refuses record_instant_pay() without a description.
    steps.run(
        "instant_no_description",
        lambda: asyncio.run(client.record_instant_pay(amount=1.0)),
    )

    # Not awaited: 0.2 returns a coroutine and sends nothing.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        unawaited = client.record_api_request_pay(api_calls=1, unit_price=5)
        steps.results["unawaited"] = {"ok": {"type": type(unawaited).__name__}}
        del unawaited
        gc.collect()
    steps.results["unawaited"]["ok"]["warnings"] = [str(w.message) for w in caught]

    # 0.2's own context manager and tracker, which users call as documented
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with track_api_request_pay(
            client, project_id, "agent-02", user_id="erin", unit_price=0.5
        ) as usage:
            usage["api_calls"] = 2
        gc.collect()
    steps.results["context_manager"] = {"ok": {"warnings": [str(w.message) for w in caught]}}
    printed = io.StringIO()
    tracker = AgentMeterTracker(client, project_id, "agent-02", user_id="frank", auto_flush=False)
    with contextlib.redirect_stdout(printed):
        tracker.track_event(api_calls=1)
        tracker.flush()
    steps.results["tracker_track_event"] = {"ok": {"printed": printed.getvalue()}}

    # --- the same event id twice: stored once
    fixed = APIRequestPayEvent(
        id=config["fixed_event_id"],
        project_id=project_id,
        agent_id="agent-02",
        user_id="dave",
        api_calls=2,
        unit_price=0.35,
    )
    steps.run("fixed_first", lambda: client.record_event(fixed))
    steps.run("fixed_again", lambda: client.record_event(fixed))

    # --- a naive local time, as 0.2 sends it, under a non-UTC zone
    os.environ["TZ"] = "JST-9"
    time.tzset()
    before = datetime.datetime.now(datetime.timezone.utc)
    steps.run(
        "tokyo",
        lambda: asyncio.run(
            client.record_instant_pay(amount=0.5, description="tokyo", user_id="tokyo")
        ),
    )
    steps.results["tokyo_sent_around"] = {"ok": {"utc_before": before.isoformat()}}
    os.environ["TZ"] = "UTC"
    time.tzset()

    # --- reads
    steps.run("events_all", lambda: client.get_events(limit=100))
    steps.run("events_alice", lambda: client.get_events(user_id="alice"))
    steps.run("events_instant", lambda: client.get_events(event_type="instant_payment"))
    steps.run("stats_30_days", lambda: client.get_meter_stats())
    steps.run("stats_all", lambda: client.get_meter_stats(timeframe="all"))

    # --- user meters
    steps.run("meter_set", lambda: client.set_user_meter(10.5, user_id="bob"))
    steps.run("meter_get_after_set", lambda: client.get_user_meter(user_id="bob"))
    steps.run("meter_increment_1", lambda: client.increment_user_meter(0.1, user_id="bob"))
    steps.run("meter_increment_2", lambda: client.increment_user_meter(0.2, user_id="bob"))
    steps.run("meter_get_after_increment", lambda: client.get_user_meter(user_id="bob"))
    steps.run("meter_reset", lambda: client.reset_user_meter(user_id="bob"))
    steps.run("meter_get_after_reset", lambda: client.get_user_meter(user_id="bob"))
    steps.run("meter_negative_increment", lambda: client.increment_user_meter(-1, user_id="bob"))
    # alice was charged by events but never given a threshold.
    steps.run("meter_get_charged_never_set", lambda: client.get_user_meter(user_id="alice"))
    steps.run("meter_get_unknown_user", lambda: client.get_user_meter(user_id="nobody"))

    # --- billing records
    record = steps.run(
        "billing_create",
        lambda: client.create_billing_record(
            project_id, "2025-01-01T00:00:00", "2025-02-01T00:00:00", 12.34
        ),
    )
    steps.run("billing_list", lambda: client.list_billing_records())
    if record is not None:
        steps.run("billing_update", lambda: client.update_billing_record(record.id, status="paid"))
        steps.run(
            "billing_update_amount", lambda: client.update_billing_record(record.id, amount=0.7)
        )

    # --- the project key on project endpoints
    steps.run("project_get", lambda: client.get_project(project_id))
    steps.run("project_list", lambda: client.list_projects())
    steps.run("project_create_with_project_key", lambda: client.create_project("nope"))
    steps.run("project_other", lambda: client.get_project("someone-elses-project"))

    # --- a wrong key
    bad = AgentMeterClient(api_key="am_wrong_key", project_id=project_id, base_url=config["url"])
    steps.run("wrong_key", lambda: bad.get_meter_stats())

    steps.results["error_classes"] = {
        "ok": {"api_error": AgentMeterAPIError.__module__ + "." + AgentMeterAPIError.__name__}
    }
    print(json.dumps(steps.results))


if __name__ == "__main__":
    main()
