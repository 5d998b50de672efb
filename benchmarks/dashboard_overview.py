"""Server time of the dashboard's overview page on a 1,000,000-event project.

Builds (or reuses) the ledger of ``million_ledger.py`` (one project, 1M events
over 60 days, ~2,000 users, 25 agents, 12 models), signs in to the dashboard
of a real app (``create_app``, in process through Starlette's TestClient, so
the figure is the server's own work: routing, session check, the ledger's
queries, the page's HTML), and times ``GET /dashboard/`` for each period.

Beside each figure, in the same run: the floor (``GET /health``, the same
app and client) and ``GET /api/meter/stats`` for the same span, one of the two
queries the overview's numbers come from. Target: the overview under 1 s.

With ``--postgres URL`` the same events are copied (``COPY``) into that
PostgreSQL database (once; a database holding them is reused) and the
same requests are timed there too.

    python benchmarks/dashboard_overview.py              # the figures in docs/benchmarks.md
    python benchmarks/dashboard_overview.py --events 200000 --repeat 3
    python benchmarks/dashboard_overview.py --postgres "$AGENTMETER_TEST_PG_URL"
"""

from __future__ import annotations

import argparse
import platform
import sqlite3
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

from fastapi.testclient import TestClient

sys.path.insert(0, str(Path(__file__).parent))
from million_ledger import COLUMNS, build_ledger, default_path

from agentmeter.ledger import Ledger
from agentmeter.server import create_app

ADMIN_KEY = "am_admin_benchmark-dashboard-overview"
PERIODS = [("24h", "24 hours"), ("7d", "7 days"), ("30d", "30 days"), ("this-month", None)]


def timed(call: Callable[[], object], repeat: int) -> tuple[float, float]:
    """(best, median) wall seconds of ``repeat`` calls after one warm-up."""
    call()
    laps = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        laps.append(time.perf_counter() - started)
    return min(laps), statistics.median(laps)


def get(client: TestClient, path: str, **params: str) -> Callable[[], object]:
    def call() -> object:
        answer = client.get(path, params=params)
        if answer.status_code != 200:
            raise SystemExit(f"{path} answered {answer.status_code}: {answer.text[:200]}")
        return answer

    return call


def copy_to_postgres(sqlite_path: Path, url: str, events: int) -> None:
    """The benchmark's events, copied into the ledger at ``url`` (unless there already)."""
    ledger = Ledger.open(url)
    try:
        ledger.ensure_project("bench", f"bench ({events:,} generated events)")
        with ledger.reading() as connection:
            held = connection.exec_driver_sql(
                "SELECT count(*) FROM events WHERE project_id = 'bench'"
            ).scalar_one()
        if held == events:
            return
        started = time.perf_counter()
        source = sqlite3.connect(f"file:{sqlite_path}?mode=ro", uri=True)
        with ledger.writing() as connection:
            connection.exec_driver_sql("DELETE FROM events WHERE project_id = 'bench'")
            cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
            names = ", ".join(COLUMNS)
            rows = source.execute(f"SELECT {names} FROM events WHERE project_id = 'bench'")
            unpriced = COLUMNS.index("unpriced")
            with cursor.copy(f"COPY events ({names}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row([*row[:unpriced], bool(row[unpriced]), *row[unpriced + 1 :]])
        with ledger.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("VACUUM ANALYZE events")
        print(f"copied {events:,} events to PostgreSQL in {time.perf_counter() - started:.0f} s")
    finally:
        ledger.close()


def run(url: str, events: int, repeat: int) -> None:
    ledger = Ledger.open(url)
    app = create_app(ledger, admin_key=ADMIN_KEY)
    print(f"\nledger: {ledger!r} ({events:,} events over 60 days)")
    with TestClient(app, base_url="http://127.0.0.1") as client:
        signed_in = client.post(
            "/dashboard/sign-in", data={"key": ADMIN_KEY}, headers={"Origin": "http://127.0.0.1"}
        )
        assert signed_in.status_code in (200, 303), signed_in.text
        floor = timed(get(client, "/health"), repeat)
        print(f"{'GET':<34}{'best':>10}{'median':>10}")
        print(f"{'/health (floor)':<34}{floor[0] * 1000:>8.1f}ms{floor[1] * 1000:>8.1f}ms")
        for period, timeframe in PERIODS:
            page = timed(get(client, "/dashboard/", project="bench", period=period), repeat)
            print(f"{f'/dashboard/ period={period}':<34}{page[0]:>9.3f}s{page[1]:>9.3f}s")
            if timeframe:
                stats = get(client, "/api/meter/stats", project_id="bench", timeframe=timeframe)
                client.headers["Authorization"] = f"Bearer {ADMIN_KEY}"
                figures = timed(stats, repeat)
                del client.headers["Authorization"]
                label = f"  /api/meter/stats {timeframe}"
                print(f"{label:<34}{figures[0]:>9.3f}s{figures[1]:>9.3f}s")
    ledger.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--postgres", metavar="URL", help="time a PostgreSQL ledger too")
    args = parser.parse_args(argv)

    path = default_path(args.events, "bench", 60, 1)
    url = build_ledger(path, args.events, verbose=True)
    print(f"{platform.python_implementation()} {platform.python_version()}, {platform.machine()}")
    run(url, args.events, args.repeat)
    if args.postgres:
        copy_to_postgres(path, args.postgres, args.events)
        run(args.postgres, args.events, args.repeat)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
