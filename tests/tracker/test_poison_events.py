"""Events that cannot be encoded never hold up the events queued with them.

Validation at the call site keeps such values out; these tests put them in
*below* it (straight into the tracker's queue, or the outbox), as a value that
slipped past validation would arrive: a non-finite float, a lone surrogate, an
object whose ``str()`` raises, nesting too deep for JSON. Each must be set
aside (quarantined, counted, handed to ``on_error``) while every valid event
is delivered to the real server, ``flush()`` returns True, ``close()`` never
raises, and with ``durable=True`` no other thread's call fails.
"""

from __future__ import annotations

import logging
import threading
from decimal import Decimal

from agentmeter import AgentMeterClient, Outbox
from agentmeter.core.build import finalize, instant_event


class Unprintable:
    """A user object with no text: ``str()`` and ``repr()`` both raise."""

    def __str__(self) -> str:
        raise RuntimeError("no text for you")

    __repr__ = __str__


def deep(levels: int) -> list:
    nested: list = []
    for _ in range(levels):
        nested = [nested]
    return nested


POISONS = {
    "infinity": {"x": float("inf")},
    "nan": {"x": float("nan")},
    "surrogate": {"model": "\ud800"},
    "surrogate-key": {"\udfff": 1},
    "unprintable": {"who": Unprintable()},
    "too-deep": {"deep": deep(100_000)},
}


def poisoned(tracker, name: str) -> dict:
    """A wire event as the tracker queues it, with a bad metadata value (no validation)."""
    event = instant_event(tracker.project_id, tracker.agent_id, "good", "0.25")
    event["metadata"] = POISONS[name]
    return event


def track_mixed(tracker, good_before: int = 20, good_after: int = 20) -> tuple[list, list]:
    good = [tracker.track_instant_pay("0.25", user_id="good") for _ in range(good_before)]
    bad = [tracker._submit(poisoned(tracker, name)) for name in POISONS]
    good += [tracker.track_instant_pay("0.25", user_id="good") for _ in range(good_after)]
    return good, bad


def stored(project) -> tuple[int, Decimal]:
    stats = project.direct.get_meter_stats(timeframe="all")
    return stats.total_events, stats.total_cost


def test_bad_events_are_quarantined_and_the_rest_delivered(
    live_server, project, make_tracker, kit, caplog
):
    errors: list = []
    client = kit.fault_client(project, live_server.url)
    tracker = make_tracker(client, on_error=lambda event, error: errors.append((event, error)))
    with caplog.at_level(logging.ERROR, logger="agentmeter"):
        good, bad = track_mixed(tracker)
        assert tracker.flush(timeout=30), tracker.stats()
    assert stored(project) == (len(good), Decimal("0.25") * len(good))
    assert sorted(event["id"] for event, _ in errors) == sorted(bad)
    assert {error.code for _, error in errors} == {"unencodable"}
    stats = tracker.stats()
    assert (stats.sent, stats.failed, stats.outbox_pending) == (len(good), len(bad), 0)
    assert stats.outbox_quarantined == len(bad)
    assert {row.id for row in tracker.outbox.quarantined()} == set(bad)
    assert not [r for r in caplog.records if "delivery failed" in r.getMessage()]
    later = tracker.track_instant_pay("0.25", user_id="good")  # delivery goes on
    assert tracker.flush(timeout=30)
    assert later
    assert stored(project)[0] == len(good) + 1
    tracker.close(timeout=5)  # raises nothing


def test_without_an_outbox_bad_events_are_dropped_and_counted(
    live_server, project, make_tracker, kit
):
    client = kit.fault_client(project, live_server.url)
    tracker = make_tracker(client, outbox=None)
    good, bad = track_mixed(tracker)
    assert tracker.flush(timeout=30), tracker.stats()
    assert stored(project)[0] == len(good)
    stats = tracker.stats()
    assert (stats.sent, stats.failed) == (len(good), len(bad))
    tracker.close(timeout=5)


def test_close_with_bad_events_queued_keeps_the_good_ones_and_raises_nothing(
    live_server, project, make_tracker, kit, tmp_path
):
    """The server is unreachable: close() puts what is left in the outbox. A bad
    event among them made the outbox raise ValueError out of close()."""
    path = tmp_path / "closing.db"
    unreachable = kit.fault_client(project, "http://127.0.0.1:9", retry_attempts=0)
    first = make_tracker(unreachable, outbox=path, auto_flush=False)
    good, bad = track_mixed(first, 30, 30)
    first.close(timeout=1)  # raises nothing
    assert first.outbox.pending() == len(good)
    assert first.outbox.quarantined_count() == len(bad)
    first.outbox.close()
    second = make_tracker(kit.fault_client(project, live_server.url), outbox=path)
    second.start()
    assert second.flush(timeout=30), second.stats()
    assert stored(project)[0] == len(good)
    assert second.outbox.pending() == 0


def test_a_bad_durable_event_fails_no_other_thread(live_server, project, make_tracker, kit):
    """With durable=True, concurrent writes share one commit: one unencodable event
    made the shared commit raise in every thread that joined it."""
    client = kit.fault_client(project, live_server.url)
    tracker = make_tracker(client, durable=True)
    failures: list[BaseException] = []
    ids: list[str] = []
    lock = threading.Lock()

    def write(worker: int) -> None:
        try:
            for n in range(60):
                if worker == 0 and n % 10 == 0:
                    tracker._submit(poisoned(tracker, list(POISONS)[n // 10 % len(POISONS)]))
                    continue
                event_id = tracker.track_instant_pay("0.25", user_id="good")
                with lock:
                    ids.append(event_id)
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not failures, failures[:3]
    assert tracker.flush(timeout=30), tracker.stats()
    assert stored(project) == (len(ids), Decimal("0.25") * len(ids))
    assert tracker.outbox.pending() == 0
    assert tracker.outbox.quarantined_count() == 6


def test_an_unencodable_row_in_the_outbox_does_not_stop_the_replay(
    live_server, project, make_tracker, kit, tmp_path
):
    """A bad event put straight into the outbox (below every check) with good ones:
    the outbox raised ValueError and stored none of them."""
    path = tmp_path / "spool.db"
    spool = Outbox(path)
    good = [
        finalize({**instant_event(project.id, "a", "good", "0.25"), "id": f"spool-{n}"})
        for n in range(10)
    ]
    bad = {**good[0], "id": "spool-bad", "metadata": POISONS["infinity"]}
    assert spool.put([*good[:5], bad, *good[5:]]) == 10
    assert spool.quarantined_count() == 1
    spool.close()
    tracker = make_tracker(kit.fault_client(project, live_server.url), outbox=path)
    tracker.start()
    assert tracker.flush(timeout=30), tracker.stats()
    assert stored(project)[0] == 10


def test_an_embedded_ledger_gets_every_valid_event(make_tracker, tmp_path):
    """The same through the embedded transport (no server): it encodes the same way."""
    client = AgentMeterClient(base_url=f"sqlite:///{tmp_path / 'ledger.db'}")
    tracker = make_tracker(client)
    good, bad = track_mixed(tracker)
    assert tracker.flush(timeout=30), tracker.stats()
    stats = client.get_meter_stats(timeframe="all")
    assert (stats.total_events, stats.total_cost) == (len(good), Decimal("0.25") * len(good))
    assert tracker.stats().failed == len(bad)
    tracker.close(timeout=5)
