"""Events the real server refuses: final, handed to on_error once, never retried,
and never in the way of the events it accepts."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from decimal import Decimal


def test_an_id_reused_with_other_content_is_rejected_once(
    live_server, admin, project, make_tracker, kit
):
    # Updated for issue 11: ids are scoped per project, so the conflict is now an
    # id of this project sent again with other content (idempotency_conflict).
    taken = f"taken-{uuid.uuid4().hex}"
    event = {**project.direct.build_instant_pay("1", user_id="x").to_dict(), "id": taken}
    assert project.direct.send_batch([event]).accepted == 1
    errors = []
    client = kit.fault_client(project, live_server.url)
    tracker = make_tracker(client, on_error=lambda event, error: errors.append((event, error)))
    good = [tracker.track_instant_pay("0.25", user_id="good") for _ in range(20)]
    bad = tracker.track_instant_pay("0.25", user_id="good", event_id=taken)
    good += [tracker.track_instant_pay("0.25", user_id="good") for _ in range(20)]
    assert tracker.flush(timeout=30)
    assert [event["id"] for event, _ in errors] == [bad]
    assert errors[0][1].code == "idempotency_conflict"
    stats = tracker.stats()
    assert (stats.sent, stats.failed, stats.outbox_pending) == (40, 1, 0)
    assert project.direct.get_user_meter("good").current_usage == Decimal("0.25") * 40
    assert tracker.flush(timeout=30)  # nothing left to send: the rejection was final


def test_an_event_for_a_project_the_key_cannot_write_does_not_stall_the_rest(
    live_server, admin, project, make_tracker, kit
):
    """Regression: the server refuses a whole batch with 403 when one event names a
    project the key may not write. That batch went to the outbox, the tracker took
    the server to be down, and the poisoned row, replayed first, kept it "down":
    nothing more was ever delivered. 403 is final (WIRE.md), so the batch is now
    split like a 422 until the offending events are found and rejected."""
    other = admin.create_project(f"other {uuid.uuid4().hex[:6]}")
    errors = []
    client = kit.fault_client(project, live_server.url)
    tracker = make_tracker(
        client, batch_size=50, on_error=lambda event, error: errors.append((event, error))
    )
    good = [tracker.track_api_request_pay(1, "0.01", "good") for _ in range(60)]
    bad = [tracker.track_api_request_pay(1, "0.01", "good", project_id=other.id) for _ in range(2)]
    good += [tracker.track_api_request_pay(1, "0.01", "good") for _ in range(60)]
    assert tracker.flush(timeout=30), tracker.stats()
    assert sorted(event["id"] for event, _ in errors) == sorted(bad)
    stats = tracker.stats()
    assert (stats.sent, stats.failed, stats.outbox_pending) == (len(good), 2, 0)
    assert project.direct.get_meter_stats(timeframe="all").total_events == len(good)
    later = tracker.track_api_request_pay(1, "0.01", "good")
    assert tracker.flush(timeout=30)
    assert later  # delivery goes on
    assert project.direct.get_meter_stats(timeframe="all").total_events == len(good) + 1


def test_an_event_from_a_fast_clock_is_held_and_sent_once_the_server_catches_up(
    live_server, project, make_tracker, kit
):
    """Regression: a client clock more than the allowed skew (5 min) fast got each
    event refused as invalid, and the tracker dropped it as a final rejection.
    Now it waits in the outbox until the server's clock catches up; a time too
    far ahead to be skew (400 days) is still rejected."""
    errors = []
    client = kit.fault_client(project, live_server.url)
    tracker = make_tracker(client, on_error=lambda event, error: errors.append((event, error)))
    now = datetime.now(timezone.utc)
    skewed = tracker.track_instant_pay(
        "0.25", user_id="fast", timestamp=now + timedelta(minutes=5, seconds=3)
    )
    absurd = tracker.track_instant_pay("0.25", user_id="fast", timestamp=now + timedelta(days=400))

    assert tracker.flush(timeout=1.5) is False  # held: not delivered yet, and not lost
    assert tracker.outbox.pending() == 1
    assert tracker.flush(timeout=30) is True
    assert [event.id for event in project.direct.get_events(limit=10)] == [skewed]
    assert [(event["id"], error.code) for event, error in errors] == [
        (absurd, "timestamp_in_future")
    ]
    stats = tracker.stats()
    assert (stats.sent, stats.replayed, stats.failed, stats.outbox_pending) == (1, 1, 1, 0)
