"""How long ``agentmeter report`` and ``stats`` take over millions of events.

Seeds ``--events`` events (default 10,000,000) straight into the ``events``
table of a fresh ledger (``benchmarks/report_seed.py``: SQLite by default,
PostgreSQL with ``--db postgresql+psycopg://...`` naming an empty database),
then builds the usage rollups from them as ``agentmeter ledger check
--repair`` does (seeded rows skip the write path that keeps them).

Then it runs ``agentmeter report`` and ``agentmeter stats`` as a user does (a
subprocess, wall time from start to exit, Python start-up included) in
several shapes, beside ``python -c pass`` measured in the same run, and beside
the same command through the client (the path every report took before the
driver-only reader, ``ledger/fast_reports.py``; ``--client-path`` runs it). Each is
run ``--repeat`` times (default 3); the median is reported. Checks, or the
script exits 1: the CSV exports add up to the seeded events and their exact
total cost; and each measured report, in process, equals the same report
summed from the events alone (``use_rollups = False``), row for row; and the
driver-only reader's rows equal the full path's.

    python benchmarks/cli_report.py                     # the figures in docs/benchmarks.md
    python benchmarks/cli_report.py --events 1000000    # quicker
    python benchmarks/cli_report.py --db postgresql+psycopg://postgres@127.0.0.1:5432/bench \\
        --events 1000000
    python benchmarks/cli_report.py --path /tmp/l.db --keep   # keep the SQLite ledger
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from report_seed import PROJECT, build_rollups, seed_postgres, seed_sqlite

from agentmeter.core.wire import ReportQuery
from agentmeter.ledger import Ledger
from agentmeter.ledger.base import now_micros
from agentmeter.ledger.fast_reports import RollupReader

TARGET_SECONDS = 0.5
# (what is measured, its arguments, its output file or None, the same report in process)
SHAPES: list[tuple[str, str, str | None, dict[str, object] | None]] = [
    ("report: month, csv", "report --granularity month --format csv", "m.csv",
     {"granularity": "month"}),
    ("report: day by user, csv", "report --group-by user --format csv", "du.csv",
     {"granularity": "day", "group_by": ["user"]}),
    ("report: hour by agent and user, csv",
     "report --granularity hour --group-by agent --group-by user --format csv", "hau.csv",
     {"granularity": "hour", "group_by": ["agent", "user"]}),
    ("stats --timeframe all", "stats --timeframe all --format json", "s.json", None),
    ("report: day by user, table", "report --group-by user", "du.txt", None),
    ("report: month by agent, table (+ the user summary)",
     "report --granularity month --group-by agent", "ma.txt", None),
    ("report: day, json", "report --format json", "d.json", None),
]  # fmt: skip


# The command as it ran before the driver-only reader: through the client.
CLIENT_PATH = (
    "import sys\n"
    "from agentmeter.ledger.fast_reports import RollupReader\n"
    "RollupReader.open = classmethod(lambda cls, *args: None)\n"
    "from agentmeter.cli import main\n"
    "sys.argv = ['agentmeter', *sys.argv[1:]]\n"
    "main()\n"
)
FIELDS = ("period", "user_id", "agent_id", "payment_type", "model", "events", "api_calls")
FIELDS += ("tokens_in", "tokens_out", "cost")


@dataclass
class Timing:
    name: str
    runs: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.runs)


def run(args: list[str]) -> float:
    # Bytecode caches written and used, as an installed package has them.
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("AGENTMETER_") and k != "PYTHONDONTWRITEBYTECODE"
    }
    began = time.perf_counter()
    done = subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, env=env, check=False
    )
    elapsed = time.perf_counter() - began
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed: {done.stderr.strip()}")
    return elapsed


def check_csv(path: Path, count: int, total: Decimal) -> None:
    with path.open(newline="") as stream:
        rows = list(csv.DictReader(stream))
    events = sum(int(row["events"]) for row in rows)
    cost = sum((Decimal(row["cost"]) for row in rows), Decimal(0))
    if events != count or cost != total:
        raise SystemExit(f"{path.name}: {events} events, cost {cost}; expected {count}, {total}")


def check_against_events(url: str) -> list[Timing]:
    """Each report and the stats from the rollups == from the events == from the
    driver-only reader; time each."""
    timings = []
    ledger = Ledger.open(url)
    reader = RollupReader.open(url, PROJECT)
    if reader is None:
        raise SystemExit("the driver-only reader does not read this ledger")
    try:
        for name, _, _, shape in SHAPES:
            if shape is None:
                continue
            query = ReportQuery(project_id=PROJECT, **shape)  # type: ignore[arg-type]
            timings += _compare(name, ledger, lambda query=query: ledger.report(query))
            timings.append(_compare_reader(name, reader, query, ledger.report(query)))
        timings += _compare("stats all", ledger, lambda: ledger.stats(PROJECT, "all"))
        began = time.perf_counter()
        stats = reader.stats("all", now_micros())
        elapsed = time.perf_counter() - began
        if stats is None or stats.total_cost != ledger.stats(PROJECT, "all").total_cost:
            raise SystemExit("stats all: the driver-only reader's total differs")
        timings.append(Timing("in process, stats all: the driver-only reader", [elapsed]))
    finally:
        reader.close()
        ledger.close()
    return timings


def _compare_reader(name: str, reader: RollupReader, query: ReportQuery, full: list) -> Timing:
    began = time.perf_counter()
    rows = reader.report(query.granularity, query.group_by, None, None)
    elapsed = time.perf_counter() - began
    shown = [[getattr(row, field) for field in FIELDS] for row in rows or []]
    if rows is None or shown != [[getattr(row, field) for field in FIELDS] for row in full]:
        raise SystemExit(f"{name}: the driver-only reader's rows differ from the full path's")
    return Timing(f"in process, {name}: the driver-only reader", [elapsed])


def _compare(name: str, ledger: Ledger, answer: object) -> list[Timing]:
    results, times = [], []
    for use_rollups in (True, False):
        ledger.use_rollups = use_rollups
        began = time.perf_counter()
        results.append(answer())  # type: ignore[operator]
        times.append(time.perf_counter() - began)
    ledger.use_rollups = True
    if results[0] != results[1]:
        raise SystemExit(f"{name}: the rollups' answer differs from the events'")
    return [
        Timing(f"in process, {name}: from the rollups", [times[0]]),
        Timing(f"in process, {name}: from the events alone", [times[1]]),
    ]


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
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--db", help="A PostgreSQL URL (an empty database); default: SQLite.")
    parser.add_argument("--path", type=Path, help="The SQLite file (default: a temporary one).")
    parser.add_argument("--keep", action="store_true", help="Keep the SQLite ledger file.")
    parser.add_argument(
        "--reuse", action="store_true", help="Measure the kept ledger at --path (no seeding)."
    )
    parser.add_argument(
        "--client-path",
        action="store_true",
        help="Also time each command through the client, as before the driver-only reader.",
    )
    parser.add_argument("--json", action="store_true", help="One JSON object, not a table.")
    options = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="agentmeter-bench-"))
    path = options.path or folder / "ledger.db"
    url = options.db or f"sqlite:///{path}"
    began = time.perf_counter()
    seeded = rolled = 0.0
    sidecar = Path(f"{path}.total")  # the kept ledger's exact total
    if options.reuse:
        total = Decimal(sidecar.read_text())
    elif options.db:
        total = seed_postgres(url, options.events)
    elif path.exists():
        raise SystemExit(f"{path} exists; remove it first (the benchmark seeds a fresh ledger)")
    else:
        total = seed_sqlite(path, options.events)
    if not options.reuse:
        seeded = time.perf_counter() - began
        began = time.perf_counter()
        build_rollups(url)
        rolled = time.perf_counter() - began
    if options.keep and not options.db:
        sidecar.write_text(str(total))

    timings = [Timing("python -c pass (baseline)", [run(["-c", "pass"]) for _ in range(5)])]
    base = ["--db", url, "--project-id", PROJECT]
    for name, flags, target, _ in SHAPES:
        command, *rest = flags.split()
        args = ["-m", "agentmeter.cli", command, *base, *rest, "-o", str(folder / str(target))]
        run(args)  # untimed: the first run writes the bytecode caches
        timings.append(Timing(f"agentmeter {name}", [run(args) for _ in range(options.repeat)]))
    before = []
    for name, flags, target, _ in SHAPES if options.client_path else []:
        command, *rest = flags.split()
        args = ["-c", CLIENT_PATH, command, *base, *rest, "-o", str(folder / f"client-{target}")]
        run(args)
        before.append(
            Timing(f"through the client: {name}", [run(args) for _ in range(options.repeat)])
        )
    for name in ("m.csv", "du.csv", "hau.csv"):
        check_csv(folder / name, options.events, total)
    checks = [*before, *check_against_events(url)]

    commands = timings[1:]
    result = {
        "events": options.events,
        "database": "postgresql" if options.db else "sqlite",
        "seed_seconds": round(seeded, 1),
        "rollups_seconds": round(rolled, 1),
        "total_cost": str(total),
        "machine": machine(),
        "timings": {t.name: round(t.median, 3) for t in [*timings, *checks]},
        "target_seconds": TARGET_SECONDS,
        "all_under_target": all(t.median < TARGET_SECONDS for t in commands),
    }
    if options.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"{options.events:,} events seeded in {seeded:.1f} s ({result['database']}); "
              f"rollups built in {rolled:.1f} s; exact total cost {total}")  # fmt: skip
        print(f"median of {options.repeat} runs, wall time (subprocess: Python start-up included)")
        for timing in [*timings, *checks]:
            print(f"  {timing.median:7.3f} s  {timing.name}")
    if not options.keep:
        for leftover in folder.iterdir():
            leftover.unlink()
        folder.rmdir()
    return 0 if result["all_under_target"] else 1


if __name__ == "__main__":
    sys.exit(main())
