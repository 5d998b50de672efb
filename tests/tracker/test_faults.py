"""The tracker against the real server behind a fault-injecting proxy.

In every case 10,000 events tracked from 8 threads arrive exactly once: the
server's event count, Decimal totals and per-user meters equal what was
tracked, every id that went over the wire is one a track call returned (a
retry never mints a new id), and nothing was dropped or rejected.
"""

from __future__ import annotations

import itertools
import threading
import time

import pytest

BATCH_PATHS = ("/api/meter/events/batch", "/api/meter/event")


def is_event_post(request) -> bool:
    return request.method == "POST" and request.path in BATCH_PATHS


def deliver_through(proxy, project, make_tracker, kit, *, pause=None, client=None, **options):
    """Track the workload through ``proxy``, flush, and check exactly-once storage."""
    client = client or kit.fault_client(project, proxy.url)
    options.setdefault("batch_size", 250)
    tracker = make_tracker(client, **options)
    work = kit.Workload()
    work.run(tracker, pause=pause)
    assert tracker.flush(timeout=120), tracker.stats()
    stats = tracker.stats()
    tracker.close(timeout=5)
    kit.verify(project, work)
    seen = proxy.ids_seen()
    assert set(seen) == set(work.ids), "an id reached the wire that no track call returned"
    assert stats.failed == 0
    assert stats.dropped == 0
    assert stats.queued == 0
    assert stats.outbox_pending == 0
    return stats, seen


def test_30_percent_answered_500_without_reaching_the_server(
    proxy_factory, project, make_tracker, kit
):
    def decide(request, rng):
        return kit.ANSWER_500 if is_event_post(request) and rng.random() < 0.3 else kit.PASS

    proxy = proxy_factory(kit.seeded(decide, 1))
    # A small queue, so that some events also take the spill path while batches fail.
    stats, _ = deliver_through(proxy, project, make_tracker, kit, max_queue_size=2000)
    assert proxy.actions[kit.ANSWER_500] > 0
    assert stats.retried > 0


def test_30_percent_stored_by_the_server_but_answered_500(
    proxy_factory, project, make_tracker, kit
):
    """The nasty case: the batch is stored, the client hears 500 and sends it again."""

    def decide(request, rng):
        if is_event_post(request) and rng.random() < 0.3:
            return kit.FORWARD_THEN_500
        return kit.PASS

    proxy = proxy_factory(kit.seeded(decide, 2))
    stats, seen = deliver_through(proxy, project, make_tracker, kit)
    assert proxy.actions[kit.FORWARD_THEN_500] > 0
    assert max(seen.values()) > 1  # the same ids went out again...
    assert stats.duplicates > 0  # ...and the server recognised them
    # The attempt after a failed one carries the failed batch's ids, unchanged
    # (a retry; or, past the retry budget, the replay of those same rows).
    posts = [request for request in proxy.requests if is_event_post(request)]
    for failed, following in itertools.pairwise(posts):
        if failed.action == kit.FORWARD_THEN_500:
            assert set(failed.ids) <= set(following.ids)


def test_bursts_of_429_with_retry_after(proxy_factory, project, make_tracker, kit):
    burst = {"left": 0}

    def decide(request, rng):
        if not is_event_post(request):
            return kit.PASS
        if burst["left"] == 0 and rng.random() < 0.15:
            burst["left"] = rng.randint(2, 6)  # some outlast the retry budget
        if burst["left"]:
            burst["left"] -= 1
            return kit.ANSWER_429
        return kit.PASS

    proxy = proxy_factory(kit.seeded(decide, 3), retry_after="1")
    stats, _ = deliver_through(proxy, project, make_tracker, kit)
    assert proxy.actions[kit.ANSWER_429] > 0
    assert stats.retried > 0


def test_connections_reset_part_way_through_the_request(proxy_factory, project, make_tracker, kit):
    def decide(request, rng):
        return kit.RESET_PARTIAL if is_event_post(request) and rng.random() < 0.2 else kit.PASS

    proxy = proxy_factory(kit.seeded(decide, 4))
    deliver_through(proxy, project, make_tracker, kit)
    assert proxy.actions[kit.RESET_PARTIAL] > 0


