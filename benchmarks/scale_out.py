"""Scale-out: N `agentmeter serve` processes on one database, M client processes.

Each client process pushes its share of events through an AgentMeterTracker
whose transport picks a random server for every attempt (FailoverTransport),
and resends a share of its events with the same ids (as retries would). The
figure is events stored per second, from the first track call to the last
event in the database; then the database must hold each id once and the
exact Decimal total tracked.

    python benchmarks/scale_out.py                  # the three runs below
    python benchmarks/scale_out.py --events 20000   # a quicker look

Runs: 4 servers on PostgreSQL, 1 server on PostgreSQL, 1 server on SQLite;
8 client processes each time. PostgreSQL is a throwaway local cluster with
fsync on (agentmeter.testing.PostgresCluster(fast=False)).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import secrets
import tempfile
import time
from decimal import Decimal
from pathlib import Path

from agentmeter import AgentMeterClient
from agentmeter.testing import LiveServer, PostgresCluster
from agentmeter.tracker import AgentMeterTracker
from agentmeter.transport.failover import FailoverTransport

PRICE = Decimal("0.0007")


def client_process(
    urls: list[str], key: str, project_id: str, count: int, resend_every: int, outbox: str
) -> tuple[int, int, float, float]:
    """Track ``count`` events (+ resends); return (distinct events, resends, start, end)."""
    transport = FailoverTransport(urls, key, timeout=30.0)
    client = AgentMeterClient(transport=transport, project_id=project_id, agent_id="bench")
    tracker = AgentMeterTracker(
        client, outbox=outbox, batch_size=1000, flush_interval=0.1, max_queue_size=50_000
    )
    resends = 0
    started = time.time()  # after the process has started and imported everything
    for index in range(count):
        event_id = tracker.track_api_request_pay(1, PRICE, user_id=f"user{index % 50}")
        if index % resend_every == 0:  # the same event again: must not be billed twice
            tracker.track_api_request_pay(1, PRICE, user_id=f"user{index % 50}", event_id=event_id)
            resends += 1
    if not tracker.flush(timeout=600):
        raise SystemExit("flush timed out")
    finished = time.time()
    tracker.close()
    return count, resends, started, finished


def run(db_url: str, servers: int, clients: int, events: int, workdir: Path) -> dict[str, object]:
    admin_key = f"am_admin_{secrets.token_urlsafe(24)}"
    started_servers = [LiveServer(db_url, admin_key=admin_key).start() for _ in range(servers)]
    try:
        project = started_servers[0].client().create_project(f"bench-{time.time_ns()}")
        assert project.api_key is not None
        key = project.api_key.get_secret_value()
        urls = [server.url for server in started_servers]
        share = events // clients
        jobs = [
            (urls, key, project.id, share, 20, str(workdir / f"outbox-{n}.db"))
            for n in range(clients)
        ]
        with mp.get_context("spawn").Pool(clients) as pool:
            results = pool.starmap(client_process, jobs)
        # From the first track call of any client to the last flush: process
        # start-up (interpreters, imports) is not the servers' throughput.
        elapsed = max(r[3] for r in results) - min(r[2] for r in results)
        reader = started_servers[0].client(key, project_id=project.id)
        stats = reader.get_meter_stats(timeframe="all")
        tracked = sum(result[0] for result in results)
        resent = sum(result[1] for result in results)
        assert stats.total_events == tracked, (stats.total_events, tracked)
        assert stats.total_cost == PRICE * tracked, (stats.total_cost, PRICE * tracked)
        return {
            "servers": servers,
            "database": db_url.split(":", 1)[0].split("+")[0],
            "events": tracked,
            "resends": resent,
            "seconds": round(elapsed, 2),
            "events_per_s": round(tracked / elapsed),
        }
    finally:
        for server in started_servers:
            server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--clients", type=int, default=8)
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory() as temp, PostgresCluster(fast=False) as cluster:
        workdir = Path(temp)
        runs = [
            (cluster.create_database("four"), 4),
            (cluster.create_database("one"), 1),
            (f"sqlite:///{workdir}/ledger.db", 1),
        ]
        print(
            f"{'servers':>7} {'database':>10} {'events':>8} {'resends':>7} "
            f"{'seconds':>8} {'events/s':>9}"
        )
        for db_url, servers in runs:
            result = run(db_url, servers, arguments.clients, arguments.events, workdir)
            print(
                f"{result['servers']:>7} {result['database']:>10} {result['events']:>8} "
                f"{result['resends']:>7} {result['seconds']:>8} {result['events_per_s']:>9}"
            )


if __name__ == "__main__":
    main()
