"""What one request costs ``agentmeter serve``, next to a bare FastAPI app.

Starts ``agentmeter serve`` (``agentmeter.testing.LiveServer``: a subprocess,
one uvicorn worker, a fresh SQLite file in a temporary directory, WAL and
``synchronous=FULL``) and a bare FastAPI app under the same uvicorn settings
(one worker, the same event loop and HTTP implementation, log level
``warning``, no server header). Then, for each kind of request, it sends
``--requests`` sequential requests over one keep-alive connection to each
server in turn, and reports the server process's CPU per request (user +
system, ``/proc/<pid>/stat``) and the client's p50/p99 latency, with the
ratio of each to the bare app's matching request:

====================================  =========================================
agentmeter serve                      the bare app (``--bare-app``)
====================================  =========================================
``GET /health``                       ``GET /dict`` (an ``async def`` returning a dict)
``GET /api/meter/usage``              ``GET /dict``
``POST /api/meter/event``             ``POST /echo`` (a small dict body, parsed as a dict)
``GET /api/meter/stats``              ``GET /dict``
``GET /api/meter/events?limit=100``   ``GET /list`` (100 event-shaped dicts)
====================================  =========================================

Every event is like the SDK's (its own UUIDv7 id, an RFC 3339 time, a price
binary floats cannot hold); bodies are serialized before the clock starts.
The whole comparison is repeated ``--rounds`` times, kinds interleaved, and
the medians are shown. A write commits once per request with ``synchronous=FULL``
(an fsync): its own cost is shown apart, as a bare ``sqlite3`` insert and
commit with the same settings in the same temporary directory. And beside
the event, the least a durable ledger can do per event: the bare app's
``POST /store`` (``request_floor.py``) stores the event row in a table with
the ledger's schema and raises the user's meter, in one such commit, and
nothing else; the last line says whether agentmeter's event and that least
write are within the target (1.5 x the bare ``POST`` + the bare commit).

    python benchmarks/server_requests.py                 # the figures in docs/benchmarks.md
    python benchmarks/server_requests.py --requests 300  # quicker
    python benchmarks/server_requests.py --json          # one JSON object instead of tables
    python benchmarks/server_requests.py --profile DIR   # also a py-spy profile per kind

Exits 1 when a request fails, or the ledger (or the least write's table) does
not hold exactly the events sent.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

from request_floor import add_store_route, create_floor_ledger, stored_count

from agentmeter.core.ids import new_event_id
from agentmeter.testing import LiveServer, free_port

USERS = 100
PRICE = "0.0025"  # not a binary fraction: a float on the way would show in the total
WARM = 20  # untimed requests before each timed series
TARGETS = {"health": 1.1, "usage": 1.5, "event": 1.5}


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# ------------------------------------------------------------ the bare app


def bare_app(floor_ledger: Path | None = None) -> Any:
    """The floor: FastAPI doing nothing but routing, parsing and rendering
    (and, given a ledger file, ``POST /store``: see ``request_floor.py``)."""
    from fastapi import FastAPI

    app = FastAPI()
    if floor_ledger is not None:
        add_store_route(app, floor_ledger)
    listing = [_event_body("proj_bench", n) | {"cost": "0.0025"} for n in range(100)]

    @app.get("/dict")
    async def get_dict() -> dict[str, Any]:
        return {"status": "healthy", "version": "0.0.0"}

    @app.post("/echo", status_code=201)
    async def post_dict(body: dict[str, Any]) -> dict[str, Any]:
        return {"success": True, "event_id": body.get("id"), "cost": "0.0025"}

    @app.get("/list")
    async def get_list() -> list[dict[str, Any]]:
        return listing

    return app


def serve_bare_app(port: int, floor_ledger: Path | None) -> None:
    """Run the bare app as ``agentmeter serve`` runs its own (server/__init__.py)."""
    import uvicorn

    config = uvicorn.Config(
        bare_app(floor_ledger), host="127.0.0.1", port=port, log_level="warning",
        server_header=False,
    )  # fmt: skip
    uvicorn.Server(config).run()


class BareServer:
    """The bare app in a subprocess (this script with ``--bare-app``)."""

    def __init__(self, floor_ledger: Path) -> None:
        self.port = free_port()
        self.floor_ledger = floor_ledger
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> BareServer:
        command = [sys.executable, __file__, "--bare-app", str(self.port)]
        command += ["--floor-ledger", str(self.floor_ledger)]
        self.process = subprocess.Popen(command)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("the bare app did not start")

    def __exit__(self, *_: object) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)


# ------------------------------------------------------------ requests


def _event_body(project_id: str, number: int) -> dict[str, Any]:
    return {
        "id": new_event_id(),
        "timestamp": datetime.now(timezone.utc).isoformat().replace("+00:00", "Z"),
        "project_id": project_id,
        "agent_id": "agent-1",
        "user_id": f"user-{number % USERS}",
        "payment_type": "api_request_pay",
        "api_calls": 1,
        "unit_price": PRICE,
        "metadata": {"route": "/chat"},
    }


@dataclass
class Request:
    method: str
    path: str
    body: bytes | None = None
    expect: int = 200


@dataclass
class Kind:
    """One kind of request: how to make the n-th for agentmeter and for the bare app."""

    name: str
    label: str
    ours: Callable[[int], Request]
    bare: Callable[[int], Request]
    floor: Callable[[int], Request] | None = None  # the least durable write (request_floor.py)


def kinds(project_id: str) -> list[Kind]:
    bodies: dict[int, bytes] = {}

    def event(n: int) -> Request:
        body = bodies.setdefault(n, json.dumps(_event_body(project_id, n)).encode())
        return Request("POST", "/api/meter/event", body, 201)

    def echo(n: int) -> Request:
        return Request("POST", "/echo", json.dumps(_event_body(project_id, n)).encode(), 201)

    def store(n: int) -> Request:
        return Request("POST", "/store", json.dumps(_event_body(project_id, n)).encode(), 201)

    dict_get = lambda _n: Request("GET", "/dict")  # noqa: E731
    return [
        Kind("health", "`GET /health`", lambda _n: Request("GET", "/health"), dict_get),
        Kind("event", "`POST /api/meter/event`", event, echo, store),
        Kind(
            "usage",
            "`GET /api/meter/usage`",
            lambda n: Request("GET", f"/api/meter/usage?user_id=user-{n % USERS}"),
            dict_get,
        ),
        Kind(
            "stats",
            "`GET /api/meter/stats`",
            lambda _n: Request("GET", "/api/meter/stats"),
            dict_get,
        ),
        Kind(
            "events",
            "`GET /api/meter/events?limit=100`",
            lambda _n: Request("GET", "/api/meter/events?limit=100"),
            lambda _n: Request("GET", "/list"),
        ),
    ]


@dataclass
class Timing:
    cpu_ms: float  # server CPU per request
    p50_ms: float
    p99_ms: float


def send_all(port: int, pid: int, all_requests: list[Request], headers: dict[str, str]) -> Timing:
    """Send ``all_requests`` one after another over one keep-alive connection;
    the first :data:`WARM` warm up (caches, first-use imports), the rest are timed."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    connection.connect()
    connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    for request in all_requests[:WARM]:
        _send(connection, request, headers)
    requests = all_requests[WARM:]
    latencies: list[float] = []
    cpu_before = cpu_seconds(pid)
    for request in requests:
        began = time.perf_counter()
        _send(connection, request, headers)
        latencies.append(time.perf_counter() - began)
    cpu = cpu_seconds(pid) - cpu_before
    connection.close()
    latencies.sort()
    return Timing(
        cpu / len(requests) * 1000,
        latencies[len(latencies) // 2] * 1000,
        latencies[min(len(latencies) - 1, round(0.99 * (len(latencies) - 1)))] * 1000,
    )


def _send(
    connection: http.client.HTTPConnection, request: Request, headers: dict[str, str]
) -> None:
    sent = dict(headers)
    if request.body is not None:
        sent["Content-Type"] = "application/json"
    connection.request(request.method, request.path, body=request.body, headers=sent)
    answer = connection.getresponse()
    data = answer.read()
    if answer.status != request.expect:
        raise SystemExit(f"{request.method} {request.path}: {answer.status} {data[:300]!r}")


# ------------------------------------------------------------ the commit's own cost


def commit_cost(directory: Path, count: int) -> Timing:
    """A bare sqlite3 insert + commit per row, WAL and synchronous=FULL, in ``directory``."""
    database = sqlite3.connect(directory / "commit.db", isolation_level=None)
    database.execute("PRAGMA journal_mode=WAL")
    database.execute("PRAGMA synchronous=FULL")
    database.execute("CREATE TABLE t (id TEXT PRIMARY KEY, cost TEXT)")
    latencies: list[float] = []
    cpu_before = time.process_time()
    for n in range(count):
        began = time.perf_counter()
        database.execute("BEGIN IMMEDIATE")
        database.execute("INSERT INTO t VALUES (?, ?)", (new_event_id(), str(n)))
        database.execute("COMMIT")
        latencies.append(time.perf_counter() - began)
    cpu = time.process_time() - cpu_before
    database.close()
    latencies.sort()
    return Timing(
        cpu / count * 1000,
        latencies[count // 2] * 1000,
        latencies[round(0.99 * (count - 1))] * 1000,
    )


# ------------------------------------------------------------ the run


def create_project(server: LiveServer) -> tuple[str, str]:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    body = json.dumps({"name": "bench", "id": "proj_bench"})
    headers = {"Authorization": f"Bearer {server.admin_key}", "Content-Type": "application/json"}
    connection.request("POST", "/projects", body=body, headers=headers)
    answer = connection.getresponse()
    created = json.loads(answer.read())
    connection.close()
    return created["id"], created["api_key"]


def check_stored(server: LiveServer, key: str, events: int) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    connection.request(
        "GET", "/api/meter/stats?timeframe=all", headers={"Authorization": f"Bearer {key}"}
    )
    stats = json.loads(connection.getresponse().read())
    connection.close()
    expected = events * Decimal(PRICE)
    if stats["total_events"] != events or Decimal(stats["total_cost"]) != expected:
        raise SystemExit(f"the ledger holds {stats}, expected {events} events costing {expected}")


def profile(pid: int, path: Path) -> subprocess.Popen[bytes]:
    """py-spy sampling ``pid`` until interrupted; collapsed stacks (one line each) to ``path``."""
    command = [
        "py-spy",
        "record",
        "--pid",
        str(pid),
        "-o",
        str(path),
        "-f",
        "raw",
        "-r",
        "500",
        "--gil",
    ]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def run(count: int, rounds: int, profile_dir: Path | None) -> dict[str, Any]:
    results: dict[str, dict[str, list[Timing]]] = {}
    events_sent = 0
    with ExitStack() as stack:
        directory = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        server = stack.enter_context(LiveServer(f"sqlite:///{directory / 'ledger.db'}"))
        floor_ledger = directory / "floor.db"
        create_floor_ledger(floor_ledger)
        bare = stack.enter_context(BareServer(floor_ledger))
        assert server.process is not None
        assert bare.process is not None
        project_id, key = create_project(server)
        ours_headers = {"Authorization": f"Bearer {key}"}
        for round_number in range(rounds):
            for kind in kinds(project_id):
                base = round_number * (count + WARM)
                ours = [kind.ours(base + n) for n in range(count + WARM)]
                theirs = [kind.bare(base + n) for n in range(count + WARM)]
                spy = None
                if profile_dir is not None and round_number == rounds - 1:
                    spy = profile(server.process.pid, profile_dir / f"{kind.name}.txt")
                    time.sleep(1)
                timing = send_all(server.port, server.process.pid, ours, ours_headers)
                if spy is not None:
                    spy.send_signal(signal.SIGINT)
                    spy.wait()
                bare_headers = {"Authorization": "Bearer x"}
                sides = results.setdefault(kind.name, {"ours": [], "bare": []})
                sides["ours"].append(timing)
                sides["bare"].append(send_all(bare.port, bare.process.pid, theirs, bare_headers))
                if kind.floor is not None:
                    least = [kind.floor(base + n) for n in range(count + WARM)]
                    timing = send_all(bare.port, bare.process.pid, least, bare_headers)
                    sides.setdefault("floor", []).append(timing)
                if kind.name == "event":
                    events_sent += count + WARM
        check_stored(server, key, events_sent)
        if stored_count(floor_ledger) != events_sent:
            raise SystemExit(f"the floor stored {stored_count(floor_ledger)} of {events_sent}")
        commit = commit_cost(directory, count)
    labels = {kind.name: kind.label for kind in kinds("p")}
    report: dict[str, Any] = {
        "requests_per_kind": count,
        "rounds": rounds,
        "kinds": {
            name: {"label": labels[name], **_medians(pair)} for name, pair in results.items()
        },
        "commit": vars(commit),
    }
    report["event_target"] = event_target(report)
    return report


def _medians(pair: dict[str, list[Timing]]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for side, timings in pair.items():
        summary[side] = {
            field: round(statistics.median(getattr(t, field) for t in timings), 3)
            for field in ("cpu_ms", "p50_ms", "p99_ms")
        }
    for side in summary:
        summary[side]["cpu_ratio"] = round(summary[side]["cpu_ms"] / summary["bare"]["cpu_ms"], 2)
    summary["cpu_ratio"] = summary["ours"]["cpu_ratio"]
    summary["p50_ratio"] = round(summary["ours"]["p50_ms"] / summary["bare"]["p50_ms"], 2)
    return summary


def event_target(report: dict[str, Any]) -> dict[str, Any]:
    """The single event's target in this run: 1.5x the bare POST's CPU plus a bare
    commit's; agentmeter's and the least durable write's CPU beside it."""
    event = report["kinds"]["event"]
    target = TARGETS["event"] * event["bare"]["cpu_ms"] + report["commit"]["cpu_ms"]
    return {
        "target_cpu_ms": round(target, 3),
        "ours_cpu_ms": event["ours"]["cpu_ms"],
        "floor_cpu_ms": event["floor"]["cpu_ms"],
        "ours_met": event["ours"]["cpu_ms"] <= target,
        "floor_met": event["floor"]["cpu_ms"] <= target,
    }


def print_tables(report: dict[str, Any]) -> None:
    count, rounds = report["requests_per_kind"], report["rounds"]
    print(f"{count} sequential requests per kind over one connection, median of {rounds} rounds\n")
    print("| request | server CPU | bare app | ratio | p50 | bare p50 | p99 | bare p99 | target |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, kind in report["kinds"].items():
        ours, bare = kind["ours"], kind["bare"]
        target = f"≤ {TARGETS[name]}x" if name in TARGETS else ""
        print(
            f"| {kind['label']} | {ours['cpu_ms']:.2f} ms | {bare['cpu_ms']:.2f} ms | "
            f"{kind['cpu_ratio']:.2f}x | {ours['p50_ms']:.2f} ms | {bare['p50_ms']:.2f} ms | "
            f"{ours['p99_ms']:.2f} ms | {bare['p99_ms']:.2f} ms | {target} |"
        )
    commit = report["commit"]
    print(
        f"\nA bare sqlite3 insert + commit (WAL, synchronous=FULL, same disk): "
        f"CPU {commit['cpu_ms']:.3f} ms, p50 {commit['p50_ms']:.3f} ms, "
        f"p99 {commit['p99_ms']:.3f} ms"
    )
    floor, goal = report["kinds"]["event"]["floor"], report["event_target"]
    print(
        f"The least durable write (POST /store: the bare app storing the event row with the "
        f"ledger's indexes and the user's meter, one commit): CPU {floor['cpu_ms']:.2f} ms "
        f"({floor['cpu_ratio']:.2f}x the bare POST), p50 {floor['p50_ms']:.2f} ms, "
        f"p99 {floor['p99_ms']:.2f} ms"
    )
    print(
        f"Event target, 1.5 x the bare POST + the bare commit: {goal['target_cpu_ms']:.2f} ms; "
        f"agentmeter {goal['ours_cpu_ms']:.2f} ms ({_met(goal['ours_met'])}), "
        f"the least durable write {goal['floor_cpu_ms']:.2f} ms ({_met(goal['floor_met'])})"
    )


def _met(met: bool) -> str:
    return "met" if met else "not met"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=1000, help="per kind and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="one JSON object instead of tables")
    parser.add_argument("--profile", type=Path, help="write a py-spy profile per kind here")
    parser.add_argument("--bare-app", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--floor-ledger", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare_app:
        serve_bare_app(args.bare_app, args.floor_ledger)
        return
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    report = run(args.requests, args.rounds, args.profile)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_tables(report)


if __name__ == "__main__":
    main()
