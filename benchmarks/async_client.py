"""The async client against ``agentmeter serve``, beside the sync client from threads.

Starts the reference server (``agentmeter.testing.LiveServer``: a subprocess,
one uvicorn worker, a fresh SQLite file in a temporary directory), creates a
project, and records ``--calls`` events (default 1,000) with
``record_api_request_pay``, one request per event, four ways:

(a) async, all at once: ``asyncio.gather`` of ``--calls`` coroutines on one
    ``AsyncAgentMeterClient`` (the client admits ``--pool-size`` at a time,
    the size of its httpx pool; the rest wait in line);
(b) async, ``--threads`` tasks each making its share of the calls one after
    another: the same shape as (c), so the per-call latencies compare;
(c) sync, ``--threads`` threads (default 8) sharing one ``AgentMeterClient``;
(d) sync, one thread: the baseline of one request at a time.

For each: events per second (first call to last answer), the latency of a
call as its caller sees it (p50, p99; for (a) that includes the wait in
line), and the client process's CPU time per event, which says whether the
client or the server is the bottleneck. Every way is run ``--repeat`` times
(default 3) and the run with the median rate is shown. Afterwards the
server must hold exactly the events sent, or the script exits 1.

    python benchmarks/async_client.py                  # the figures in docs/benchmarks.md
    python benchmarks/async_client.py --calls 300      # quicker
    python benchmarks/async_client.py --json           # one JSON object instead of a table
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from agentmeter import AgentMeterClient, AsyncAgentMeterClient
from agentmeter.testing import LiveServer
from agentmeter.transport.http import HttpTransport


@dataclass
class Figures:
    way: str
    calls: int
    events_per_s: float
    p50_ms: float
    p99_ms: float
    cpu_ms_per_event: float


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def figures(way: str, latencies: list[float], wall: float, cpu: float) -> Figures:
    return Figures(
        way,
        len(latencies),
        len(latencies) / wall,
        percentile(latencies, 0.50) * 1000,
        percentile(latencies, 0.99) * 1000,
        cpu / len(latencies) * 1000,
    )


def async_all_at_once(settings: dict, calls: int) -> Figures:
    async def run() -> Figures:
        async with AsyncAgentMeterClient(**settings) as client:
            await client.health_check()  # one connection made before the clock starts
            latencies: list[float] = []

            async def one(n: int) -> None:
                started = time.perf_counter()
                await client.record_api_request_pay(1, "0.001", user_id=f"user-{n % 100}")
                latencies.append(time.perf_counter() - started)

            cpu, started = time.process_time(), time.perf_counter()
            await asyncio.gather(*(one(n) for n in range(calls)))
            wall, cpu = time.perf_counter() - started, time.process_time() - cpu
            return figures("async, all at once (gather)", latencies, wall, cpu)

    return asyncio.run(run())


def async_in_tasks(settings: dict, calls: int, tasks: int) -> Figures:
    async def run() -> Figures:
        async with AsyncAgentMeterClient(**settings) as client:
            await client.health_check()
            latencies: list[float] = []

            async def worker(first: int) -> None:
                for n in range(first, calls, tasks):
                    started = time.perf_counter()
                    await client.record_api_request_pay(1, "0.001", user_id=f"user-{n % 100}")
                    latencies.append(time.perf_counter() - started)

            cpu, started = time.process_time(), time.perf_counter()
            await asyncio.gather(*(worker(first) for first in range(tasks)))
            wall, cpu = time.perf_counter() - started, time.process_time() - cpu
            return figures(f"async, {tasks} tasks", latencies, wall, cpu)

    return asyncio.run(run())


def sync_in_threads(settings: dict, calls: int, threads: int) -> Figures:
    with AgentMeterClient(**settings) as client:
        client.health_check()
        latencies: list[float] = []
        lock = threading.Lock()

        def worker(first: int) -> None:
            mine = []
            for n in range(first, calls, threads):
                started = time.perf_counter()
                client.record_api_request_pay(1, "0.001", user_id=f"user-{n % 100}")
                mine.append(time.perf_counter() - started)
            with lock:
                latencies.extend(mine)

        workers = [threading.Thread(target=worker, args=(first,)) for first in range(threads)]
        cpu, started = time.process_time(), time.perf_counter()
        for thread in workers:
            thread.start()
        for thread in workers:
            thread.join()
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    way = f"sync, {threads} threads" if threads > 1 else "sync, 1 thread"
    return figures(way, latencies, wall, cpu)


def median_run(measure: Callable[[], Figures], repeat: int) -> Figures:
    runs = [measure() for _ in range(repeat)]
    rates = [run.events_per_s for run in runs]
    return runs[rates.index(statistics.median_low(rates))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--pool-size", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    options = parser.parse_args()

    directory = Path(tempfile.mkdtemp(prefix="agentmeter-async-bench-"))
    with LiveServer(f"sqlite:///{directory / 'ledger.db'}") as server:
        with server.client() as admin:
            project = admin.create_project("async benchmark")
        assert project.api_key is not None
        settings = {
            "base_url": server.url,
            "api_key": project.api_key.get_secret_value(),
            "project_id": project.id,
            "agent_id": "bench",
        }

        def sized() -> dict:  # the pool size is a transport knob
            transport = HttpTransport(server.url, settings["api_key"], pool_size=options.pool_size)
            return {**settings, "base_url": None, "api_key": None, "transport": transport}

        results = [
            median_run(lambda: async_all_at_once(sized(), options.calls), options.repeat),
            median_run(
                lambda: async_in_tasks(sized(), options.calls, options.threads), options.repeat
            ),
            median_run(
                lambda: sync_in_threads(sized(), options.calls, options.threads), options.repeat
            ),
            median_run(lambda: sync_in_threads(sized(), options.calls, 1), options.repeat),
        ]
        with AgentMeterClient(**settings) as reader:
            stored = reader.get_meter_stats(timeframe="all").total_events
    expected = options.calls * options.repeat * len(results)

    machine = f"{platform.python_implementation()} {platform.python_version()}, "
    machine += f"{os.cpu_count()} CPUs, {platform.system()}"
    if options.json:
        print(json.dumps({"machine": machine, "results": [asdict(r) for r in results]}))
    else:
        print(f"{options.calls} x record_api_request_pay against agentmeter serve ({machine});")
        print(f"pool size {options.pool_size}; median of {options.repeat} runs\n")
        print(f"{'way':32} {'events/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'client CPU ms/ev':>17}")
        for r in results:
            print(
                f"{r.way:32} {r.events_per_s:9.0f} {r.p50_ms:8.1f} {r.p99_ms:8.1f} "
                f"{r.cpu_ms_per_event:17.2f}"
            )
    if stored != expected:
        print(f"the server holds {stored} events, not {expected}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
