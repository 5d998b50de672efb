"""AgentMeterTracker with a fake client (no server, no HTTP).

The fake stores events by id like the real server and can be told to hang,
fail or reject. Every wait below is bounded; no test asserts how long
something took, only that a bounded call returned within a generous bound.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import math
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

import agentmeter.delivery.outbox as outbox_module
from agentmeter import (
    AgentMeterClient,
    AgentMeterTracker,
    Outbox,
    QueueFullError,
    TrackerStats,
)
from agentmeter.config import AgentMeterConfig
from agentmeter.errors import (
    AgentMeterConfigurationError,
    AgentMeterConnectionError,
    AgentMeterValidationError,
    UnprocessableEntityError,
)
from agentmeter.models import BatchResult, ErrorInfo, RejectedEvent

BOUND = 10.0  # a generous upper bound for calls whose requirement is "bounded"


class FakeClient:
    """Just what the tracker uses of a client (``TrackerClient``): config, transport, send_batch."""

    def __init__(self) -> None:
        self.config = AgentMeterConfig(project_id="proj_1", agent_id="agent_1", user_id="user_1")
        self.transport = SimpleNamespace(describe="fake://server", default_project_id=None)
        self.stored: dict[str, dict[str, Any]] = {}
        self.batches: list[list[str]] = []
        self.calls = 0
        self.lock = threading.Lock()
        self.gate = threading.Event()  # hang() makes send_batch wait for it
        self.gate.set()
        self.entered = threading.Event()  # set when send_batch is entered
        self.fail_next = 0  # how many calls raise a connection error
        self.sleeps_per_failure = 0  # retry-policy sleeps a failing call takes
        self.reject: Callable[[dict[str, Any]], bool] = lambda event: False
        self.reject_whole_batch = False  # 422 for the batch instead of per-event rejections
        self.raise_next: BaseException | None = None  # raised once, as a bug would be

    def hang(self) -> None:
        self.entered.clear()
        self.gate.clear()

    def release(self) -> None:
        self.gate.set()

    def send_batch(self, events, *, sleep=None) -> BatchResult:
        with self.lock:
            self.calls += 1
            self.batches.append([event["id"] for event in events])
            failing = self.fail_next > 0
            if failing:
                self.fail_next -= 1
        self.entered.set()
        self.gate.wait(30)
        unexpected, self.raise_next = self.raise_next, None
        if unexpected is not None:
            raise unexpected
        if failing:
            for _ in range(self.sleeps_per_failure):
                if sleep is not None:
                    sleep(0.001)
            raise AgentMeterConnectionError("fake: connection refused", sent=False)
        bad = [index for index, event in enumerate(events) if self.reject(event)]
        if bad and self.reject_whole_batch:
            raise UnprocessableEntityError("HTTP 422: invalid event", 422, code="invalid")
        result = BatchResult()
        with self.lock:
            for index, event in enumerate(events):
                if index in bad:
                    error = ErrorInfo(code="invalid", message=f"event {index} is invalid")
                    result.rejected.append(RejectedEvent(index=index, id=event["id"], error=error))
                elif event["id"] in self.stored:
                    result.duplicates += 1
                else:
                    self.stored[event["id"]] = dict(event)
                    result.accepted += 1
        return result


@pytest.fixture
def fake() -> Iterator[FakeClient]:
    client = FakeClient()
    yield client
    client.release()


@pytest.fixture
def make_tracker(fake: FakeClient, tmp_path: Path) -> Iterator[Callable[..., AgentMeterTracker]]:
    made: list[AgentMeterTracker] = []

    def make(**options: Any) -> AgentMeterTracker:
        options.setdefault("outbox", tmp_path / "outbox.db")
        options.setdefault("flush_interval", 0.05)
        options.setdefault("replay_interval", 0.05)
        tracker = AgentMeterTracker(options.pop("client", fake), **options)
        made.append(tracker)
        return tracker

    yield make
    fake.release()
    for tracker in made:
        tracker.close(timeout=1)
        if tracker.outbox is not None:
            tracker.outbox.close()


def wait_for(condition: Callable[[], bool], timeout: float = BOUND) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.005)
    return condition()


# ------------------------------------------------------------------ validation

NAN = float("nan")


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda t: t.track_api_request_pay(api_calls=-1), "api_calls"),
        (lambda t: t.track_api_request_pay(api_calls=True), "api_calls"),
        (lambda t: t.track_api_request_pay(api_calls=1.5), "api_calls"),
        (lambda t: t.track_api_request_pay(api_calls="3"), "api_calls"),
        (lambda t: t.track_api_request_pay(unit_price=-0.01), "unit_price"),
        (lambda t: t.track_api_request_pay(unit_price=NAN), "unit_price"),
        (lambda t: t.track_api_request_pay(unit_price=Decimal("NaN")), "unit_price"),
        (lambda t: t.track_api_request_pay(unit_price=math.inf), "unit_price"),
        (lambda t: t.track_api_request_pay(unit_price=True), "unit_price"),
        (lambda t: t.track_api_request_pay(unit_price=[1]), "unit_price"),
        (lambda t: t.track_api_request_pay(unit_price="abc"), "unit_price"),
        (lambda t: t.track_token_based_pay(tokens_in=-5), "tokens_in"),
        (lambda t: t.track_token_based_pay(tokens_out=False), "tokens_out"),
        (lambda t: t.track_token_based_pay(tokens_out=NAN), "tokens_out"),
        (lambda t: t.track_token_based_pay(tokens_in="10"), "tokens_in"),
        (lambda t: t.track_token_based_pay(input_token_price=-1), "input_token_price"),
        (lambda t: t.track_token_based_pay(output_token_price=NAN), "output_token_price"),
        (lambda t: t.track_token_based_pay(output_token_price=object()), "output_token_price"),
        (lambda t: t.track_instant_pay(amount=-3), "amount"),
        (lambda t: t.track_instant_pay(amount=NAN), "amount"),
        (lambda t: t.track_instant_pay(amount=False), "amount"),
        (lambda t: t.track_instant_pay(amount=None), "amount"),
        (lambda t: t.track_instant_pay(amount="1", description=5), "description"),
        (lambda t: t.track_instant_pay(amount="1", description="x" * 1001), "description"),
        (lambda t: t.track_api_request_pay(metadata=["a"]), "metadata"),
        (lambda t: t.track_token_based_pay(metadata={1: "a"}), "metadata"),
        (lambda t: t.track_instant_pay(1, metadata="text"), "metadata"),
        (lambda t: t.track_api_request_pay(event_id=""), "id"),
        (lambda t: t.track_api_request_pay(event_id="has space"), "id"),
        (lambda t: t.track_api_request_pay(event_id="x" * 129), "id"),
        (lambda t: t.track_token_based_pay(event_id=12345), "id"),
        (lambda t: t.track_instant_pay(1, event_id="-starts-with-dash"), "id"),
        (lambda t: t.track_api_request_pay(user_id=7), "user_id"),
        (lambda t: t.track_api_request_pay(user_id="u" * 257), "user_id"),
        (lambda t: t.track_api_request_pay(agent_id=["a"]), "agent_id"),
        (lambda t: t.track_api_request_pay(project_id=3), "project_id"),
        (lambda t: t.track_api_request_pay(timestamp="2025-01-01"), "timestamp"),
    ],
)
def test_invalid_input_raises_at_the_call_site_and_queues_nothing(make_tracker, fake, call, field):
    tracker = make_tracker()
    with pytest.raises(AgentMeterValidationError) as raised:
        call(tracker)
    assert raised.value.field == field
    assert field in str(raised.value)
    assert tracker.stats().queued == 0
    assert tracker.flush(timeout=BOUND)
    assert fake.stored == {}


def test_async_methods_validate_at_the_call_site_too(make_tracker):
    async def main() -> None:
        tracker = make_tracker()
        with pytest.raises(AgentMeterValidationError, match="tokens_in"):
            await tracker.track_token_usage("u", tokens_in=-1)
        with pytest.raises(AgentMeterValidationError, match="amount"):
            await tracker.track_instant_payment("u", amount=NAN)
        with pytest.raises(AgentMeterValidationError, match="api_calls"):
            await tracker.track_api_request("u", api_calls=True)

    asyncio.run(main())


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"flush_interval": 0}, "flush_interval"),
        ({"batch_size": 0}, "batch_size"),
        ({"batch_size": 1001}, "batch_size"),
        ({"batch_size": 100, "max_queue_size": 50}, "max_queue_size"),
        ({"on_full": "ignore"}, "on_full"),
        ({"durable": True, "outbox": None}, "durable"),
        ({"default_api_price": -1}, "default_api_price"),
    ],
)
def test_settings_that_cannot_work_are_refused(make_tracker, options, match):
    with pytest.raises((AgentMeterConfigurationError, AgentMeterValidationError), match=match):
        make_tracker(**options)


def test_no_worker_until_first_use(make_tracker):
    tracker = make_tracker()
    assert tracker._thread is None
    tracker.track_api_request_pay()
    assert tracker._thread is not None
    assert tracker._thread.daemon


# ------------------------------------------------------------- the happy path


def test_events_arrive_in_wire_form_with_the_returned_ids(make_tracker, fake):
    tracker = make_tracker(default_api_price="0.002")
    moment = datetime(2025, 1, 31, 23, 59, 59, 123456, tzinfo=timezone.utc)
    a = tracker.track_api_request_pay(3, user_id="u1", metadata={"k": "v"}, timestamp=moment)
    b = tracker.track_token_based_pay(1000, 500, "0.000003", 0.000015, user_id="u2")
    c = tracker.track_instant_pay("1.50", "refill", user_id="u3", event_id="my-id-1")
    assert c == "my-id-1"
    assert tracker.flush(timeout=BOUND)
    assert set(fake.stored) == {a, b, c}
    api, tokens, instant = fake.stored[a], fake.stored[b], fake.stored[c]
    assert api["timestamp"] == "2025-01-31T23:59:59.123456Z"
    assert api["total_cost"] == "0.006"
    assert (api["project_id"], api["agent_id"], api["user_id"]) == ("proj_1", "agent_1", "u1")
    assert api["metadata"] == {"k": "v"}
    assert tokens["total_cost"] == "0.010500"
    assert instant["total_cost"] == "1.50"
    assert instant["description"] == "refill"
    stats = tracker.stats()
    assert (stats.sent, stats.failed, stats.dropped, stats.queued) == (3, 0, 0, 0)


def test_metadata_is_copied_at_the_call(make_tracker, fake):
    tracker = make_tracker()
    metadata = {"step": 1}
    event_id = tracker.track_api_request_pay(metadata=metadata)
    metadata["step"] = 2
    assert tracker.flush(timeout=BOUND)
    assert fake.stored[event_id]["metadata"] == {"step": 1}


def test_batches_are_sent_by_size(make_tracker, fake):
    tracker = started(make_tracker(batch_size=10, auto_flush=False))
    for _ in range(25):
        tracker.track_api_request_pay()
    assert wait_for(lambda: len(fake.stored) == 20)
    assert all(len(batch) == 10 for batch in fake.batches)
    assert tracker.stats().queued == 5
    assert tracker.flush(timeout=BOUND)
    assert len(fake.stored) == 25


def test_batches_are_sent_by_interval(make_tracker, fake):
    tracker = make_tracker(batch_size=1000, flush_interval=0.05)
    event_id = tracker.track_api_request_pay()
    assert wait_for(lambda: event_id in fake.stored)  # no flush() asked for


# -------------------------------------------------------- rejections, on_error


@pytest.mark.parametrize("whole_batch", [False, True], ids=["per-event", "batch-422"])
def test_rejected_events_go_to_on_error_once_and_are_never_retried(
    make_tracker, fake, caplog, whole_batch
):
    calls: list[tuple[dict[str, Any], ErrorInfo]] = []
    fake.reject = lambda event: event["metadata"].get("bad", False)
    fake.reject_whole_batch = whole_batch
    tracker = make_tracker(on_error=lambda event, error: calls.append((event, error)))
    bad_ids = set()
    good_ids = set()
    for n in range(20):
        if n % 7 == 3:
            bad_ids.add(tracker.track_api_request_pay(metadata={"bad": True}))
        else:
            good_ids.add(tracker.track_api_request_pay(metadata={"n": n}))
    with caplog.at_level(logging.ERROR, logger="agentmeter"):
        assert tracker.flush(timeout=BOUND)
        # More traffic and another flush: the rejected ones are not sent again.
        good_ids.add(tracker.track_api_request_pay())
        assert tracker.flush(timeout=BOUND)
    assert sorted(event["id"] for event, _ in calls) == sorted(bad_ids)
    assert all(isinstance(error, ErrorInfo) and error.message for _, error in calls)
    assert set(fake.stored) == good_ids
    stats = tracker.stats()
    assert stats.failed == len(bad_ids)
    assert stats.sent == len(good_ids)
    assert stats.outbox_pending == 0
    assert stats.last_error is not None
    assert sum("rejected" in record.getMessage() for record in caplog.records) == len(bad_ids)
    last_batch = fake.batches[-1]
    assert not bad_ids & set(last_batch)


def test_an_on_error_callback_that_raises_does_not_stop_delivery(make_tracker, fake, caplog):
    fake.reject = lambda event: event["metadata"].get("bad", False)

    def explode(event, error):
        raise RuntimeError("user bug")

    tracker = make_tracker(on_error=explode)
    tracker.track_api_request_pay(metadata={"bad": True})
    good = tracker.track_api_request_pay()
    with caplog.at_level(logging.ERROR, logger="agentmeter"):
        assert tracker.flush(timeout=BOUND)
    assert good in fake.stored
    assert "on_error callback failed" in caplog.text
    later = tracker.track_api_request_pay()
    assert tracker.flush(timeout=BOUND)
    assert later in fake.stored


# ------------------------------------------------ failures, outbox, no outbox


def test_undeliverable_batches_go_to_the_outbox_and_are_replayed_with_the_same_ids(
    make_tracker, fake
):
    fake.fail_next = 3
    fake.sleeps_per_failure = 2
    tracker = make_tracker(batch_size=10)
    ids = [tracker.track_api_request_pay() for _ in range(30)]
    assert tracker.flush(timeout=BOUND)
    assert set(fake.stored) == set(ids)
    sent_ids = {event_id for batch in fake.batches for event_id in batch}
    assert sent_ids == set(ids)  # every attempt carried ids the track calls returned
    stats = tracker.stats()
    assert stats.spilled > 0
    assert stats.replayed > 0
    assert stats.retried == 3 * 2
    assert stats.outbox_pending == 0
    assert "connection refused" in (stats.last_error or "")


def test_without_an_outbox_undelivered_events_stay_queued_until_the_server_answers(
    make_tracker, fake
):
    """Regression: with outbox=None a failed batch used to vanish (not even counted),
    and every later batch with it, because nothing cleared "server down"."""
    fake.fail_next = 3
    tracker = make_tracker(outbox=None, batch_size=10)
    ids = [tracker.track_api_request_pay() for _ in range(30)]
    assert tracker.flush(timeout=BOUND)
    assert set(fake.stored) == set(ids)
    stats = tracker.stats()
    assert (stats.dropped, stats.spilled, stats.queued) == (0, 0, 0)


def test_a_spill_racing_the_last_empty_replay_is_not_forgotten(make_tracker, fake, tmp_path):
    """Regression: the worker found the outbox empty, a caller spilled an event
    into it at that very moment and marked it dirty, then the worker marked it
    clean; flush() then returned True with the event still in the outbox."""
    outbox = Outbox(tmp_path / "race.db")
    tracker = make_tracker(outbox=outbox)
    tracker.start()
    assert wait_for(lambda: not tracker._deliverer.outbox_dirty)  # the start-up replay ran
    real_claim = outbox.claim
    armed = threading.Event()
    armed.set()
    spilled: list[str] = []

    def claim(limit: int) -> list[dict[str, Any]]:
        rows = real_claim(limit)
        if not rows and armed.is_set():
            armed.clear()
            # What a caller's spill does, between the worker's claim and its verdict.
            event = {"id": "raced-1", "payload": "x"}
            outbox.put([event])
            tracker._deliverer.mark_dirty()
            spilled.append(event["id"])
        return rows

    outbox.claim = claim  # type: ignore[method-assign]
    tracker._deliverer.outbox_dirty = True
    tracker.flush(timeout=BOUND)
    assert spilled == ["raced-1"]
    assert tracker.flush(timeout=BOUND)
    assert "raced-1" in fake.stored
    assert outbox.pending() == 0


def test_rows_claimed_by_a_replay_that_blew_up_are_released(make_tracker, fake, tmp_path, caplog):
    """Regression: an unexpected error while replaying left the rows claimed by this
    very tracker for the whole lease (120 s); the next replay found nothing to
    claim, called the outbox clean, and flush() returned True with them still there."""
    left_over = Outbox(tmp_path / "outbox.db")
    left_over.put([{"id": f"old-{n}", "payment_type": "instant_pay"} for n in range(3)])
    left_over.close()
    fake.raise_next = ValueError("a malformed answer")
    tracker = make_tracker()
    with caplog.at_level(logging.ERROR, logger="agentmeter"):
        tracker.start()
        assert wait_for(lambda: fake.calls >= 1)
        assert tracker.flush(timeout=BOUND)
    assert "delivery failed" in caplog.text
    assert set(fake.stored) == {"old-0", "old-1", "old-2"}
    assert tracker.stats().outbox_pending == 0


def test_an_unusable_outbox_never_raises_into_track_calls(make_tracker, fake, tmp_path, caplog):
    """Regression: an outbox that cannot be opened (here its folder is a file; in
    production a read-only home) made track_* raise once the queue was full,
    cut delivery to one batch a second, and made stats() raise."""
    (tmp_path / "not-a-folder").write_text("x")
    with caplog.at_level(logging.WARNING, logger="agentmeter"):
        tracker = make_tracker(outbox=tmp_path / "not-a-folder" / "outbox.db", batch_size=10)
    assert "going on without an outbox" in caplog.text
    assert tracker.outbox is None
    ids = [tracker.track_api_request_pay() for _ in range(500)]
    assert tracker.flush(timeout=BOUND)
    assert set(fake.stored) == set(ids)
    assert tracker.stats().outbox_pending == 0
    with pytest.raises(AgentMeterConfigurationError, match="writable outbox"):
        make_tracker(outbox=tmp_path / "not-a-folder" / "outbox.db", durable=True)


# ----------------------------------------------------------- bounded waits


def test_flush_does_not_wait_out_flush_interval_for_the_last_partial_batch(make_tracker, fake):
    """Regression: flush() woke the worker once; when the worker was busy then, that
    one wake was spent on the first of several batches, and the last, partial batch
    waited for the next flush_interval (here far longer than the flush timeout)."""
    fake.hang()
    tracker = make_tracker(batch_size=10, flush_interval=3600)
    ids = [tracker.track_api_request_pay() for _ in range(10)]
    assert fake.entered.wait(BOUND)  # the worker is busy with the first batch
    ids += [tracker.track_api_request_pay() for _ in range(25)]  # 2 full batches + 5
    threading.Timer(0.1, fake.release).start()
    assert tracker.flush(timeout=BOUND)
    assert set(fake.stored) == set(ids)


def test_flush_returns_within_its_timeout_when_the_server_hangs(make_tracker, fake):
    fake.hang()
    tracker = make_tracker()
    tracker.track_api_request_pay()
    assert fake.entered.wait(BOUND)
    started = time.monotonic()
    assert tracker.flush(timeout=0.2) is False
    assert time.monotonic() - started < BOUND


def test_flush_returns_within_its_timeout_when_the_server_keeps_failing(make_tracker, fake):
    fake.fail_next = 10**9
    fake.sleeps_per_failure = 1
    tracker = make_tracker()
    ids = [tracker.track_api_request_pay() for _ in range(5)]
    started = time.monotonic()
    assert tracker.flush(timeout=0.5) is False
    assert time.monotonic() - started < BOUND
    assert wait_for(lambda: tracker.stats().outbox_pending == len(ids))
    assert fake.stored == {}


def test_close_is_bounded_while_the_server_hangs_and_keeps_the_batch(make_tracker, fake, tmp_path):
    fake.hang()
    tracker = make_tracker()
    ids = [tracker.track_api_request_pay() for _ in range(3)]
    assert fake.entered.wait(BOUND)
    more = [tracker.track_api_request_pay() for _ in range(2)]
    started = time.monotonic()
    tracker.close(timeout=0.3)
    assert time.monotonic() - started < BOUND
    # The batch stuck in flight and the queued events are in the outbox.
    assert Outbox(tmp_path / "outbox.db").pending() == len(ids + more)


def test_close_twice_is_harmless_and_track_after_close_warns(make_tracker, fake, caplog):
    tracker = make_tracker()
    first = tracker.track_api_request_pay()
    tracker.close(timeout=BOUND)
    tracker.close(timeout=BOUND)
    tracker.stop()  # the 0.2 name
    assert first in fake.stored
    with caplog.at_level(logging.WARNING, logger="agentmeter"):
        late = tracker.track_token_based_pay(10, 20)
    assert isinstance(late, str)
    assert "closed" in caplog.text
    assert tracker.stats().outbox_pending == 1  # kept for the next start
    assert late not in fake.stored


def test_track_after_close_without_an_outbox_warns_and_counts_the_drop(make_tracker, caplog):
    tracker = make_tracker(outbox=None)
    tracker.close(timeout=BOUND)
    with caplog.at_level(logging.WARNING, logger="agentmeter"):
        tracker.track_instant_pay(1)
    assert "closed" in caplog.text
    assert tracker.stats().dropped == 1


def test_context_manager_closes(make_tracker, fake):
    with make_tracker() as tracker:
        event_id = tracker.track_api_request_pay()
    assert event_id in fake.stored
    assert tracker._closed


def test_a_tracker_the_app_no_longer_references_is_still_closed_at_exit(fake, tmp_path):
    """Regression: trackers were held weakly only, so one made inside a function
    (a task, a handler) was collected with events queued, and atexit never saw it."""
    from agentmeter.core import lifecycle as _lifecycle

    fake.hang()

    def handler() -> list[str]:
        tracker = AgentMeterTracker(fake, outbox=tmp_path / "outbox.db", flush_interval=0.05)
        ids = [tracker.track_api_request_pay()]
        assert fake.entered.wait(BOUND)
        return ids + [tracker.track_api_request_pay() for _ in range(3)]

    ids = handler()
    gc.collect()
    left = [tracker for tracker in _lifecycle._trackers if tracker.client is fake]
    assert len(left) == 1  # what atexit will close
    fake.release()
    left[0].close(timeout=BOUND)  # what _close_all_at_exit does with it
    assert set(fake.stored) == set(ids)
    assert left[0] not in _lifecycle._running
    left[0].outbox.close()


# ---------------------------------------------------------------- on_full


def started(tracker: AgentMeterTracker) -> AgentMeterTracker:
    """Start the worker and let its start-up replay (which sends whatever is
    queued at once) finish, so that batches then go by size."""
    tracker.start()
    assert wait_for(lambda: not tracker._deliverer.outbox_dirty)
    return tracker


def fill(tracker: AgentMeterTracker, fake: FakeClient, batch_size: int) -> list[str]:
    """Exactly one batch in flight (the worker stuck in send_batch), then a full queue.

    The tracker must have a long flush_interval, so the worker takes a batch
    only when it is full.
    """
    assert tracker.flush_interval >= 60
    started(tracker)
    fake.hang()
    ids = [tracker.track_api_request_pay() for _ in range(batch_size)]
    assert fake.entered.wait(BOUND)
    ids += [tracker.track_api_request_pay() for _ in range(tracker.max_queue_size)]
    assert tracker.stats().queued == tracker.max_queue_size
    return ids


def test_spill_moves_the_overflow_to_the_outbox_without_blocking(make_tracker, fake):
    tracker = make_tracker(flush_interval=3600, max_queue_size=10, batch_size=5)
    ids = fill(tracker, fake, 5)
    ids += [tracker.track_api_request_pay() for _ in range(30)]
    stats = tracker.stats()
    assert stats.queued <= 10
    assert stats.spilled > 0
    assert stats.outbox_pending == stats.spilled
    assert stats.dropped == 0
    fake.release()
    assert tracker.flush(timeout=BOUND)
    assert set(fake.stored) == set(ids)


def test_block_without_an_outbox_waits_for_room(make_tracker, fake):
    tracker = make_tracker(
        flush_interval=3600, outbox=None, max_queue_size=10, batch_size=5, block_timeout=BOUND
    )
    ids = fill(tracker, fake, 5)
    threading.Timer(0.2, fake.release).start()
    ids.append(tracker.track_api_request_pay())  # waits until the worker makes room
    assert tracker.flush(timeout=BOUND)
    assert set(fake.stored) == set(ids)
    assert tracker.stats().dropped == 0


def test_block_gives_up_after_block_timeout_and_counts_the_drop(make_tracker, fake, caplog):
    tracker = make_tracker(
        flush_interval=3600, outbox=None, max_queue_size=10, batch_size=5, block_timeout=0.1
    )
    fill(tracker, fake, 5)
    started = time.monotonic()
    with caplog.at_level(logging.ERROR, logger="agentmeter"):
        tracker.track_api_request_pay()
    assert time.monotonic() - started < BOUND
    assert tracker.stats().dropped == 1
    assert "lost" in caplog.text


def test_explicit_block_with_an_outbox_spills_after_block_timeout(make_tracker, fake):
    tracker = make_tracker(
        flush_interval=3600, on_full="block", max_queue_size=10, batch_size=5, block_timeout=0.05
    )
    ids = fill(tracker, fake, 5)
    ids.append(tracker.track_api_request_pay())
    stats = tracker.stats()
    assert (stats.dropped, stats.spilled, stats.outbox_pending) == (0, 1, 1)
    fake.release()
    assert tracker.flush(timeout=BOUND)
    assert set(fake.stored) == set(ids)


def test_drop_oldest_counts_every_drop(make_tracker, fake, caplog):
    tracker = make_tracker(
        flush_interval=3600, on_full="drop_oldest", max_queue_size=10, batch_size=5
    )
    ids = fill(tracker, fake, 5)
    with caplog.at_level(logging.WARNING, logger="agentmeter"):
        newest = [tracker.track_api_request_pay() for _ in range(4)]
    assert tracker.stats().dropped == 4
    assert caplog.text.count("dropped the oldest") == 4
    fake.release()
    assert tracker.flush(timeout=BOUND)
    in_flight, queued = ids[:5], ids[5:]
    assert set(fake.stored) == set(in_flight + queued[4:] + newest)  # the 4 oldest queued went
    assert tracker.stats().outbox_pending == 0


def test_raise_raises_queue_full_and_counts_it(make_tracker, fake):
    tracker = make_tracker(flush_interval=3600, on_full="raise", max_queue_size=10, batch_size=5)
    ids = fill(tracker, fake, 5)
    with pytest.raises(QueueFullError):
        tracker.track_api_request_pay()
    with pytest.raises(QueueFullError):
        tracker.track_instant_pay(1)
    assert tracker.stats().dropped == 2
    fake.release()
    assert tracker.flush(timeout=BOUND)
    assert set(fake.stored) == set(ids)


# ------------------------------------------------------------------ durable


def test_durable_events_are_on_disk_before_the_call_returns(make_tracker, fake, tmp_path):
    fake.hang()  # nothing is delivered (or acknowledged) meanwhile
    tracker = make_tracker(durable=True)
    other_reader = Outbox(tmp_path / "outbox.db")  # its own connection: what is on disk
    for n in range(1, 6):
        tracker.track_api_request_pay()
        assert other_reader.pending() == n
    fake.release()
    assert tracker.flush(timeout=BOUND)
    assert len(fake.stored) == 5
    assert other_reader.pending() == 0  # acknowledged once delivered
    other_reader.close()


# ------------------------------------------------------------------- stats


def test_stats_fields(make_tracker, fake):
    fake.reject = lambda event: event["metadata"].get("bad", False)
    tracker = make_tracker(batch_size=10)
    assert tracker.stats() == TrackerStats(0, 0, 0, 0, 0, 0, 0, 0, 0, None)
    tracker.track_api_request_pay(event_id="same-id")
    tracker.track_api_request_pay(event_id="same-id")  # a resend: a duplicate
    tracker.track_api_request_pay(metadata={"bad": True})
    assert tracker.flush(timeout=BOUND)
    stats = tracker.stats()
    assert (stats.sent, stats.duplicates, stats.failed) == (1, 1, 1)
    assert stats.last_error == "event 2 is invalid"
    fake.hang()
    tracker.track_api_request_pay()
    assert fake.entered.wait(BOUND)
    queued = [tracker.track_api_request_pay() for _ in range(3)]
    assert tracker.stats().queued == len(queued)
    fake.fail_next = 1  # the batch now in flight fails after two retry sleeps
    fake.sleeps_per_failure = 2
    fake.release()
    assert tracker.flush(timeout=BOUND)
    stats = tracker.stats()
    assert stats.queued == 0
    assert stats.sent == 5
    assert stats.duplicates == 1
    assert stats.failed == 1
    assert stats.retried == 2
    assert stats.spilled >= 1  # the failed batch went to the outbox...
    assert stats.replayed == stats.spilled  # ...and came back out of it
    assert stats.dropped == 0
    assert stats.outbox_pending == 0
    assert "connection refused" in (stats.last_error or "")


# ------------------------------------------------------------------- asyncio


def test_async_methods_queue_events(make_tracker, fake):
    async def main() -> None:
        tracker = make_tracker()
        a = await tracker.track_api_request("u1", api_calls=2, unit_price="0.5")
        b = await tracker.track_token_usage("u2", tokens_in=10, tokens_out=5)
        c = await tracker.track_instant_payment("u3", amount="2.25", description="d")
        assert await asyncio.to_thread(tracker.flush, BOUND)
        assert fake.stored[a]["total_cost"] == "1.0"
        assert fake.stored[a]["user_id"] == "u1"
        assert fake.stored[b]["tokens_in"] == 10
        assert fake.stored[c]["amount"] == Decimal("2.25")

    asyncio.run(main())


def test_a_blocked_async_track_does_not_block_the_event_loop(make_tracker, fake):
    async def main() -> None:
        tracker = make_tracker(
            flush_interval=3600, outbox=None, max_queue_size=10, batch_size=5, block_timeout=BOUND
        )
        await asyncio.to_thread(fill, tracker, fake, 5)
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.005)

        ticking = asyncio.create_task(ticker())
        blocked = asyncio.create_task(tracker.track_api_request("u", api_calls=1))
        await asyncio.sleep(0.2)
        assert not blocked.done()  # the caller waits for room...
        before = ticks
        await asyncio.sleep(0.1)
        assert ticks > before  # ...while the loop keeps running
        fake.release()
        event_id = await asyncio.wait_for(blocked, BOUND)
        ticking.cancel()
        assert await asyncio.to_thread(tracker.flush, BOUND)
        assert event_id in fake.stored

    asyncio.run(main())


def test_async_durable_writes_run_off_the_loop(make_tracker, fake):
    async def main() -> None:
        tracker = make_tracker(durable=True)
        ids = await asyncio.gather(
            *(tracker.track_token_usage("u", tokens_in=n) for n in range(20))
        )
        assert len(set(ids)) == 20
        assert await asyncio.to_thread(tracker.flush, BOUND)
        assert set(fake.stored) == set(ids)

    asyncio.run(main())


# ------------------------------------------------- the client's default tracker


class FakeTransport:
    """A transport that answers the batch endpoint like a server."""

    default_project_id = None
    describe = "fake://transport"

    def __init__(self) -> None:
        self.stored: set[str] = set()
        self.closed = 0

    def request(self, method, path, *, params=None, body=None, idempotent=True, sleep=None):
        assert (method, path) == ("POST", "/api/meter/events/batch")
        ids = [event["id"] for event in body["events"]]
        fresh = [event_id for event_id in ids if event_id not in self.stored]
        self.stored.update(ids)
        return {"accepted": len(fresh), "duplicates": len(ids) - len(fresh), "rejected": []}

    def close(self) -> None:
        self.closed += 1


def test_client_tracker_flush_and_close(monkeypatch, tmp_path):
    monkeypatch.setattr(outbox_module, "DEFAULT_OUTBOX", tmp_path / "home" / "outbox.db")
    transport = FakeTransport()
    client = AgentMeterClient(project_id="p", transport=transport)
    assert client.flush(timeout=1) is True  # no tracker yet: nothing to do
    tracker = client.tracker
    assert client.tracker is tracker
    assert tracker.batch_size == client.config.batch_size
    assert tracker.outbox is not None
    assert tracker.outbox.path.parent == tmp_path / "home"  # one file per server and key
    event_id = tracker.track_api_request_pay()
    assert client.flush(timeout=BOUND)
    assert event_id in transport.stored
    client.close(timeout=1)
    client.close(timeout=1)
    assert tracker._closed
