"""Alerts end to end: a real agentmeter serve, its sender, a real HTTP receiver."""

from __future__ import annotations

import time

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from agentmeter.testing import LiveServer

from .conftest import Wire
from .receiver import Receiver


def events_of(receiver: Receiver, kind: str) -> list[dict]:
    return [item.event for item in receiver.received if item.event["type"] == kind]


def test_each_threshold_share_fires_once_at_the_event_that_crosses_it(
    wire: Wire, receiver: Receiver
) -> None:
    endpoint = wire.subscribe(receiver, "meter.threshold_crossed")
    wire.set_threshold("alice", "10")
    for index, amount in enumerate(["3", "1.99", "0.01", "3", "2.5", "0.5", "4"]):
        wire.charge("alice", amount, f"e{index}")  # usage 3, 4.99, 5, 8, 10.5, 11, 15
    receiver.wait_for(lambda got: len(got) >= 3)
    time.sleep(0.5)  # nothing more may come
    crossings = events_of(receiver, "meter.threshold_crossed")  # in any order: sent in parallel
    crossings.sort(key=lambda crossing: float(crossing["data"]["share"]))
    assert [(c["data"]["share"], c["data"]["current_usage"]) for c in crossings] == [
        ("50", "5.00"), ("80", "8.00"), ("100", "10.50"),
    ]  # fmt: skip
    first = receiver.received[0]
    verified = Webhook(endpoint["secret"]).verify(first.body, first.headers)
    assert verified["data"]["user_id"] == "alice"
    assert first.headers["webhook-id"] == verified["id"]
    with pytest.raises(WebhookVerificationError):
        Webhook(endpoint["secret"]).verify(first.body.replace(b"alice", b"mallory"), first.headers)


def test_a_reset_rearms_every_share_and_a_raised_threshold_those_no_longer_reached(
    wire: Wire, receiver: Receiver
) -> None:
    wire.subscribe(receiver, "meter.threshold_crossed")
    wire.set_threshold("bob", "10")
    wire.charge("bob", "6", "b1")  # 50 %
    receiver.wait_for(lambda got: len(got) == 1)
    wire.set_threshold("bob", "20")  # 6 of 20: 50 % is no longer reached
    wire.charge("bob", "5", "b2")  # 11 of 20: 50 % again
    receiver.wait_for(lambda got: len(got) == 2)
    wire.call("POST", "/api/meter/reset", json={"project_id": "p", "user_id": "bob"})
    wire.charge("bob", "10", "b3")  # 10 of 20 after the reset: 50 % again
    receiver.wait_for(lambda got: len(got) == 3)
    shares = [c["data"]["share"] for c in events_of(receiver, "meter.threshold_crossed")]
    assert shares == ["50", "50", "50"]


def test_spend_limits_and_billing_records_fire(wire: Wire, receiver: Receiver) -> None:
    wire.subscribe(
        receiver, "project.spend_exceeded", "billing_record.created", "billing_record.updated"
    )
    settings = wire.call("PUT", "/api/alerts", json={"project_id": "p", "daily_limit": "5"})
    assert settings["daily_limit"] == "5"
    for index in range(4):
        wire.charge(f"u{index}", "2", f"s{index}")  # 2, 4, 6 (crossed), 8
    period = {"period_start": "2026-01-01T00:00:00Z", "period_end": "2026-02-01T00:00:00Z"}
    record = wire.call("POST", "/billing-records", json={"project_id": "p", **period})
    wire.call("PATCH", f"/billing-records/{record['id']}", json={"status": "paid"})
    receiver.wait_for(lambda got: len(got) >= 3)
    time.sleep(0.3)
    spend = events_of(receiver, "project.spend_exceeded")
    assert [(e["data"]["period"], e["data"]["spend"], e["data"]["limit"]) for e in spend] == [
        ("day", "6", "5")
    ]
    created = events_of(receiver, "billing_record.created")
    updated = events_of(receiver, "billing_record.updated")
    assert created[0]["data"]["billing_record"]["id"] == record["id"]
    assert updated[0]["data"]["previous_status"] == "pending"
    assert updated[0]["data"]["billing_record"]["status"] == "paid"


