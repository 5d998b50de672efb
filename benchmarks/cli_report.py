"""How long ``agentmeter report`` takes over 1,000,000 events in a SQLite ledger.

Seeds ``--events`` events (default 1,000,000) straight into the ``events``
table of a fresh ledger file (sqlite3 ``executemany``, one transaction):
three months (January to March 2025), two agents, five users, all three
payment types, costs with up to 8 decimal places, exactly as the ledger
stores them (decimal text). The exact Decimal total of every cost is kept
while seeding.

Then it runs ``agentmeter report`` as a user does (a subprocess, wall time
from start to exit, Python start-up included) in several shapes, and the
ledger's report query alone (in process, ``client.get_report``). Each is run
``--repeat`` times (default 3); the median is reported. The CSV exports must
add up to the seeded events and their exact total cost, or the script exits 1.

    python benchmarks/cli_report.py                  # the figures in docs/benchmarks.md
    python benchmarks/cli_report.py --events 100000  # quicker
    python benchmarks/cli_report.py --db /tmp/l.db --keep   # keep the ledger to look at
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

from agentmeter import AgentMeterClient
from agentmeter.ledger import Ledger
from agentmeter.pricing import MONEY_CONTEXT, api_request_cost, money_text, token_cost

PROJECT = "proj_bench"
TARGET_SECONDS = 5.0
START = datetime(2025, 1, 1, tzinfo=timezone.utc)
END = datetime(2025, 4, 1, tzinfo=timezone.utc)
AGENTS = ("support-bot", "research-agent")
USERS = ("user-01", "user-02", "user-03", "user-04", "user-05")
UNIT_PRICES = tuple(Decimal(p) for p in ("0.001", "0.0025", "0.1"))
TOKEN_PRICES = {
    "gpt-4o": (Decimal("0.0000025"), Decimal("0.00001")),
    "claude-sonnet": (Decimal("0.000003"), Decimal("0.000015")),
}
AMOUNTS = tuple(Decimal(a) for a in ("0.01", "0.05", "1.10", "0.33333333"))
COLUMNS = (
    "id, project_id, agent_id, user_id, payment_type, event_type, ts, recorded_at, "
    "api_calls, tokens_in, tokens_out, unit_price, input_token_price, output_token_price, "
    "amount, description, total_cost, model, metadata"
)
INSERT = f"INSERT INTO events ({COLUMNS}) VALUES ({', '.join('?' * 19)})"


def micros(moment: datetime) -> int:
    return int(moment.timestamp()) * 1_000_000


def seed(path: Path, count: int) -> Decimal:
    """Write ``count`` events; return their exact total cost."""
    Ledger.open(f"sqlite:///{path}").close()  # the schema, as the ledger makes it
    rng = random.Random(20250101)
    start, span = micros(START), micros(END) - micros(START)
    total = Decimal(0)
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA synchronous=OFF")
    connection.execute("BEGIN")
    rows: list[tuple[object, ...]] = []
    models = list(TOKEN_PRICES)
    for index in range(count):
        ts = start + index * span // count
        agent, user = AGENTS[index % 2], USERS[rng.randrange(5)]
        kind = rng.random()
        common = (f"ev-{index:08d}", PROJECT, agent, user)
        if kind < 0.5:
            model = models[index % 2]
            tokens_in, tokens_out = rng.randrange(50, 4000), rng.randrange(10, 1500)
            price_in, price_out = TOKEN_PRICES[model]
            cost = token_cost(tokens_in, tokens_out, price_in, price_out)
            rows.append(
                (
                    *common,
                    "token_based_pay",
                    "token_usage",
                    ts,
                    ts,
                    0,
                    tokens_in,
                    tokens_out,
                    None,
                    money_text(price_in),
                    money_text(price_out),
                    None,
                    None,
                    money_text(cost),
                    model,
                    json.dumps({"model": model}),
                )
            )
        elif kind < 0.85:
            calls, price = rng.randrange(1, 6), UNIT_PRICES[rng.randrange(3)]
            cost = api_request_cost(calls, price)
            rows.append(
                (
                    *common,
                    "api_request_pay",
                    "api_call",
                    ts,
                    ts,
                    calls,
                    0,
                    0,
                    money_text(price),
                    None,
                    None,
                    None,
                    None,
                    money_text(cost),
                    None,
                    "{}",
                )
            )
        else:
            cost = AMOUNTS[rng.randrange(4)]
            rows.append(
                (
                    *common,
                    "instant_pay",
                    "instant_payment",
                    ts,
                    ts,
                    0,
                    0,
                    0,
                    None,
                    None,
                    None,
                    money_text(cost),
                    "top-up",
                    money_text(cost),
                    None,
                    "{}",
                )
            )
        total = MONEY_CONTEXT.add(total, cost)
        if len(rows) == 50_000:
            connection.executemany(INSERT, rows)
            rows.clear()
    connection.executemany(INSERT, rows)
    connection.execute("COMMIT")
    connection.execute("ANALYZE")
    connection.close()
    return total


@dataclass
class Timing:
    name: str
    runs: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.runs)


def run_cli(args: list[str]) -> float:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTMETER_")}
    began = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "agentmeter.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    elapsed = time.perf_counter() - began
    if done.returncode != 0:
        raise SystemExit(f"agentmeter {' '.join(args)} failed: {done.stderr.strip()}")
    return elapsed


def check_csv(path: Path, count: int, total: Decimal) -> None:
    with path.open(newline="") as stream:
        rows = list(csv.DictReader(stream))
    events = sum(int(row["events"]) for row in rows)
    cost = sum((Decimal(row["cost"]) for row in rows), Decimal(0))
    if events != count or cost != total:
        raise SystemExit(f"{path.name}: {events} events, cost {cost}; expected {count}, {total}")


def machine() -> dict[str, str]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": f"{cpu}, {os.cpu_count()} logical CPUs",
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "os": platform.platform(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--db", type=Path, help="Ledger file (default: a temporary one).")
    parser.add_argument("--keep", action="store_true", help="Keep the ledger file.")
    parser.add_argument("--json", action="store_true", help="One JSON object, not a table.")
    options = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="agentmeter-bench-"))
    path = options.db or folder / "ledger.db"
    url = f"sqlite:///{path}"
    began = time.perf_counter()
    if path.exists():
        raise SystemExit(f"{path} exists; remove it first (the benchmark seeds a fresh ledger)")
    total = seed(path, options.events)
    seeded = time.perf_counter() - began

    base = ["report", "--db", url, "--project-id", PROJECT]
    # (what is measured, its flags, its output file)
    shapes = [
        ("month, csv", "--granularity month --format csv", "m.csv"),
        ("day by user, csv", "--group-by user --format csv", "du.csv"),
        (
            "hour by agent and user, csv",
            "--granularity hour --group-by agent --group-by user --format csv",
            "hau.csv",
        ),
        ("day by user, table", "--group-by user", "du.txt"),
        (
            "month by agent, table (+ a 2nd query for the user summary)",
            "--granularity month --group-by agent",
            "ma.txt",
        ),
        ("day, json", "--format json", "d.json"),
    ]
    timings = []
    for name, flags, target in shapes:
        args = [*base, *flags.split(), "-o", str(folder / target)]
        timings.append(
            Timing(f"agentmeter report: {name}", [run_cli(args) for _ in range(options.repeat)])
        )
    for name in ("m.csv", "du.csv", "hau.csv"):
        check_csv(folder / name, options.events, total)

    with AgentMeterClient(base_url=url, project_id=PROJECT) as client:
        for granularity, groups in (("month", []), ("day", ["user"])):
            runs = []
            for _ in range(options.repeat):
                began = time.perf_counter()
                client.get_report(granularity=granularity, group_by=groups)
                runs.append(time.perf_counter() - began)
            label = f"ledger query alone: {granularity}" + (f" by {groups[0]}" if groups else "")
            timings.append(Timing(label + " (in process)", runs))

    result = {
        "events": options.events,
        "seed_seconds": round(seeded, 1),
        "total_cost": str(total),
        "machine": machine(),
        "timings": {t.name: round(t.median, 2) for t in timings},
        "target_seconds": TARGET_SECONDS,
        "all_under_target": all(t.median < TARGET_SECONDS for t in timings),
    }
    if options.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"{options.events:,} events seeded in {seeded:.1f} s; exact total cost {total}")
        print(f"median of {options.repeat} runs, wall time (subprocess: Python start-up included)")
        for timing in timings:
            print(f"  {timing.median:6.2f} s  {timing.name}")
    if not options.keep:
        for leftover in folder.iterdir():
            leftover.unlink()
        folder.rmdir()
        if options.db is not None:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
    return 0 if result["all_under_target"] else 1


if __name__ == "__main__":
    sys.exit(main())
