"""AgentMeterTracker: hot-path cost, delivery rate, memory, and an outage.

Starts ``agentmeter serve`` (``agentmeter.testing.LiveServer``: one uvicorn
worker on a fresh SQLite file in a temporary directory) and runs each phase
in its own Python process, so each peak RSS is that phase's alone:

- ``up-1`` / ``up-8``: ``--events`` events (default 20,000; the three payment
  types in turn) tracked from 1 and from 8 threads with the tracker's
  defaults (a 10,000-event queue: a burst past it spills to the outbox).
  ``up-1-bigq``: the same with a queue that holds the whole burst and
  batches of 1,000, to show the delivery rate without the spill. Every
  ``track_*`` call is timed with ``perf_counter_ns`` (p50, p99, max);
  arguments are made before the clock starts. "Delivered/s" is
  events / (first call -> ``flush()`` returned True). The worker's time is
  split into ``finalize`` (timestamps, costs), JSON encoding, and the HTTP
  round trip (the server's work, mostly).
- ``durable-1`` / ``durable-8``: ``--durable-events`` (default 5,000) with
  ``durable=True``: every call waits for its (group-)committed write.
- ``down-N`` for each ``--down-events`` (default 20,000 and 100,000): the
  server is stopped (nothing listens on its port); N events are tracked and
  the tracker closed (bounded; the rest goes to the outbox). RSS before and
  after, the longest queue seen, drops. Then the server starts again on the
  same port and file, and a new process with a new tracker on the same
  outbox delivers everything ("replay/s").

After each phase the parent checks the server's ``/api/meter/stats``
(timeframe ``all``) of that phase's own project: the event count and the
Decimal total must equal what was tracked, or the script exits 1.

    python benchmarks/tracker.py                  # the figures in docs/benchmarks.md
    python benchmarks/tracker.py --events 5000 --durable-events 1000 --down-events 5000
    python benchmarks/tracker.py --json
    python benchmarks/tracker.py --hot-only         # the hot path as users call it (3 runs)

First of all, the hot path of issue 19 (``benchmarks/tracker_hot.py``): the
call ``tracker.track_api_request_pay(api_calls=1, unit_price="0.001",
user_id="user-1", metadata={...})``, a ``with`` block and a decorated
function, 20,000 each on a default tracker whose worker delivers while the
clock runs, ``--hot-runs`` times (default 3; the median run is shown), beside
floors measured in the same processes.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import threading
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

TARGETS = {"p50_us": 5.0, "p99_us": 50.0, "delivered_per_s": 20_000}
UNIT_PRICES = (Decimal("0.001"), Decimal("0.0025"), Decimal("0.3"))
TOKEN_PRICES = (
    (Decimal("0.000003"), Decimal("0.000015")),
    (Decimal("0.0000025"), Decimal("0.00001")),
)
AMOUNTS = (Decimal("0.01"), Decimal("0.05"), Decimal("1.10"))


# --------------------------------------------------------------- the workload


def make_calls(count: int, worker: int) -> tuple[list[tuple[int, tuple[Any, ...]]], Decimal]:
    """(kind, arguments) for ``count`` track calls, and their exact total cost."""
    calls: list[tuple[int, tuple[Any, ...]]] = []
    total = Decimal(0)
    for n in range(count):
        user = f"user-{(worker * 7 + n) % 100}"
        kind = n % 3
        if kind == 0:
            api_calls, price = 1 + n % 3, UNIT_PRICES[n % len(UNIT_PRICES)]
            calls.append((0, (api_calls, price, user)))
            total += api_calls * price
        elif kind == 1:
            tokens_in, tokens_out = 100 + n % 900, 20 + n % 300
            price_in, price_out = TOKEN_PRICES[n % len(TOKEN_PRICES)]
            calls.append((1, (tokens_in, tokens_out, price_in, price_out, user)))
            total += tokens_in * price_in + tokens_out * price_out
        else:
            amount = AMOUNTS[n % len(AMOUNTS)]
            calls.append((2, (amount, "bench", user)))
            total += amount
    return calls, total


def track_all(
    tracker: Any,
    calls: list[tuple[int, tuple[Any, ...]]],
    timings: list[int],
    rss_marks: list[tuple[int, float]] | None = None,
) -> None:
    """Make the calls, timing each; with ``rss_marks``, note the RSS ten times on the way."""
    methods = (
        tracker.track_api_request_pay,
        tracker.track_token_based_pay,
        tracker.track_instant_pay,
    )
    clock = time.perf_counter_ns
    every = max(1, len(calls) // 10)
    for n, (kind, arguments) in enumerate(calls, 1):
        method = methods[kind]
        started = clock()
        method(*arguments)
        timings.append(clock() - started)
        if rss_marks is not None and n % every == 0:
            rss_marks.append((n, round(rss_mb(), 1)))


def rss_mb() -> float:
    """The current resident set size."""
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def percentile(sorted_values: list[int], fraction: float) -> float:
    index = min(len(sorted_values) - 1, int(len(sorted_values) * fraction))
    return sorted_values[index] / 1000  # ns -> us


# ------------------------------------------------------------ child processes


class WorkerClock:
    """Time spent on the worker thread, by step (wrappers installed in the child)."""

    def __init__(self) -> None:
        self.seconds = {"finalize": 0.0, "encode": 0.0, "send_batch": 0.0}
        self.requests = 0

    def install(self, client: Any) -> None:
        from agentmeter.core import jsonio as _json
        from agentmeter.delivery import worker as _delivery

        def timed(name: str, function: Any) -> Any:
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                started = time.perf_counter()
                try:
                    return function(*args, **kwargs)
                finally:
                    self.seconds[name] += time.perf_counter() - started

            return wrapper

        _delivery.finalize = timed("finalize", _delivery.finalize)  # type: ignore[attr-defined]
        _json.dumps_bytes = timed("encode", _json.dumps_bytes)
        send = timed("send_batch", client.send_batch)

        def counted_send(*args: Any, **kwargs: Any) -> Any:
            self.requests += 1
            return send(*args, **kwargs)

        client.send_batch = counted_send

    def report(self) -> dict[str, float]:
        http = self.seconds["send_batch"] - self.seconds["encode"]
        return {
            "finalize_s": round(self.seconds["finalize"], 3),
            "encode_s": round(self.seconds["encode"], 3),
            "http_round_trip_s": round(http, 3),
            "requests": self.requests,
        }


def child(settings: dict[str, Any]) -> dict[str, Any]:
    from agentmeter import AgentMeterClient, AgentMeterTracker

    if settings["phase"] == "hot":
        import tracker_hot

        return tracker_hot.child(settings)

    client = AgentMeterClient(
        api_key=settings["key"], base_url=settings["url"], project_id=settings["project_id"]
    )
    options = settings.get("tracker", {})
    tracker = AgentMeterTracker(client, agent_id="bench", outbox=settings["outbox"], **options)
    phase = settings["phase"]
    if phase == "replay":
        started = time.perf_counter()
        pending = tracker.stats().outbox_pending
        delivered = tracker.flush(timeout=900)
        elapsed = time.perf_counter() - started
        stats = tracker.stats()
        tracker.close(timeout=5)
        return {
            "delivered": delivered,
            "events": pending,
            "seconds": round(elapsed, 3),
            "per_s": round(pending / elapsed) if elapsed else None,
            "outbox_pending": stats.outbox_pending,
            "replayed": stats.replayed,
            "duplicates": stats.duplicates,
            "peak_rss_mb": round(peak_rss_mb(), 1),
        }

    threads, events = settings["threads"], settings["events"]
    worker_clock = WorkerClock()
    if phase == "up":
        worker_clock.install(client)
    work = [make_calls(events // threads, w) for w in range(threads)]
    total = sum((cost for _, cost in work), Decimal(0))
    timings: list[list[int]] = [[] for _ in range(threads)]
    tracker.start()
    time.sleep(0.2)  # the worker's start-up replay of an empty outbox
    rss_before = rss_mb()
    longest_queue = 0
    stop_sampling = threading.Event()

    def sample() -> None:
        nonlocal longest_queue
        while not stop_sampling.wait(0.01):
            longest_queue = max(longest_queue, len(tracker._queue))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    rss_marks: list[tuple[int, float]] = []
    runners = [
        threading.Thread(
            target=track_all,
            args=(tracker, work[w][0], timings[w], rss_marks if phase == "down" else None),
        )
        for w in range(threads)
    ]
    started = time.perf_counter()
    for runner in runners:
        runner.start()
    for runner in runners:
        runner.join()
    tracked = time.perf_counter() - started
    rss_tracked = rss_mb()
    result: dict[str, Any] = {}
    if phase in ("up", "durable"):
        delivered = tracker.flush(timeout=600)
        elapsed = time.perf_counter() - started
        result.update(
            delivered=delivered,
            delivered_per_s=round(events / elapsed),
            deliver_seconds=round(elapsed, 3),
        )
        if phase == "up":
            result["worker"] = worker_clock.report()
    stop_sampling.set()
    sampler.join()
    stats_before_close = tracker.stats()
    close_started = time.perf_counter()
    tracker.close()  # the default shutdown_timeout
    close_seconds = time.perf_counter() - close_started
    stats = tracker.stats()
    everything = sorted(value for series in timings for value in series)
    result.update(
        events=len(everything),
        expected_total=str(total),
        p50_us=round(percentile(everything, 0.50), 2),
        p99_us=round(percentile(everything, 0.99), 2),
        max_us=round(everything[-1] / 1000, 1),
        track_seconds=round(tracked, 3),
        rss_before_mb=round(rss_before, 1),
        rss_after_track_mb=round(rss_tracked, 1),
        peak_rss_mb=round(peak_rss_mb(), 1),
        longest_queue=max(longest_queue, stats_before_close.queued),
        rss_marks_mb=rss_marks,
        close_seconds=round(close_seconds, 2),
        sent=stats.sent,
        dropped=stats.dropped,
        spilled=stats.spilled,
        duplicates=stats.duplicates,
        outbox_pending=stats.outbox_pending,
    )
    return result


def run_child(settings: dict[str, Any]) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, "--child", json.dumps(settings)],
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"phase {settings['phase']} failed:\n{done.stderr[-3000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


# --------------------------------------------------------------------- parent


def check_server(admin_url: str, key: str, project_id: str, count: int, total: str) -> str:
    from agentmeter import AgentMeterClient

    with AgentMeterClient(api_key=key, base_url=admin_url, project_id=project_id) as client:
        stats = client.get_meter_stats(timeframe="all")
    if stats.total_events == count and stats.total_cost == Decimal(total):
        return "ok"
    return f"MISMATCH: {stats.total_events} events, {stats.total_cost} (expected {count}, {total})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--durable-events", type=int, default=5_000)
    parser.add_argument("--down-events", type=int, nargs="*", default=[20_000, 100_000])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--hot-only", action="store_true", help="only the hot-path phases")
    parser.add_argument("--hot-runs", type=int, default=3)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.child:
        print(json.dumps(child(json.loads(arguments.child))))
        return 0

    import tracker_hot

    from agentmeter.testing import LiveServer

    results: dict[str, Any] = {
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
        }
    }
    failures = 0
    with tempfile.TemporaryDirectory(prefix="agentmeter-bench-") as directory:
        folder = Path(directory)
        server = LiveServer(f"sqlite:///{folder / 'ledger.db'}").start()
        try:
            admin = server.client()

            def new_project(name: str) -> dict[str, Any]:
                project = admin.create_project(name)
                assert project.api_key is not None
                return {
                    "key": project.api_key.get_secret_value(),
                    "url": server.url,
                    "project_id": project.id,
                    "outbox": str(folder / f"{name}.outbox.db"),
                }

            hot: dict[str, list[dict[str, Any]]] = {v: [] for v in tracker_hot.VARIANTS}
            for run in range(arguments.hot_runs):
                for variant in tracker_hot.VARIANTS:
                    settings = new_project(f"hot-{variant}-{run}")
                    settings.update(phase="hot", variant=variant, events=arguments.events)
                    result = run_child(settings)
                    result["server"] = check_server(
                        server.url,
                        settings["key"],
                        settings["project_id"],
                        result["events"],
                        result["expected_total"],
                    )
                    failures += result["server"] != "ok" or result["dropped"] != 0
                    hot[variant].append(result)
                    print(f"hot-{variant}: {json.dumps(result)}", file=sys.stderr)
            if hot["call"]:
                results["hot"] = {v: tracker_hot.median_run(runs) for v, runs in hot.items()}
                for variant, runs in hot.items():
                    results["hot"][variant]["server"] = (
                        "ok" if all(run["server"] == "ok" for run in runs) else "MISMATCH"
                    )
            big_queue = {"max_queue_size": 2 * arguments.events, "batch_size": 1000}
            phases = [
                ("up-1", "up", 1, arguments.events, {}),
                ("up-8", "up", 8, arguments.events, {}),
                ("up-1-bigq", "up", 1, arguments.events, big_queue),
                ("up-8-bigq", "up", 8, arguments.events, big_queue),
                ("durable-1", "durable", 1, arguments.durable_events, {"durable": True}),
                ("durable-8", "durable", 8, arguments.durable_events, {"durable": True}),
            ]
            for name, phase, threads, events, options in [] if arguments.hot_only else phases:
                settings = new_project(name)
                settings.update(phase=phase, threads=threads, events=events, tracker=options)
                result = run_child(settings)
                result["server"] = check_server(
                    server.url,
                    settings["key"],
                    settings["project_id"],
                    result["events"],
                    result["expected_total"],
                )
                failures += result["server"] != "ok"
                results[name] = result
                print(f"{name}: {json.dumps(result)}", file=sys.stderr)

            for events in [] if arguments.hot_only else arguments.down_events:
                name = f"down-{events}"
                settings = new_project(name)
                server.stop()  # nothing listens on its port now
                settings.update(phase="down", threads=1, events=events)
                result = run_child(settings)
                server.start()  # the same port and ledger file
                replay = run_child({**settings, "phase": "replay"})
                result["replay"] = replay
                result["server"] = check_server(
                    server.url,
                    settings["key"],
                    settings["project_id"],
                    result["events"],
                    result["expected_total"],
                )
                failures += result["server"] != "ok" or result["dropped"] != 0
                results[name] = result
                print(f"{name}: {json.dumps(result)}", file=sys.stderr)
        finally:
            server.stop()

    if arguments.json:
        print(json.dumps(results, indent=2))
    else:
        print_table(results)
    return 1 if failures else 0


def print_table(results: dict[str, Any]) -> None:
    import tracker_hot

    machine = results["machine"]
    print(f"Python {machine['python']}, {machine['cpus']} CPUs, {machine['platform']}")
    print(f"targets: {TARGETS}")
    print()
    header = (
        f"{'phase':<12}{'events':>8}{'p50 us':>9}{'p99 us':>9}{'max us':>10}"
        f"{'deliv/s':>10}{'peak MB':>9}{'drops':>7}  server"
    )
    if "hot" in results:
        tracker_hot.print_hot(results["hot"])
        print()
    print(header)
    for name, result in results.items():
        if name in ("machine", "hot"):
            continue
        delivered = result.get("delivered_per_s") or result.get("replay", {}).get("per_s")
        print(
            f"{name:<12}{result['events']:>8}{result['p50_us']:>9}{result['p99_us']:>9}"
            f"{result['max_us']:>10}{delivered or '-':>10}{result['peak_rss_mb']:>9}"
            f"{result['dropped']:>7}  {result['server']}"
        )
    print()
    for name, result in results.items():
        if name.startswith("up-"):
            print(f"{name} worker time: {result['worker']}")
        if name.startswith("down-"):
            replay = result["replay"]
            print(
                f"{name}: RSS {result['rss_before_mb']} -> {result['rss_after_track_mb']} MB "
                f"while down (every tenth: {[mb for _, mb in result['rss_marks_mb']]}), "
                f"longest queue {result['longest_queue']}, spilled "
                f"{result['spilled']}, outbox {result['outbox_pending']} after close "
                f"({result['close_seconds']} s); replay {replay['events']} in "
                f"{replay['seconds']} s ({replay['per_s']}/s), duplicates {replay['duplicates']}"
            )


if __name__ == "__main__":
    sys.exit(main())
