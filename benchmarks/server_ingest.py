"""How many events per second ``agentmeter serve`` stores, on SQLite.

Starts the reference server (``agentmeter.testing.LiveServer``: a subprocess,
one uvicorn worker, on a fresh SQLite file in a temporary directory), creates
two projects, then measures

(a) the batch endpoint: ``--batch-events`` events (default 50,000) in batches
    of 1,000, POSTed from ``--threads`` client threads (default 4);
(b) single events: ``--single-events`` events (default 2,000) POSTed one per
    request to ``POST /api/meter/event``, from the same number of threads.

Every request body is serialized before the clock starts; each thread has its
own ``requests.Session`` (keep-alive). The clock runs from the first request
to the last answer. Afterwards ``GET /api/meter/stats?timeframe=all`` of each
project must show exactly the events sent: the count and the Decimal total.

    python benchmarks/server_ingest.py                 # the figures in docs/benchmarks.md
    python benchmarks/server_ingest.py --batch-events 10000 --single-events 500   # quicker
    python benchmarks/server_ingest.py --json          # one JSON object instead of a table
    python benchmarks/server_ingest.py --stages        # where a batch's time goes (no server)
    python benchmarks/server_ingest.py --alerts        # with alerts configured (issue 17)

``--alerts`` configures each project as a team using alerts would before the
clock starts: a webhook endpoint subscribed to every alert type, daily and
monthly spend limits, and a threshold for each of the 100 users (high enough
that the run crosses none: the figure is the cost of watching, per write).

Exits 1 when the ledger does not hold exactly what was sent.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import requests

from agentmeter.core.ids import new_event_id
from agentmeter.testing import LiveServer

BATCH_SIZE = 1000
TARGET_BATCH_EVENTS_PER_S = 20_000

# Prices that are exact in decimal but not in binary, so a float anywhere on
# the way would show in the total.
UNIT_PRICES = ("0.001", "0.0025", "0.1", "0.3")
TOKEN_PRICES = (("0.000003", "0.000015"), ("0.0000025", "0.00001"))
AMOUNTS = ("0.01", "0.05", "1.10")


def make_events(count: int, project_id: str, seed: int) -> tuple[list[dict], Decimal]:
    """``count`` events of all three payment types, and their exact total cost.

    Like the SDK's: a UUIDv7 id and an RFC 3339 timestamp (the last minute) each.
    """
    events: list[dict] = []
    total = Decimal(0)
    now = datetime.now(timezone.utc)
    for index in range(count):
        number = seed + index
        moment = now - timedelta(microseconds=60_000_000 * index // max(1, count))
        common = {
            "id": new_event_id(),
            "timestamp": moment.isoformat().replace("+00:00", "Z"),
            "project_id": project_id,
            "agent_id": f"agent-{number % 5}",
            "user_id": f"user-{number % 100}",
            "metadata": {"run": "bench", "n": number},
        }
        kind = number % 3
        if kind == 0:
            price = UNIT_PRICES[number % len(UNIT_PRICES)]
            calls = 1 + number % 3
            common.update(payment_type="api_request_pay", api_calls=calls, unit_price=price)
            total += calls * Decimal(price)
        elif kind == 1:
            price_in, price_out = TOKEN_PRICES[number % len(TOKEN_PRICES)]
            tokens_in, tokens_out = 100 + number % 900, 20 + number % 300
            common.update(
                payment_type="token_based_pay",
                tokens_in=tokens_in,
                tokens_out=tokens_out,
                input_token_price=price_in,
                output_token_price=price_out,
                metadata={"run": "bench", "n": number, "model": "gpt-4o-mini"},
            )
            total += tokens_in * Decimal(price_in) + tokens_out * Decimal(price_out)
        else:
            amount = AMOUNTS[number % len(AMOUNTS)]
            common.update(payment_type="instant_pay", amount=amount, description="bench")
            total += Decimal(amount)
        events.append(common)
    return events, total


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc), or NaN."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks  # utime, stime


@dataclass
class Run:
    name: str
    events: int
    requests: int
    seconds: float = 0.0
    server_cpu: float = float("nan")
    latencies: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0

    def percentile(self, fraction: float) -> float:
        ordered = sorted(self.latencies)
        if not ordered:
            return float("nan")
        return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]

    def summary(self) -> dict:
        return {
            "name": self.name,
            "events": self.events,
            "requests": self.requests,
            "seconds": round(self.seconds, 3),
            "events_per_second": round(self.events_per_second),
            "requests_per_second": round(self.requests / self.seconds, 1) if self.seconds else 0,
            "latency_ms_p50": round(self.percentile(0.50) * 1000, 2),
            "latency_ms_p99": round(self.percentile(0.99) * 1000, 2),
            "latency_ms_max": round(max(self.latencies) * 1000, 2) if self.latencies else None,
            "latency_ms_mean": round(statistics.fmean(self.latencies) * 1000, 2)
            if self.latencies
            else None,
            "server_cpu_seconds": round(self.server_cpu, 3),
            "server_cpu_share": round(self.server_cpu / self.seconds, 2) if self.seconds else None,
            "server_cpu_ms_per_1000_events": round(self.server_cpu / self.events * 1e6, 1),
            "failures": self.failures[:5],
        }


def post_all(
    url: str,
    key: str,
    bodies: list[bytes],
    threads: int,
    check,
    name: str,
    events: int,
    server_pid: int,
) -> Run:
    """POST every body from ``threads`` threads (one Session each); time it all."""
    run = Run(name=name, events=events, requests=len(bodies))
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    local = threading.local()
    lock = threading.Lock()
    start_line = threading.Barrier(threads + 1)

    def session() -> requests.Session:
        if not hasattr(local, "session"):
            local.session = requests.Session()
            local.session.headers.update(headers)
        return local.session

    def send(body: bytes) -> None:
        began = time.perf_counter()
        answer = session().post(url, data=body, timeout=120)
        elapsed = time.perf_counter() - began
        problem = check(answer)
        with lock:
            run.latencies.append(elapsed)
            if problem:
                run.failures.append(problem)

    def warm(_: int) -> None:
        session().get(url.rsplit("/api/", 1)[0] + "/health", timeout=10)
        start_line.wait()

    with ThreadPoolExecutor(max_workers=threads) as pool:
        # Open every thread's connection first, then start together.
        warmers = [pool.submit(warm, n) for n in range(threads)]
        start_line.wait()
        for warmer in warmers:
            warmer.result()
        cpu_before = cpu_seconds(server_pid)
        began = time.perf_counter()
        list(pool.map(send, bodies))
        run.seconds = time.perf_counter() - began
        run.server_cpu = cpu_seconds(server_pid) - cpu_before
    return run


def configure_alerts(server_url: str, project_id: str, key: str) -> None:
    """An endpoint for every alert type, spend limits, a threshold per user."""
    headers = {"Authorization": f"Bearer {key}"}

    def call(method: str, path: str, body: dict) -> None:
        body = {"project_id": project_id, **body}
        answer = requests.request(method, server_url + path, json=body, headers=headers, timeout=30)
        answer.raise_for_status()

    types = ["meter.threshold_crossed", "project.spend_exceeded", "billing_record.created"]
    call("POST", "/api/webhooks", {"url": "http://127.0.0.1:9/hooks", "event_types": types})
    call("PUT", "/api/alerts", {"daily_limit": "1000000000", "monthly_limit": "1000000000"})
    for number in range(100):
        call("PUT", "/api/meter", {"user_id": f"user-{number}", "threshold_amount": "1000000000"})


def check_batch(answer: requests.Response) -> str | None:
    if answer.status_code != 200:
        return f"{answer.status_code} {answer.text[:200]}"
    body = answer.json()
    if body["accepted"] != BATCH_SIZE or body["duplicates"] or body["rejected"]:
        return f"batch not fully accepted: {json.dumps(body)[:200]}"
    return None


def check_single(answer: requests.Response) -> str | None:
    if answer.status_code != 201:
        return f"{answer.status_code} {answer.text[:200]}"
    if answer.json().get("duplicate"):
        return "unexpected duplicate"
    return None


def verify(server_url: str, key: str, project_id: str, count: int, total: Decimal) -> list[str]:
    """The ledger must hold exactly ``count`` events costing exactly ``total``."""
    answer = requests.get(
        f"{server_url}/api/meter/stats",
        params={"project_id": project_id, "timeframe": "all"},
        headers={"Authorization": f"Bearer {key}"},
        timeout=60,
    )
    answer.raise_for_status()
    stats = answer.json()
    problems = []
    if stats.get("total_events") != count:
        problems.append(f"{project_id}: {stats.get('total_events')} events stored, sent {count}")
    if Decimal(str(stats["total_cost"])) != total:
        problems.append(f"{project_id}: total_cost {stats['total_cost']}, sent {total}")
    return problems


def cpu_idle_share(seconds: float = 1.0) -> float:
    """The share of all cores' time spent idle over ``seconds`` (Linux /proc/stat), or NaN."""

    def sample() -> tuple[int, int]:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        return sum(fields), fields[3]

    try:
        total_before, idle_before = sample()
        time.sleep(seconds)
        total_after, idle_after = sample()
    except (OSError, ValueError, IndexError):
        return float("nan")
    return (idle_after - idle_before) / max(1, total_after - total_before)


