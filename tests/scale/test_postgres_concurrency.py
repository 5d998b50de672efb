"""Correctness when many servers share one PostgreSQL: no duplicate, no lost update."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

from agentmeter import AgentMeterClient
from agentmeter.testing import LiveServer
from agentmeter.tracker import AgentMeterTracker
from agentmeter.transport.failover import FailoverTransport
from agentmeter.transport.retry import RetryPolicy


def _client(server: LiveServer, project: tuple[str, str], **settings) -> AgentMeterClient:
    project_id, key = project
    return server.client(key, project_id=project_id, agent_id="scale", **settings)


def test_the_same_ids_sent_to_four_servers_at_once_are_stored_once(pg_servers, project_key):
    clients = [_client(server, project_key) for server in pg_servers]
    events = [
        clients[0].build_api_request_pay(api_calls=1, unit_price="0.0101", user_id=f"u{i % 7}")
        for i in range(400)
    ]
    start = threading.Barrier(len(clients))

    def send(client: AgentMeterClient):
        start.wait()
        return client.record_events(events)

    with ThreadPoolExecutor(len(clients)) as pool:
        results = list(pool.map(send, clients))

    assert sum(result.accepted for result in results) == len(events)
    assert sum(result.duplicates for result in results) == len(events) * (len(clients) - 1)
    stats = clients[1].get_meter_stats(timeframe="all")
    assert stats.total_events == len(events)
    assert stats.total_cost == Decimal("0.0101") * len(events)
    meters = [clients[2].get_user_meter(f"u{i}").current_usage for i in range(7)]
    assert sum(meters) == Decimal("0.0101") * len(events)


def test_eight_writers_on_one_user_meter_lose_no_update(pg_servers, project_key):
    clients = [_client(pg_servers[i % 4], project_key) for i in range(8)]
    increments_each, events_each = 25, 25

    def write(index: int) -> None:
        client = clients[index]
        for n in range(increments_each):
            client.increment_user_meter("0.0001", user_id="shared")
            client.record_instant_pay(f"0.00{index}{n % 10}1", "write", user_id="shared")

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(write, range(8)))

    expected = Decimal("0.0001") * increments_each * 8 + sum(
        Decimal(f"0.00{index}{n % 10}1") for index in range(8) for n in range(events_each)
    )
    meter = clients[0].get_user_meter("shared")
    assert meter.current_usage == expected
    assert clients[3].get_meter_stats(timeframe="all").total_events == events_each * 8


def test_a_server_killed_mid_stream_costs_a_retry_not_an_event(pg_servers, project_key, tmp_path):
    project_id, key = project_key
    transport = FailoverTransport(
        [server.url for server in pg_servers],
        key,
        timeout=2.0,
        retry=RetryPolicy(max_attempts=8, deadline=30.0, initial_wait=0.05, max_wait=0.5),
    )
    client = AgentMeterClient(transport=transport, project_id=project_id, agent_id="scale")
    tracker = AgentMeterTracker(
        client, outbox=tmp_path / "outbox.db", batch_size=50, flush_interval=0.02
    )
    tracked = 0
    for index in range(3000):
        tracker.track_api_request_pay(1, "0.001", user_id=f"u{index % 5}")
        tracked += 1
        if index == 1000:
            pg_servers[1].kill()  # SIGKILL, possibly in the middle of a batch
        if index == 2000:
            pg_servers[2].kill()
    assert tracker.flush(timeout=60)
    tracker.close()

    reader = _client(pg_servers[0], project_key)
    stats = reader.get_meter_stats(timeframe="all")
    assert stats.total_events == tracked
    assert stats.total_cost == Decimal("0.001") * tracked
