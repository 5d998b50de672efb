"""200 threads writing at once through one shared client: nothing lost, nothing twice."""

from __future__ import annotations

from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

from agentmeter.models import APIRequestPayEvent, InstantPayEvent, TokenBasedPayEvent

THREADS = 200
EVENTS_PER_THREAD = 3
USERS = 7


def events_of(client, worker):
    """Three events of different types and prices for one worker."""
    user = f"user-{worker % USERS}"
    common = {"project_id": client.project_id, "agent_id": f"agent-{worker % 3}", "user_id": user}
    return [
        APIRequestPayEvent(**common, api_calls=worker % 4 + 1, unit_price=f"0.00{worker % 9 + 1}"),
        TokenBasedPayEvent(
            **common,
            tokens_in=worker * 10,
            tokens_out=worker,
            input_token_price="0.000003",
            output_token_price="0.000015",
        ),
        InstantPayEvent(**common, amount=f"0.{worker:03d}1"),
    ]


def write(client, worker, events):
    if worker % 2:  # odd workers send a batch (and then resend it: a retry)
        assert client.record_events(events).accepted == EVENTS_PER_THREAD
        assert client.record_events(events).duplicates == EVENTS_PER_THREAD
    else:  # even workers send one by one, and resend the first
        for event in events:
            assert client.record_event(event).duplicate is False
        assert client.record_event(events[0]).duplicate is True


def test_200_threads_give_exact_counts_totals_and_meters(backend, project):
    with backend.connect(project, retry_attempts=0, timeout=60) as client:
        work = {worker: events_of(client, worker) for worker in range(THREADS)}
        with ThreadPoolExecutor(THREADS) as pool:
            futures = [pool.submit(write, client, w, events) for w, events in work.items()]
            for future in futures:
                future.result(timeout=120)

        everything = [event for events in work.values() for event in events]
        per_user: dict[str, Decimal] = defaultdict(Decimal)
        for event in everything:
            per_user[event.user_id] += event.total_cost
        stats = client.get_meter_stats(timeframe="all")
        assert stats.total_events == THREADS * EVENTS_PER_THREAD
        assert stats.total_cost == sum((event.total_cost for event in everything), Decimal(0))
        assert stats.total_api_calls == sum(event.get("api_calls", 0) for event in everything)
        assert stats.total_tokens_in == sum(event.get("tokens_in", 0) for event in everything)
        for user, cost in per_user.items():
            assert client.get_user_meter(user).current_usage == cost, user
        stored = client.get_events(limit=1000)
        assert sorted(event.id for event in stored) == sorted(event.id for event in everything)
