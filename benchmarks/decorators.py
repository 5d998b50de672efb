"""What a ``@meter_*`` decorator or a ``track_*`` block adds to a call, in microseconds.

Every variant is timed call by call with ``time.perf_counter_ns`` (``--calls``
calls each, default 20,000), in interleaved rounds of ``--per-round`` calls so
that drift hits every variant alike. The table shows p50/p99 per call and the
overhead over the bare callable of the same kind (p50 minus p50, p99 minus p99).

Events go to an ``AgentMeterTracker`` with ``auto_flush=False`` and
``batch_size=1000`` over a client on an embedded SQLite ledger in a temporary
directory. A round of one variant queues fewer than 1000 events, so the
worker never sends while the clock runs; the tracker is flushed (untimed)
after each round. At the end the ledger must hold exactly the events and
the exact total cost billed, or the script exits 1.

``enforce_budget`` runs against a meter read once (``budget_cache_ttl`` of an
hour) for one user; "(guarded user)" is an unguarded decorator billing that
same user, whose costs the guard must keep count of; all other variants bill
a user no guard watches.

    python benchmarks/decorators.py                 # the figures in docs/benchmarks.md
    python benchmarks/decorators.py --calls 2000    # quicker
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import platform
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

from agentmeter import (
    AgentMeterClient,
    meter_api_request_pay,
    meter_instant_pay,
    meter_token_based_pay,
    track_api_request_pay,
    track_token_based_pay,
)
from agentmeter.tracker import AgentMeterTracker

ANSWER = {"choices": [], "usage": {"prompt_tokens": 120, "completion_tokens": 30}}
USER = "bench-user"
GUARDED_USER = "budget-user"  # the user whose budget is checked (others are not)
API_PRICE, IN_PRICE, OUT_PRICE, AMOUNT = (
    Decimal("0.002"),
    Decimal("0.000003"),
    Decimal("0.000015"),
    Decimal("0.05"),
)
API_COST = API_PRICE
TOKEN_COST = 120 * IN_PRICE + 30 * OUT_PRICE


def percentiles(samples: list[int]) -> tuple[float, float]:
    ordered = sorted(samples)
    return (
        ordered[len(ordered) // 2] / 1000,
        ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] / 1000,
    )


def time_calls(call: Callable[[], Any], count: int) -> list[int]:
    samples = []
    clock = time.perf_counter_ns
    for _ in range(count):
        start = clock()
        call()
        samples.append(clock() - start)
    return samples


async def time_awaits(call: Callable[[], Awaitable[Any]], count: int) -> list[int]:
    samples = []
    clock = time.perf_counter_ns
    for _ in range(count):
        start = clock()
        await call()
        samples.append(clock() - start)
    return samples


def build(tracker: AgentMeterTracker) -> tuple[dict[str, Any], dict[str, Any], dict[str, Decimal]]:
    """Sync variants, async variants (name -> callable), and the cost each call bills."""

    def plain(query: str, user_id: str) -> dict[str, Any]:
        return ANSWER

    async def aplain(query: str, user_id: str) -> dict[str, Any]:
        return ANSWER

    def stream(query: str, user_id: str) -> Any:
        yield "a"
        yield "b"
        yield ANSWER

    class Service:
        def answer(self, query: str, user_id: str) -> dict[str, Any]:
            return ANSWER

        @meter_api_request_pay(tracker, unit_price=API_PRICE)
        def metered_answer(self, query: str, user_id: str) -> dict[str, Any]:
            return ANSWER

    api = meter_api_request_pay(tracker, unit_price=API_PRICE)
    tokens = meter_token_based_pay(
        tracker, input_token_price=IN_PRICE, output_token_price=OUT_PRICE
    )
    extracted = meter_token_based_pay(
        tracker,
        input_token_price=IN_PRICE,
        output_token_price=OUT_PRICE,
        tokens_extractor=lambda *args, result=None, **kwargs: (120, 30),
    )
    instant = meter_instant_pay(tracker, amount=AMOUNT, description="bench")
    budget = meter_api_request_pay(tracker, unit_price=API_PRICE, enforce_budget=True)

    api_plain, tokens_plain, extracted_plain = api(plain), tokens(plain), extracted(plain)
    instant_plain, budget_plain, api_stream = instant(plain), budget(plain), api(stream)
    service = Service()

    def block() -> None:
        with track_api_request_pay(tracker, None, None, USER, API_PRICE) as usage:
            usage["api_calls"] = 1

    def token_block() -> None:
        with track_token_based_pay(tracker, None, None, USER, IN_PRICE, OUT_PRICE) as usage:
            usage["tokens_in"] = 120
            usage["tokens_out"] = 30

    def nothing() -> None:
        return None

    sync: dict[str, Any] = {
        "bare function": lambda: plain("q", USER),
        "tracker.track_api_request_pay (no decorator)": lambda: tracker.track_api_request_pay(
            1, API_PRICE, USER, {"function": "plain", "duration_ms": 0}
        ),
        "meter_api_request_pay": lambda: api_plain("q", USER),
        "meter_token_based_pay (usage found)": lambda: tokens_plain("q", USER),
        "meter_token_based_pay (extractor)": lambda: extracted_plain("q", user_id=USER),
        "meter_instant_pay": lambda: instant_plain("q", USER),
        "meter_api_request_pay enforce_budget": lambda: budget_plain("q", GUARDED_USER),
        "meter_api_request_pay (guarded user)": lambda: api_plain("q", GUARDED_USER),
        "bare method": lambda: service.answer("q", USER),
        "meter_api_request_pay (method)": lambda: service.metered_answer("q", USER),
        "bare generator (3 items)": lambda: list(stream("q", USER)),
        "meter_api_request_pay (generator)": lambda: list(api_stream("q", USER)),
        "empty block": nothing,
        "with track_api_request_pay": block,
        "with track_token_based_pay": token_block,
    }
    api_async, tokens_async = api(aplain), tokens(aplain)

    async def async_block() -> None:
        async with track_api_request_pay(tracker, None, None, USER, API_PRICE) as usage:
            usage["api_calls"] = 1

    async def anothing() -> None:
        return None

    asynchronous: dict[str, Any] = {
        "bare async def": lambda: aplain("q", USER),
        "meter_api_request_pay (async)": lambda: api_async("q", USER),
        "meter_token_based_pay (async)": lambda: tokens_async("q", USER),
        "empty coroutine": anothing,
        "async with track_api_request_pay": async_block,
    }
    costs = {
        "tracker.track_api_request_pay (no decorator)": API_COST,
        "meter_api_request_pay": API_COST,
        "meter_token_based_pay (usage found)": TOKEN_COST,
        "meter_token_based_pay (extractor)": TOKEN_COST,
        "meter_instant_pay": AMOUNT,
        "meter_api_request_pay enforce_budget": API_COST,
        "meter_api_request_pay (guarded user)": API_COST,
        "meter_api_request_pay (method)": API_COST,
        "meter_api_request_pay (generator)": API_COST,
        "with track_api_request_pay": API_COST,
        "with track_token_based_pay": TOKEN_COST,
        "meter_api_request_pay (async)": API_COST,
        "meter_token_based_pay (async)": TOKEN_COST,
        "async with track_api_request_pay": API_COST,
    }
    return sync, asynchronous, costs


BASELINES = {
    "tracker.track_api_request_pay (no decorator)": "bare function",
    "meter_api_request_pay": "bare function",
    "meter_token_based_pay (usage found)": "bare function",
    "meter_token_based_pay (extractor)": "bare function",
    "meter_instant_pay": "bare function",
    "meter_api_request_pay enforce_budget": "bare function",
    "meter_api_request_pay (guarded user)": "bare function",
    "meter_api_request_pay (method)": "bare method",
    "meter_api_request_pay (generator)": "bare generator (3 items)",
    "with track_api_request_pay": "empty block",
    "with track_token_based_pay": "empty block",
    "meter_api_request_pay (async)": "bare async def",
    "meter_token_based_pay (async)": "bare async def",
    "async with track_api_request_pay": "empty coroutine",
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=20_000, help="timed calls per variant")
    parser.add_argument("--per-round", type=int, default=500, help="calls per round (< 1000)")
    args = parser.parse_args()
    per_round = min(args.per_round, 999, args.calls)
    rounds = max(1, args.calls // per_round)

    with tempfile.TemporaryDirectory() as directory:
        ledger = Path(directory) / "ledger.db"
        client = AgentMeterClient(
            base_url=f"sqlite:///{ledger}",
            project_id="bench",
            agent_id="bench-agent",
            budget_cache_ttl=3600,  # the budget variant reads the meter once
        )
        tracker = AgentMeterTracker(
            client,
            auto_flush=False,
            batch_size=1000,
            max_queue_size=100_000,
            outbox=Path(directory) / "outbox.db",
        )
        sync, asynchronous, costs = build(tracker)
        billed = {name: 0 for name in costs}

        def settle() -> None:
            if not tracker.flush(timeout=60):
                raise SystemExit("the tracker could not deliver to the embedded ledger")

        # Warm-up: imports, caches, the worker thread, the budget's first meter read.
        for name, call in sync.items():
            time_calls(call, 200)
            billed[name] = billed.get(name, 0) + 200
            settle()
        for name, acall in asynchronous.items():
            asyncio.run(time_awaits(acall, 200))
            billed[name] = billed.get(name, 0) + 200
            settle()

        samples: dict[str, list[int]] = {name: [] for name in [*sync, *asynchronous]}
        started = time.monotonic()
        for _ in range(rounds):
            for name, call in sync.items():
                gc.collect()
                samples[name] += time_calls(call, per_round)
                billed[name] += per_round
                settle()

            async def async_round() -> None:
                for name, acall in asynchronous.items():
                    gc.collect()
                    samples[name] += await time_awaits(acall, per_round)
                    billed[name] += per_round
                    tracker.flush(timeout=60)  # a short block of the loop, untimed

            asyncio.run(async_round())
            settle()
        elapsed = time.monotonic() - started

        print(f"python {platform.python_version()} on {platform.platform()}")
        print(
            f"{rounds * per_round} timed calls per variant ({rounds} rounds of {per_round}), "
            f"{elapsed:.1f} s; tracker auto_flush=False, batch_size=1000, flushed between "
            "rounds (no delivery while timing); embedded SQLite ledger"
        )
        print()
        print(f"{'variant':<46} {'p50 us':>8} {'p99 us':>8} {'+p50 us':>8} {'+p99 us':>8}")
        worst = 0.0
        for name, values in samples.items():
            p50, p99 = percentiles(values)
            base = BASELINES.get(name)
            if base is None:
                print(f"{name:<46} {p50:>8.2f} {p99:>8.2f}")
                continue
            b50, b99 = percentiles(samples[base])
            if name.startswith(("meter_", "with ", "async with ")):
                worst = max(worst, p50 - b50)
            print(f"{name:<46} {p50:>8.2f} {p99:>8.2f} {p50 - b50:>+8.2f} {p99 - b99:>+8.2f}")
        print()
        print(f"largest p50 overhead: {worst:.2f} us (target: <= 10 us)")

        tracker.close(timeout=30)
        expected_events = sum(billed[name] for name in costs)
        expected_total = sum(costs[name] * billed[name] for name in costs)
        stats = client.get_meter_stats(timeframe="all")
        client.close()
        ok = stats.total_events == expected_events and stats.total_cost == expected_total
        print(
            f"ledger: {stats.total_events} events, total {stats.total_cost} "
            f"(expected {expected_events}, {expected_total}): {'ok' if ok else 'MISMATCH'}"
        )
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