def machine() -> dict:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "cpu_idle_before": round(cpu_idle_share(), 2),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "platform": platform.platform(),
    }


def stages(batches: int = 20) -> int:
    """Where a 1,000-event batch's server time goes, measured in this process.

    The steps ``POST /api/meter/events/batch`` takes, each timed alone (median
    over ``batches`` batches), then the ledger write profiled with cProfile.
    """
    import cProfile
    import pstats

    from agentmeter.core import jsonio as _json
    from agentmeter.ledger import Ledger
    from agentmeter.ledger.api import ADMIN, LedgerAPI, parse_wire_event
    from agentmeter.ledger.events import event_row

    bodies = [
        json.dumps({"events": make_events(BATCH_SIZE, "p", n * BATCH_SIZE)[0]}).encode()
        for n in range(batches)
    ]

    def median_ms(step) -> float:
        times = []
        for body in bodies:
            began = time.perf_counter()
            step(body)
            times.append(time.perf_counter() - began)
        return statistics.median(times) * 1000

    parsed = {body: _json.loads(body) for body in bodies}
    events = {  # parse_wire_event gives (event, its metadata as stored)
        body: [parse_wire_event(item)[0] for item in parsed[body]["events"]] for body in bodies
    }
    rows = [("JSON parse (exact decimals)", median_ms(_json.loads))]
    rows.append(
        (
            "validate 1,000 events (parse_wire_event)",
            median_ms(lambda body: [parse_wire_event(item) for item in parsed[body]["events"]]),
        )
    )
    rows.append(
        ("build 1,000 rows (event_row)", median_ms(lambda b: [event_row(e, 0) for e in events[b]]))
    )
    with tempfile.TemporaryDirectory() as directory:
        for synchronous in ("FULL", "NORMAL"):
            ledger = Ledger.open(f"sqlite:///{directory}/{synchronous}.db", synchronous=synchronous)
            rows.append(
                (
                    f"ledger.record_events, synchronous={synchronous}",
                    median_ms(lambda body, ledger=ledger: ledger.record_events(events[body])),
                )
            )
            ledger.close()
        ledger = Ledger.open(f"sqlite:///{directory}/api.db")
        ledger.ensure_project("p", "p")  # an admin's events need their project to exist
        api = LedgerAPI(ledger)
        fresh = [
            _json.loads(json.dumps({"events": make_events(BATCH_SIZE, "p", 10**7 + n)[0]}))
            for n in range(0, batches * BATCH_SIZE, BATCH_SIZE)
        ]
        position = iter(range(batches))
        rows.append(
            (
                "whole LedgerAPI.record_batch (all of the above)",
                median_ms(lambda _: api.record_batch(ADMIN, fresh[next(position)])),
            )
        )
        profiler = cProfile.Profile()
        ledger_p = Ledger.open(f"sqlite:///{directory}/profile.db")
        for body in bodies:
            profiler.runcall(ledger_p.record_events, events[body])
        ledger.close()
        ledger_p.close()
    print(f"one {BATCH_SIZE:,}-event batch, in process (median of {batches}):")
    for name, milliseconds in rows:
        print(f"  {name:52} {milliseconds:7.1f} ms")
    print("\nledger.record_events under cProfile (cumulative, all batches):")
    stats = pstats.Stats(profiler)
    stats.sort_stats("cumulative").print_stats(r"agentmeter|do_execute|do_commit", 25)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch-events", type=int, default=50_000)
    parser.add_argument("--single-events", type=int, default=2_000)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--keep", action="store_true", help="keep the ledger directory")
    parser.add_argument("--alerts", action="store_true", help="configure alerts first")
    parser.add_argument(
        "--stages",
        action="store_true",
        help="no server: time each step of storing a batch in this process, then cProfile it",
    )
    options = parser.parse_args(argv)
    if options.stages:
        return stages()
    if options.batch_events % BATCH_SIZE:
        parser.error(f"--batch-events must be a multiple of {BATCH_SIZE}")

    directory = Path(tempfile.mkdtemp(prefix="agentmeter-bench-"))
    database = directory / "ledger.db"
    results: dict = {"machine": machine(), "threads": options.threads}
    problems: list[str] = []
    with LiveServer(f"sqlite:///{database}", log_path=directory / "server.log") as server:
        admin = {"Authorization": f"Bearer {server.admin_key}"}
        keys = {}
        for project_id in ("bench-batch", "bench-single"):
            answer = requests.post(
                f"{server.url}/projects",
                json={"name": project_id, "id": project_id},
                headers=admin,
                timeout=30,
            )
            answer.raise_for_status()
            keys[project_id] = answer.json()["api_key"]
            if options.alerts:
                configure_alerts(server.url, project_id, keys[project_id])
        results["alerts"] = options.alerts

        # (a) batches of 1,000
        events, batch_total = make_events(options.batch_events, "bench-batch", 0)
        bodies = [
            json.dumps({"events": events[start : start + BATCH_SIZE]}).encode()
            for start in range(0, len(events), BATCH_SIZE)
        ]
        del events
        batch = post_all(
            f"{server.url}/api/meter/events/batch",
            keys["bench-batch"],
            bodies,
            options.threads,
            check_batch,
            "batch (1,000 events per request)",
            options.batch_events,
            server.process.pid,
        )
        problems += batch.failures[:5]
        problems += verify(
            server.url, keys["bench-batch"], "bench-batch", options.batch_events, batch_total
        )

        # (b) one event per request
        events, single_total = make_events(options.single_events, "bench-single", 10**6)
        bodies = [json.dumps(event).encode() for event in events]
        single = post_all(
            f"{server.url}/api/meter/event",
            keys["bench-single"],
            bodies,
            options.threads,
            check_single,
            "single (1 event per request)",
            options.single_events,
            server.process.pid,
        )
        problems += single.failures[:5]
        problems += verify(
            server.url, keys["bench-single"], "bench-single", options.single_events, single_total
        )

    results["runs"] = [batch.summary(), single.summary()]
    results["verified"] = not problems
    results["problems"] = problems
    results["database_bytes"] = sum(
        path.stat().st_size for path in directory.glob("ledger.db*") if path.exists()
    )
    if options.keep:
        print(f"ledger and server log kept in {directory}", file=sys.stderr)
    else:
        for path in directory.iterdir():
            path.unlink()
        directory.rmdir()

    if options.json:
        print(json.dumps(results, indent=2))
    else:
        info = results["machine"]
        print(f"agentmeter serve on SQLite: {info['cpu']}, Python {info['python']}, ", end="")
        print(f"SQLite {info['sqlite']}, {options.threads} client threads")
        idle = info["cpu_idle_before"]
        if idle < 0.9:
            print(f"warning: the CPU was only {idle:.0%} idle before the run: figures are low")
        print(
            f"{'run':36} {'events':>7} {'requests':>8} {'seconds':>8} "
            f"{'events/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'server CPU':>10}"
        )
        for row in results["runs"]:
            print(
                f"{row['name']:36} {row['events']:>7} {row['requests']:>8} {row['seconds']:>8.2f} "
                f"{row['events_per_second']:>9,} {row['latency_ms_p50']:>8.1f} "
                f"{row['latency_ms_p99']:>8.1f} {row['server_cpu_share']:>9.0%}"
            )
        for row in results["runs"]:
            print(
                f"server CPU per 1,000 events, {row['name'].split(' ')[0]}: "
                f"{row['server_cpu_ms_per_1000_events']:.0f} ms"
            )
        verdict = "exact" if not problems else "MISMATCH"
        print(f"ledger check (count and Decimal total per project): {verdict}")
        target = "met" if batch.events_per_second >= TARGET_BATCH_EVENTS_PER_S else "NOT met"
        print(f"target >= {TARGET_BATCH_EVENTS_PER_S:,} events/s through batches: {target}")
        for problem in problems:
            print(f"  problem: {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
