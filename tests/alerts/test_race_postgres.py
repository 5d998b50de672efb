"""Four servers on one PostgreSQL database, eight threads pushing one user past
their threshold: each share is announced exactly once."""

from __future__ import annotations

import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from agentmeter.testing import LiveServer

from .conftest import Wire
from .receiver import Receiver


def test_four_servers_and_eight_threads_announce_each_crossing_once(
    fast_retries: None, postgres_databases: Any
) -> None:
    url = postgres_databases("alerts_race")
    receiver = Receiver().start()
    servers = [LiveServer(url, admin_key="am_admin_race-0123456789abcdef").start()]
    try:
        admin = Wire(servers[0].url, servers[0].admin_key)
        key = admin.call("POST", "/projects", json={"name": "P", "id": "p"})["api_key"]
        servers += [LiveServer(url, admin_key=servers[0].admin_key).start() for _ in range(3)]
        wires = [Wire(server.url, key) for server in servers]
        wires[0].subscribe(receiver, "meter.threshold_crossed")
        wires[0].set_threshold("hot", "100")

        def push(thread: int) -> None:
            for index in range(40):  # 8 threads x 40 x 0.5 = 160: past 50, 80 and 100
                wires[(thread + index) % 4].charge("hot", "0.5", f"t{thread}-{index}")

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(push, range(8)))
        receiver.wait_for(lambda got: len(got) >= 3, timeout=30)
        time.sleep(2)  # any duplicate would have arrived by now
        shares = Counter(item.event["data"]["share"] for item in receiver.received)
        assert shares == {"50": 1, "80": 1, "100": 1}
        meter = wires[1].call(
            "GET", "/api/meter/usage", params={"project_id": "p", "user_id": "hot"}
        )
        assert meter["current_usage"] == "160.0"
    finally:
        for server in servers:
            server.stop()
        receiver.stop()
