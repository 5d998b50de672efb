"""The tracker's hot path as users call it, while the worker delivers (issue 19).

Run by ``benchmarks/tracker.py`` (``--hot-only`` for just these phases), in
a child process per run and variant, against its ``agentmeter serve``:

- ``call``: ``tracker.track_api_request_pay(api_calls=1, unit_price="0.001",
  user_id="user-1", metadata={...5 keys...})``, written as users write it
  (the metadata dict is made inside the timed call);
- ``block``: ``with track_api_request_pay(tracker, unit_price="0.001",
  user_id="user-1", metadata={...}): pass`` (making the block included);
- ``decorator``: a function decorated with ``@meter_api_request_pay(tracker,
  unit_price="0.001", metadata={...})``, called as ``handle("user-1")``.

The tracker has every default (batch of 500, queue of 10,000, an outbox); its
worker is started first, and it sends to the server while the calls are timed
(``worker_busy`` is the share of the timed window spent inside ``send_batch``).
Each call is timed alone with ``perf_counter_ns``. The floors are timed the
same way in the same process just before: a 6-field pydantic model,
``queue.Queue().put``, ``uuid.uuid4()``.

``python benchmarks/tracker_hot.py`` times each step of the hot path alone
(no server), to say where the time goes.
"""

from __future__ import annotations

import queue
import threading
import time
import uuid
from decimal import Decimal
from typing import Any

TARGETS = {"call_p50_us": 5.0, "call_p99_us": 25.0, "block_p50_us": 7.0, "decorator_p50_us": 7.0}
PRICE = Decimal("0.001")  # the cost of each event (api_calls=1 x unit_price "0.001")
VARIANTS = ("call", "block", "decorator")


def percentile(sorted_ns: list[int], fraction: float) -> float:
    return round(sorted_ns[min(len(sorted_ns) - 1, int(len(sorted_ns) * fraction))] / 1000, 2)


def time_each(call: Any, count: int) -> list[int]:
    clock = time.perf_counter_ns
    samples = []
    for _ in range(count):
        started = clock()
        call()
        samples.append(clock() - started)
    samples.sort()
    return samples


def floors(count: int) -> dict[str, float]:
    """p50 in microseconds of the work every event needs at least, timed like the calls."""
    from pydantic import BaseModel

    class SixFields(BaseModel):
        id: str
        project_id: str
        user_id: str
        api_calls: int
        unit_price: Decimal
        metadata: dict[str, Any]

    def model() -> None:
        SixFields(
            id="e-1",
            project_id="p",
            user_id="user-1",
            api_calls=1,
            unit_price="0.001",  # type: ignore[arg-type]
            metadata={"model": "gpt-4o"},
        )

    plain: queue.Queue[int] = queue.Queue()
    out: dict[str, float] = {}
    for name, call in (
        ("pydantic_6_fields", model),
        ("queue_put", lambda: plain.put(1)),
        ("uuid4", uuid.uuid4),
    ):
        out[name] = percentile(time_each(call, count), 0.5)
    return out


class SendWindows:
    """The intervals the worker spent in ``send_batch`` (encode + HTTP round trip)."""

    def __init__(self, client: Any) -> None:
        self.windows: list[tuple[float, float]] = []
        send = client.send_batch

        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return send(*args, **kwargs)
            finally:
                self.windows.append((started, time.perf_counter()))

        client.send_batch = timed

    def busy_share(self, start: float, end: float) -> float:
        busy = sum(max(0.0, min(b, end) - max(a, start)) for a, b in list(self.windows))
        return round(busy / (end - start), 2) if end > start else 0.0


def workload(tracker: Any, variant: str) -> Any:
    """The timed callable of ``variant``."""
    from agentmeter import meter_api_request_pay, track_api_request_pay

    if variant == "call":
        track = tracker.track_api_request_pay
        return lambda: track(
            api_calls=1,
            unit_price="0.001",
            user_id="user-1",
            metadata={
                "model": "gpt-4o",
                "tokens_in": 120,
                "tokens_out": 45,
                "cost_usd": 0.00123,
                "request_id": "req-1",
            },
        )
    if variant == "block":

        def block() -> None:
            with track_api_request_pay(
                tracker,
                unit_price="0.001",
                user_id="user-1",
                metadata={"model": "gpt-4o", "request_id": "req-1"},
            ):
                pass

        return block

    @meter_api_request_pay(tracker, unit_price="0.001", metadata={"model": "gpt-4o"})
    def handle(user_id: str) -> None:
        return None

    return lambda: handle("user-1")


