"""How fast ``agentmeter import`` loads a CSV export into ``agentmeter serve``.

Steps (all in a temporary directory):

1. ``--events`` events (default 100,000) of all three payment types, with
   token classes, metadata and prices binary floats cannot hold, are recorded
   in an embedded ledger file and exported with the real CLI:
   ``agentmeter events --all --format csv`` (so the file is exactly what the
   exporter writes).
2. A fresh ``agentmeter serve`` on a temp SQLite file
   (``agentmeter.testing.LiveServer``, one uvicorn worker, the ledger's
   defaults) gets two projects.
3. Baseline: the same events, already wire dicts in memory, sent by one
   thread with ``client.send_batch`` (batches of 1,000) into the first
   project: the raw batch endpoint's throughput, with no file to read.
4. ``agentmeter import events.csv --into-project <second>`` runs as a
   subprocess, as a user runs it; its wall time (Python start included) and
   the rate it prints are recorded. Then the same import again: every event
   must come back as a duplicate, and the project's stats must not move.

The second project's ``stats`` must equal the source ledger's (event count,
tokens, exact Decimal cost), or the script exits 1.

    python benchmarks/import_events.py                  # the figures in docs/benchmarks.md
    python benchmarks/import_events.py --events 20000   # quicker
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import resource
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from agentmeter import AgentMeterClient
from agentmeter.testing import LiveServer

TARGET_EVENTS_PER_S = 10_000
START = datetime(2025, 1, 1, tzinfo=timezone.utc)
USERS = [f"user-{index:03d}" for index in range(100)]
AGENTS = [f"agent-{index}" for index in range(5)]


def make_events(count: int, project_id: str) -> list[dict[str, Any]]:
    """Wire dicts: a third of each payment type, microsecond times, 8-place prices."""
    events: list[dict[str, Any]] = []
    for index in range(count):
        common = {
            "id": f"bench-{index:07d}",
            "project_id": project_id,
            "agent_id": AGENTS[index % 5],
            "user_id": USERS[index % 100],
            "timestamp": (START + timedelta(seconds=index, microseconds=index % 997)).isoformat(),
            "metadata": {"run": "import", "n": index % 7},
        }
        kind = index % 3
        if kind == 0:
            events.append(
                {**common, "payment_type": "api_request_pay", "api_calls": 1 + index % 4,
                 "unit_price": "0.0025"}
            )  # fmt: skip
        elif kind == 1:
            events.append(
                {**common, "payment_type": "token_based_pay", "tokens_in": 1000 + index % 500,
                 "tokens_out": 200 + index % 50, "input_token_price": "0.0000025",
                 "output_token_price": "0.00001", "model": "gpt-4o",
                 "cached_tokens_in": index % 300, "cached_input_token_price": "0.00000125"}
            )  # fmt: skip
        else:
            events.append(
                {**common, "payment_type": "instant_pay", "amount": "0.30000001",
                 "description": f"charge {index}, \"quoted\""}
            )  # fmt: skip
    return events


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def process_cpu(pid: int) -> float:
    """User + system seconds of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cli(*args: str, check: bool = True) -> tuple[str, float]:
    """Run ``agentmeter ARGS`` as a subprocess; its stdout and wall time."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "agentmeter.cli", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "AGENTMETER_DEBUG": "1"},
    )
    seconds = time.perf_counter() - started
    if check and done.returncode != 0:
        sys.exit(f"agentmeter {args[0]} failed ({done.returncode}): {done.stderr}{done.stdout}")
    return done.stdout, seconds


def summary_counts(output: str) -> dict[str, int]:
    return {
        label: int(value.replace(",", ""))
        for label, value in re.findall(r"(accepted|duplicates|rejected):\s+([\d,]+)", output)
    }


def stats_of(client: AgentMeterClient, project_id: str) -> tuple[Any, ...]:
    stats = client.get_meter_stats(project_id=project_id, timeframe="all")
    events = len(client.get_events(project_id=project_id, limit=1))  # one page: cheap
    return (stats.total_api_calls, stats.total_tokens_in, stats.total_tokens_out,
            stats.total_cost, events)  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--concurrency", type=int, default=2)
    options = parser.parse_args()
    count = options.events
    with tempfile.TemporaryDirectory(prefix="am-import-") as folder:
        directory = Path(folder)
        source_url = f"sqlite:///{directory / 'source.db'}"
        events = make_events(count, "source")
        with AgentMeterClient(base_url=source_url, project_id="source") as source:
            for start in range(0, count, 1000):
                source.send_batch(events[start : start + 1000])
            expected = stats_of(source, "source")
        csv_path = directory / "events.csv"
        _, export_seconds = cli(
            "events", "--db", source_url, "--project-id", "source", "--all",
            "--format", "csv", "-o", str(csv_path),
        )  # fmt: skip
        print(f"exported {count:,} events to CSV in {export_seconds:.1f} s "
              f"({csv_path.stat().st_size / 1e6:.1f} MB)")  # fmt: skip

        with LiveServer(f"sqlite:///{directory / 'served.db'}") as server:
            admin = server.client(retry_attempts=0)
            baseline_project = admin.create_project("baseline", project_id="baseline")
            admin.create_project("imported", project_id="imported")
            wire = [{**event, "project_id": baseline_project.id} for event in events]
            started = time.perf_counter()
            for start in range(0, count, 1000):
                admin.send_batch(wire[start : start + 1000])
            baseline = count / (time.perf_counter() - started)

            flags = (
                *("--base-url", server.url, "--api-key", server.admin_key),
                *("--into-project", "imported", "--concurrency", str(options.concurrency)),
            )
            assert server.process is not None
            server_before, client_before = process_cpu(server.process.pid), children_cpu()
            first, first_seconds = cli("import", str(csv_path), *flags)
            server_cpu = process_cpu(server.process.pid) - server_before
            client_cpu = children_cpu() - client_before
            after_first = stats_of(admin, "imported")
            second, second_seconds = cli("import", str(csv_path), *flags)
            after_second = stats_of(admin, "imported")
            admin.close()

    rate = count / first_seconds
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    )
    print(f"baseline, client.send_batch from memory, 1 thread: {baseline:,.0f} events/s")
    print(f"first import:  {count / first_seconds:,.0f} events/s wall ({first_seconds:.2f} s), "
          f"{summary_counts(first)}")  # fmt: skip
    print(f"   as printed: {first.splitlines()[0]}")
    print(f"   CPU per 1,000 events: server {server_cpu / count * 1e6:.0f} ms, "
          f"import command {client_cpu / count * 1e6:.0f} ms (Python start included)")  # fmt: skip
    print(f"second import: {count / second_seconds:,.0f} events/s wall ({second_seconds:.2f} s), "
          f"{summary_counts(second)}")  # fmt: skip
    ok = (
        summary_counts(first) == {"accepted": count, "duplicates": 0, "rejected": 0}
        and summary_counts(second) == {"accepted": 0, "duplicates": count, "rejected": 0}
        and after_first == after_second == expected
    )
    print(f"stats equal to the source's and unchanged by the second import: {ok}")
    verdict = "met" if rate >= TARGET_EVENTS_PER_S else "MISSED"
    print(f"target {TARGET_EVENTS_PER_S:,} events/s: {verdict}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