def test_a_receiver_failing_three_times_gets_it_on_the_fourth_attempt(
    wire: Wire, receiver: Receiver
) -> None:
    receiver.answers = [500, 503, 500]
    endpoint = wire.subscribe(receiver, "billing_record.created")
    delivery = wire.call("POST", f"/api/webhooks/{endpoint['id']}/test", json={"project_id": "p"})
    receiver.wait_for(lambda got: len(got) == 4)
    ids = {item.headers["webhook-id"] for item in receiver.received}
    assert len(ids) == 1  # the same event each time
    deliveries = wire.call("GET", "/api/webhooks/deliveries", params={"project_id": "p"})
    (done,) = [d for d in deliveries if d["id"] == delivery["id"]]
    _wait(lambda: _status(wire, delivery["id"]) == "delivered")
    done = _delivery(wire, delivery["id"])
    assert (done["attempts"], done["last_status_code"]) == (4, 200)


def test_a_receiver_down_for_5_seconds_then_up_gets_every_event_once(wire: Wire) -> None:
    receiver = Receiver()  # its port is known, nothing listens yet
    wire.subscribe(receiver, "meter.threshold_crossed")
    wire.call("PUT", "/api/alerts", json={"project_id": "p", "threshold_shares": ["100"]})
    for user in ("a", "b", "c"):
        wire.set_threshold(user, "1")
        wire.charge(user, "1", f"down-{user}")
    time.sleep(5)
    receiver.start()
    try:
        receiver.wait_for(lambda got: len(got) == 3, timeout=30)
        time.sleep(1)
        users = sorted(item.event["data"]["user_id"] for item in receiver.received)
        assert users == ["a", "b", "c"]
        assert len({item.headers["webhook-id"] for item in receiver.received}) == 3
    finally:
        receiver.stop()


def test_deliveries_pending_when_the_server_is_killed_go_out_after_a_restart(
    fast_retries: None, db_url: str
) -> None:
    receiver = Receiver()
    first = LiveServer(db_url).start()
    try:
        admin = Wire(first.url, first.admin_key)
        key = admin.call("POST", "/projects", json={"name": "P", "id": "p"})["api_key"]
        wire = Wire(first.url, key)
        wire.subscribe(receiver, "meter.threshold_crossed")
        wire.call("PUT", "/api/alerts", json={"project_id": "p", "threshold_shares": ["100"]})
        for user in ("x", "y"):
            wire.set_threshold(user, "1")
            wire.charge(user, "2", f"kill-{user}")
    finally:
        first.kill()  # SIGKILL: no shutdown of any kind
    receiver.start()
    second = LiveServer(db_url, admin_key=first.admin_key).start()
    try:
        receiver.wait_for(lambda got: len(got) == 2, timeout=30)
        time.sleep(1)
        assert sorted(item.event["data"]["user_id"] for item in receiver.received) == ["x", "y"]
    finally:
        second.stop()
        receiver.stop()


def _delivery(wire: Wire, delivery_id: str) -> dict:
    deliveries = wire.call("GET", "/api/webhooks/deliveries", params={"project_id": "p"})
    return next(d for d in deliveries if d["id"] == delivery_id)


def _status(wire: Wire, delivery_id: str) -> str:
    return str(_delivery(wire, delivery_id)["status"])


def _wait(check, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_receiver_refusing_with_a_4xx_fails_the_delivery_at_once(
    wire: Wire, receiver: Receiver
) -> None:
    receiver.answers = [410]
    endpoint = wire.subscribe(receiver, "billing_record.created")
    delivery = wire.call("POST", f"/api/webhooks/{endpoint['id']}/test", json={"project_id": "p"})
    _wait(lambda: _status(wire, delivery["id"]) == "failed")
    time.sleep(0.5)
    failed = _delivery(wire, delivery["id"])
    assert (failed["attempts"], failed["last_status_code"], len(receiver.received)) == (1, 410, 1)
