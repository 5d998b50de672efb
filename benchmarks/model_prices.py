"""What pricing a token charge by its model costs on the tracker's hot path.

``python benchmarks/model_prices.py`` times ``tracker.track_token_based_pay``
(each call on its own, ``time.perf_counter_ns``) in interleaved rounds:

- explicit prices, no metadata (no price lookup at all),
- explicit prices and ``metadata={"model": "gpt-4o"}`` (the same call as
  today's: before issue 13 a charge naming a model looked nothing up),
- no prices and no model (the configured defaults),
- ``model="gpt-4o"`` (the project's price table, read before timing as it
  is in a running process, then the catalog; the first lookup is made
  before timing),
- ``metadata={"model": "gpt-4o"}``, no prices.

Each variant's p50 is shown beside its baseline's: the call without a model
for "defaults", the call with the same metadata and explicit prices for the
two that price by model.

The tracker queues and never sends: its worker thread is kept from starting
(a queue larger than all the calls, no outbox), so only the caller's work is
timed, not a batch being finalized beside it. Prints p50 and p99 in
microseconds, and each variant's p50 minus the baseline's.
"""

from __future__ import annotations

import argparse
import logging
import platform
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from agentmeter import AgentMeterClient, AgentMeterTracker

Variant = Callable[[AgentMeterTracker], object]
PLAIN = "explicit prices"
NAMED = 'explicit prices, metadata={"model": ...}'
VARIANTS: dict[str, tuple[Variant, str]] = {  # name -> (call, its baseline)
    PLAIN: (lambda t: t.track_token_based_pay(100, 20, "0.0000025", "0.00001", "u1"), PLAIN),
    NAMED: (
        lambda t: t.track_token_based_pay(
            100, 20, "0.0000025", "0.00001", "u1", {"model": "gpt-4o"}
        ),
        NAMED,
    ),
    "defaults, no model": (lambda t: t.track_token_based_pay(100, 20, user_id="u1"), PLAIN),
    'model="gpt-4o"': (
        lambda t: t.track_token_based_pay(100, 20, user_id="u1", model="gpt-4o"),
        NAMED,
    ),
    'metadata={"model": "gpt-4o"}': (
        lambda t: t.track_token_based_pay(100, 20, user_id="u1", metadata={"model": "gpt-4o"}),
        NAMED,
    ),
}


def percentile(samples: list[int], share: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))] / 1000


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=20_000, help="timed calls per variant")
    parser.add_argument("--rounds", type=int, default=40)
    options = parser.parse_args()
    per_round = max(1, options.calls // options.rounds)
    folder = Path(tempfile.mkdtemp())
    client = AgentMeterClient(base_url=f"sqlite:///{folder / 'ledger.db'}", project_id="bench")
    size = per_round * options.rounds * len(VARIANTS) + 1000
    tracker = AgentMeterTracker(
        client, auto_flush=False, batch_size=1000, max_queue_size=size, outbox=None
    )
    # Time the hot path alone: the worker thread never starts, so no batch is
    # finalized or written while the clock runs (the queue is dropped at the end).
    tracker._thread = threading.Thread()
    client.price_book.current("bench")  # the project's table, as after a process's first minute
    for track, _ in VARIANTS.values():
        track(tracker)  # warm: the catalog's first lookup, imports
    samples: dict[str, list[int]] = {name: [] for name in VARIANTS}
    for _ in range(options.rounds):
        for name, (track, _) in VARIANTS.items():
            for _ in range(per_round):
                started = time.perf_counter_ns()
                track(tracker)
                samples[name].append(time.perf_counter_ns() - started)
    p50s = {name: statistics.median(taken) / 1000 for name, taken in samples.items()}
    print(f"python {platform.python_version()} on {platform.platform()}")
    print(f"{per_round * options.rounds} timed calls per variant, {options.rounds} rounds\n")
    print(f"{'variant':42} {'p50 us':>8} {'p99 us':>8} {'+p50 us':>8}  over")
    for name, taken in samples.items():
        baseline = VARIANTS[name][1]
        extra = p50s[name] - p50s[baseline]
        p99 = percentile(taken, 0.99)
        print(f"{name:42} {p50s[name]:8.2f} {p99:8.2f} {extra:+8.2f}  {baseline}")
    logging.getLogger("agentmeter").setLevel(logging.CRITICAL)  # the queue is dropped, by design
    tracker.close(timeout=0)
    client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