def child(settings: dict[str, Any]) -> dict[str, Any]:
    from agentmeter import AgentMeterClient, AgentMeterTracker

    events = settings["events"]
    measured_floors = floors(events)
    client = AgentMeterClient(
        api_key=settings["key"], base_url=settings["url"], project_id=settings["project_id"]
    )
    sends = SendWindows(client)
    tracker = AgentMeterTracker(client, agent_id="bench", outbox=settings["outbox"])
    call = workload(tracker, settings["variant"])
    tracker.start()
    time.sleep(0.2)  # the worker's start-up replay of an empty outbox
    started = time.perf_counter()
    samples = time_each(call, events)
    ended = time.perf_counter()
    delivered = tracker.flush(timeout=600)
    stats = tracker.stats()
    tracker.close()
    return {
        "variant": settings["variant"],
        "events": len(samples),
        "expected_total": str(PRICE * len(samples)),
        "p50_us": percentile(samples, 0.5),
        "p99_us": percentile(samples, 0.99),
        "max_us": round(samples[-1] / 1000, 1),
        "worker_busy": sends.busy_share(started, ended),
        "delivered": delivered,
        "spilled": stats.spilled,
        "dropped": stats.dropped,
        "floors_p50_us": measured_floors,
        "threads": threading.active_count(),
    }


def median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run whose p50 is the median of the runs' (p99 and floors: their medians)."""
    ordered = sorted(runs, key=lambda run: run["p50_us"])
    chosen = dict(ordered[len(ordered) // 2])
    chosen["p99_us"] = sorted(run["p99_us"] for run in runs)[len(runs) // 2]
    chosen["runs_p50_us"] = [run["p50_us"] for run in runs]
    chosen["runs_p99_us"] = [run["p99_us"] for run in runs]
    names = runs[0]["floors_p50_us"]
    chosen["floors_p50_us"] = {
        name: sorted(run["floors_p50_us"][name] for run in runs)[len(runs) // 2] for name in names
    }
    return chosen


def print_hot(results: dict[str, dict[str, Any]]) -> None:
    print(f"hot path targets: {TARGETS}")
    print(
        f"{'variant':<11}{'p50 us':>8}{'p99 us':>8}{'max us':>10}{'busy':>6}  "
        f"runs p50 / p99; floors p50 us (same runs)"
    )
    for variant, result in results.items():
        print(
            f"{variant:<11}{result['p50_us']:>8}{result['p99_us']:>8}{result['max_us']:>10}"
            f"{result['worker_busy']:>6}  {result['runs_p50_us']} / {result['runs_p99_us']}; "
            f"{result['floors_p50_us']}  {result['server']}"
        )


def steps() -> dict[str, int]:
    """Each step of the hot path alone, in ns: the minimum over 200 rounds of 500
    calls (the least disturbed round), the worker not sending. No server needed."""
    import logging
    import timeit

    from agentmeter import AgentMeterClient, AgentMeterTracker
    from agentmeter.capture.charge import Charge
    from agentmeter.core import jsonio
    from agentmeter.core.build import api_request_event, finalize, format_ns
    from agentmeter.core.checks import check_metadata
    from agentmeter.core.ids import new_event_id
    from agentmeter.delivery.queue import EventQueue
    from agentmeter.models import PaymentType

    logging.disable(logging.CRITICAL)  # the tracker's worker cannot reach port 9
    client = AgentMeterClient(api_key="k", base_url="http://127.0.0.1:9", project_id="p")
    tracker = AgentMeterTracker(client, agent_id="b", outbox=None, max_queue_size=10**7)
    tracker._queue.batch_size = 10**9  # the worker waits: nothing is sent
    metadata = {"model": "gpt-4o", "tokens_in": 120, "tokens_out": 45, "cost_usd": 0.00123}
    queue_ = EventQueue(10**9, 10**9)
    event = api_request_event("p", "a", "user-1", 1, "0.001", metadata)
    batch = {"events": [finalize(dict(event)) for _ in range(500)]}
    timed: dict[str, Any] = {
        "event id": new_event_id,
        "metadata check (4 keys)": lambda: check_metadata(metadata),
        "queue put": lambda: queue_.put_nowait({}),
        "event dict (api_request_event)": lambda: api_request_event(
            "p", "a", "user-1", 1, "0.001", metadata
        ),
        "the call": workload(tracker, "call"),
        "Charge.declare (each block)": lambda: Charge.declare(
            PaymentType.API_REQUEST_PAY, unit_price="0.001", api_calls=1
        ),
        "with-block": workload(tracker, "block"),
        "decorated function": workload(tracker, "decorator"),
        "worker: timestamp text": lambda: format_ns(1_764_350_000_123_456_789),
    }
    out = {
        name: round(min(timeit.repeat(call, number=500, repeat=200)) / 500 * 1e9)
        for name, call in timed.items()
    }
    encode = min(timeit.repeat(lambda: jsonio.dumps_bytes(batch), number=3, repeat=100)) / 3
    out["worker: encode 500 events"] = round(encode * 1e9)
    return out


if __name__ == "__main__":  # python benchmarks/tracker_hot.py: the steps' table
    import json

    print(json.dumps(steps(), indent=1))
