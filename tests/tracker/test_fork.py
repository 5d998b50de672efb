"""fork() (gunicorn --preload, multiprocessing): the child starts with an empty
queue and its own worker; parent and child each deliver their own events, once.

A pass-through proxy counts every id on the wire, so a resend would show even
though the server's deduplication would hide it in the totals.
"""

from __future__ import annotations

import multiprocessing
from decimal import Decimal

import pytest

PRICE = Decimal("0.001")


def child_work(tracker, results) -> None:
    """In the forked child: track its own events, flush, report."""
    try:
        before = tracker.stats()
        ids = [tracker.track_api_request_pay(1, PRICE, "child") for _ in range(150)]
        delivered = tracker.flush(timeout=30)
        stats = tracker.stats()
        results.put(
            {
                "queued_at_start": before.queued,
                "ids": ids,
                "delivered": delivered,
                "sent": stats.sent,
                "duplicates": stats.duplicates,
            }
        )
    except BaseException as exc:
        results.put({"error": repr(exc)})


@pytest.mark.parametrize("started_before_fork", [True, False], ids=["worker-running", "lazy"])
def test_parent_and_child_each_deliver_their_own_events_once(
    project, proxy_factory, make_tracker, kit, started_before_fork
):
    proxy = proxy_factory()
    client = kit.fault_client(project, proxy.url)
    # Batches by size only: what the parent tracks before the fork stays queued.
    tracker = make_tracker(client, batch_size=1000, flush_interval=30)
    parent_ids = []
    if started_before_fork:
        parent_ids += [tracker.track_api_request_pay(1, PRICE, "parent") for _ in range(100)]
        assert tracker.flush(timeout=30)
        parent_ids += [tracker.track_api_request_pay(1, PRICE, "parent") for _ in range(200)]
        assert tracker.stats().queued == 200  # still queued at fork time

    context = multiprocessing.get_context("fork")
    results = context.Queue()
    child = context.Process(target=child_work, args=(tracker, results))
    child.start()
    report = results.get(timeout=60)
    child.join(60)
    assert child.exitcode == 0
    assert "error" not in report, report

    parent_ids += [tracker.track_api_request_pay(1, PRICE, "parent") for _ in range(50)]
    assert tracker.flush(timeout=30)
    parent_stats = tracker.stats()

    assert report["queued_at_start"] == 0  # the parent's queue stayed with the parent
    assert report["delivered"] is True
    assert (report["sent"], report["duplicates"]) == (150, 0)
    assert (parent_stats.sent, parent_stats.duplicates) == (len(parent_ids), 0)

    seen = proxy.ids_seen()
    assert set(seen) == set(parent_ids) | set(report["ids"])
    assert max(seen.values()) == 1  # no id went over the wire twice

    direct = project.direct
    assert direct.get_user_meter("parent").current_usage == PRICE * len(parent_ids)
    assert direct.get_user_meter("child").current_usage == PRICE * 150
    assert direct.get_meter_stats(timeframe="all").total_events == len(parent_ids) + 150