def test_connections_reset_after_the_server_stored_the_batch(
    proxy_factory, project, make_tracker, kit
):
    def decide(request, rng):
        if is_event_post(request):
            roll = rng.random()
            if roll < 0.1:
                return kit.RESET_AFTER_STORE
            if roll < 0.2:
                return kit.CLOSE_AFTER_STORE
        return kit.PASS

    proxy = proxy_factory(kit.seeded(decide, 5))
    stats, _ = deliver_through(proxy, project, make_tracker, kit)
    assert proxy.actions[kit.RESET_AFTER_STORE] > 0
    assert proxy.actions[kit.CLOSE_AFTER_STORE] > 0
    assert stats.duplicates > 0


def test_answers_delayed_past_the_read_timeout_after_the_server_stored(
    proxy_factory, project, make_tracker, kit
):
    delayed = {"count": 0}

    def decide(request, rng):
        if is_event_post(request) and delayed["count"] < 6 and rng.random() < 0.2:
            delayed["count"] += 1
            return kit.DELAY
        return kit.PASS

    proxy = proxy_factory(kit.seeded(decide, 6), delay=1.6)
    client = kit.fault_client(project, proxy.url, timeout=1.0)
    stats, _ = deliver_through(proxy, project, make_tracker, kit, client=client)
    assert proxy.actions[kit.DELAY] > 0
    assert stats.duplicates > 0  # the timed-out batches were stored the first time


def test_server_down_for_seconds_and_back(proxy_factory, project, make_tracker, kit):
    proxy = proxy_factory()
    tracked = {"n": 0}
    lock = threading.Lock()

    def pace(n: int) -> None:
        with lock:
            tracked["n"] += 1
        if n % 10 == 9:
            time.sleep(0.03)  # ~4 s of tracking: before, during and after the outage

    def outage() -> None:
        assert kit.wait_until(lambda: tracked["n"] > 1500, 60)
        proxy.down()
        time.sleep(2.5)
        outage_end["n"] = tracked["n"]
        proxy.up()

    outage_end = {"n": 0}

    breaker = threading.Thread(target=outage)
    breaker.start()
    try:
        stats, _ = deliver_through(proxy, project, make_tracker, kit, pause=pace)
    finally:
        breaker.join(30)
    assert stats.spilled > 0  # the outage went to the outbox...
    assert stats.replayed > 0  # ...and came back out of it
    assert outage_end["n"] < 10_000  # and tracking went on after the server came back


@pytest.mark.parametrize("on_full", ["spill", "block"])
def test_full_queue_during_an_outage_loses_nothing(
    proxy_factory, project, make_tracker, kit, on_full
):
    """A queue much smaller than the outage: spill moves it to the outbox; block
    (with no outbox) holds the callers until the server is back."""
    proxy = proxy_factory()
    proxy.down()
    options = {"max_queue_size": 500, "batch_size": 100, "on_full": on_full}
    if on_full == "block":
        options.update(outbox=None, block_timeout=60)
    client = kit.fault_client(project, proxy.url, retry_deadline=1.0)
    tracker = make_tracker(client, **options)
    work = kit.Workload(threads=4, per_thread=500)
    restore = threading.Timer(2.0, proxy.up)
    restore.start()
    try:
        work.run(tracker)
        assert tracker.flush(timeout=60), tracker.stats()
    finally:
        restore.join()
    stats = tracker.stats()
    tracker.close(timeout=5)
    kit.verify(project, work)
    assert stats.dropped == 0
    if on_full == "spill":
        assert stats.spilled > 0


def test_a_server_without_the_batch_endpoint_gets_single_events(
    proxy_factory, project, make_tracker, kit
):
    """404 on the batch endpoint: the client falls back to one event per request,
    and faults on those are retried like any other (10 % answered 500 after storing)."""

    def decide(request, rng):
        if request.path == "/api/meter/events/batch":
            return kit.ANSWER_404
        if is_event_post(request) and rng.random() < 0.1:
            return kit.FORWARD_THEN_500
        return kit.PASS

    proxy = proxy_factory(kit.seeded(decide, 7))
    client = kit.fault_client(project, proxy.url, max_retry_wait=0.1)
    tracker = make_tracker(client, batch_size=100)
    work = kit.Workload(threads=4, per_thread=75)
    work.run(tracker)
    assert tracker.flush(timeout=60), tracker.stats()
    stats = tracker.stats()
    kit.verify(project, work)
    singles = [r for r in proxy.requests if r.path == "/api/meter/event"]
    batches = [r for r in proxy.requests if r.path == "/api/meter/events/batch"]
    assert len(batches) == 1  # asked once; the client remembers the answer
    assert {event_id for r in singles for event_id in r.ids} == set(work.ids)
    assert stats.duplicates > 0
    assert (stats.failed, stats.dropped) == (0, 0)
