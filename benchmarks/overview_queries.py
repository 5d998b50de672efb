"""What the dashboard's overview page costs in SQL on a 1,000,000-event SQLite ledger.

Builds (or reuses) the ledger of ``benchmarks/million_ledger.py``, then times,
for the last 24 hours, 7 days and 30 days (best and median of ``--repeat``
runs after one warm-up, wall clock, ``time.perf_counter``):

  a  ``ledger.stats(project, "30 days")``
  b  ``ledger.report(...)``, no group_by: cost per hour (24 h, 7 d) or day (30 d)
  c  by model over the period, costliest first (SQLAlchemy Core, ``money_sum``)
  d  by agent, the same
  e1 top 10 users, and how many users, with ``count(*) OVER ()``
  e2 top 10 users, then ``count(DISTINCT user_id)`` as a second query
  f  a, b, c, d, e1 one after the other; and ``f||``: the same on 2 threads
  g  one wide report: ``report(group_by=[model, agent])`` per bucket (chart, totals and
     both breakdowns summed in Python) + ``breakdown(user, limit=10)``
  h  four narrow queries: b, c, d, e1 (the overview without a), one after the other

on the ledger as built, and on copies of it (the cached file is never
changed) with: ANALYZE; one wide covering index; one covering index per
query; money as integer columns (a schema change, simulated: whole units,
then the first and last 9 of 18 decimal places, summed natively); and
rollup tables (per hour and model, per hour and agent, per day and user;
the period's ragged ends read from the events). Every variant's totals are
checked, exactly, against the ledger's own ``decimal_sum``.
``EXPLAIN QUERY PLAN`` of each statement (30 days) is printed at the end.

The research behind the ledger's rollups (schema 7): since then ``stats``,
``report`` and ``breakdown`` read them, so on a newer ledger the "base"
variant of a, b, c, d and e1 measures the rollups, not a scan.

    python benchmarks/overview_queries.py                  # ~/.cache/agentmeter-bench/
    python benchmarks/overview_queries.py --events 200000 --repeat 3 --variants base,cover
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

from million_ledger import build_ledger, default_path
from sqlalchemy import Float, Select, cast, column, distinct, event, func, select, text

from agentmeter.core.wire import ReportQuery
from agentmeter.ledger import Ledger
from agentmeter.ledger.base import to_micros
from agentmeter.ledger.dialect import DAY_MICROS, HOUR_MICROS, money_sum, period_expr
from agentmeter.ledger.schema import events
from agentmeter.pricing import money_sum as add_all

Query = Callable[[], Any]


@dataclass(frozen=True)
class Period:
    name: str
    length: timedelta
    bucket: str  # the chart's granularity, as the dashboard's PRESETS
    timeframe: str  # as ledger.stats takes it


PERIODS = (
    Period("24h", timedelta(hours=24), "hour", "24 hours"),
    Period("7d", timedelta(days=7), "hour", "7 days"),
    Period("30d", timedelta(days=30), "day", "30 days"),
)


@dataclass(frozen=True)
class Window:
    project_id: str
    period: Period
    start: datetime
    end: datetime  # exclusive: one microsecond past "now", as the dashboard's periods

    @property
    def start_us(self) -> int:
        return to_micros(self.start)

    @property
    def end_us(self) -> int:
        return to_micros(self.end)


def window_of(project_id: str, period: Period, now: datetime) -> Window:
    return Window(project_id, period, now - period.length, now + timedelta(microseconds=1))


# ------------------------------------------------------------------ variants

# Wide: every column the overview reads, so no query touches the table.
COVER_ALL = (
    "CREATE INDEX ix_bench_overview ON events "
    "(project_id, ts, model, agent_id, user_id, api_calls, tokens_in, tokens_out, total_cost)"
)
COVER_EACH = (
    "CREATE INDEX ix_bench_ts_sums ON events "
    "(project_id, ts, api_calls, tokens_in, tokens_out, total_cost)",
    "CREATE INDEX ix_bench_ts_model ON events "
    "(project_id, ts, model, api_calls, tokens_in, tokens_out, total_cost)",
    "CREATE INDEX ix_bench_ts_agent ON events "
    "(project_id, ts, agent_id, api_calls, tokens_in, tokens_out, total_cost)",
    "CREATE INDEX ix_bench_ts_user ON events "
    "(project_id, ts, user_id, api_calls, tokens_in, tokens_out, total_cost)",
)
_FRACTION = (
    "substr(CASE WHEN instr(total_cost, '.') THEN substr(total_cost, instr(total_cost, '.') + 1)"
    " ELSE '' END || '000000000000000000', 1, 18)"
)
INT_MONEY = (
    "ALTER TABLE events ADD COLUMN cost_units BIGINT NOT NULL DEFAULT 0",
    "ALTER TABLE events ADD COLUMN cost_nano BIGINT NOT NULL DEFAULT 0",  # places 1-9
    "ALTER TABLE events ADD COLUMN cost_atto BIGINT NOT NULL DEFAULT 0",  # places 10-18
    "UPDATE events SET cost_units = CAST(total_cost AS INTEGER), "
    f"cost_nano = CAST(substr({_FRACTION}, 1, 9) AS INTEGER), "
    f"cost_atto = CAST(substr({_FRACTION}, 10, 9) AS INTEGER)",
    "CREATE INDEX ix_bench_overview_int ON events (project_id, ts, model, agent_id, user_id, "
    "api_calls, tokens_in, tokens_out, cost_units, cost_nano, cost_atto)",
)
_ROLLUP_SUMS = (
    "count(*) AS events, sum(api_calls) AS api_calls, sum(tokens_in) AS tokens_in, "
    "sum(tokens_out) AS tokens_out, decimal_sum(total_cost) AS cost"
)
_ROLLUP_KEYS = (
    ("rollup_hour_model", "hour", HOUR_MICROS, "model"),
    ("rollup_hour_agent", "hour", HOUR_MICROS, "agent_id"),
    ("rollup_day_user", "day", DAY_MICROS, "user_id"),
)
ROLLUPS = tuple(
    statement
    for name, unit, step, key in _ROLLUP_KEYS
    for statement in (
        f"CREATE TABLE {name} AS SELECT project_id, ts - ts % {step} AS {unit}, {key}, "
        f"{_ROLLUP_SUMS} FROM events GROUP BY project_id, {unit}, {key}",
        f"CREATE INDEX ix_{name} ON {name} (project_id, {unit})",
    )
)
VARIANTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "base": ("the ledger as built (its 3 indexes on project_id+ts/user/agent)", ()),
    "analyze": ("+ ANALYZE", ("ANALYZE",)),
    "cover": ("+ 1 wide covering index (project_id, ts, model, agent, user, sums)", (COVER_ALL,)),
    "cover4": ("+ 4 covering indexes (project_id, ts, [key,] sums)", COVER_EACH),
    "intmoney": ("money as 3 BIGINT columns, summed natively, + wide covering index", INT_MONEY),
    "rollup": ("rollups: hour x model, hour x agent, day x user (+ raw ends)", ROLLUPS),
}


def prepare(name: str, original: Path, workdir: Path) -> tuple[Path, float]:
    """The variant's database: the original itself, or a copy changed by its statements."""
    statements = VARIANTS[name][1]
    if not statements:
        return original, 0.0
    copy = workdir / f"{name}.db"
    shutil.copyfile(original, copy)
    started = time.perf_counter()
    ledger = Ledger.open(f"sqlite:///{copy}", synchronous="OFF")  # decimal_sum for rollups
    try:
        with ledger.writing() as connection:
            for statement in statements:
                connection.exec_driver_sql(statement)
        with ledger.engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        ledger.close()
    return copy, time.perf_counter() - started


# ------------------------------------------------------------- the queries

SUM_COLUMNS = ("events", "api_calls", "tokens_in", "tokens_out", "cost")


def _sums(dialect: str) -> list[Any]:
    return [
        func.count().label("events"),
        func.coalesce(func.sum(events.c.api_calls), 0).label("api_calls"),
        func.coalesce(func.sum(events.c.tokens_in), 0).label("tokens_in"),
        func.coalesce(func.sum(events.c.tokens_out), 0).label("tokens_out"),
        money_sum(dialect, events.c.total_cost).label("cost"),
    ]


def _in_window(statement: Select[Any], window: Window) -> Select[Any]:
    return statement.where(
        events.c.project_id == window.project_id,
        events.c.ts >= window.start_us,
        events.c.ts < window.end_us,
    )


def _by_cost(dialect: str) -> Any:
    # decimal_sum answers text on SQLite: ordered as text, "9.5" > "10.2".
    cost = money_sum(dialect, events.c.total_cost)
    return cast(cost, Float).desc() if dialect == "sqlite" else cost.desc()


def grouped(window: Window, key: str, dialect: str) -> Select[Any]:
    """c, d: one row per value of ``key``, costliest first."""
    column_ = events.c[key]
    statement = select(column_, *_sums(dialect)).group_by(column_)
    return _in_window(statement, window).order_by(_by_cost(dialect), column_)


def top_users_window(window: Window, dialect: str) -> Select[Any]:
    """e1: the top 10 users, each row carrying the number of users."""
    users = func.count().over().label("users")
    statement: Select[Any] = select(events.c.user_id, *_sums(dialect), users)
    statement = _in_window(statement.group_by(events.c.user_id), window)
    return statement.order_by(_by_cost(dialect), events.c.user_id).limit(10)


def top_users(window: Window, dialect: str) -> Select[Any]:
    statement = _in_window(select(events.c.user_id, *_sums(dialect)), window)
    statement = statement.group_by(events.c.user_id)
    return statement.order_by(_by_cost(dialect), events.c.user_id).limit(10)


def user_count(window: Window) -> Select[Any]:
    return _in_window(select(func.count(distinct(events.c.user_id))), window)


def report_query(window: Window, group_by: list[str] | None = None) -> ReportQuery:
    return ReportQuery(
        project_id=window.project_id,
        granularity=window.period.bucket,
        group_by=group_by or [],
        start_date=window.start,
        end_date=window.end,
    )


def _all(ledger: Ledger, statement: Any, params: dict[str, Any] | None = None) -> list[Any]:
    with ledger.reading() as connection:
        return list(connection.execute(statement, params or {}).all())


def core_queries(ledger: Ledger, window: Window) -> dict[str, Query]:
    """a to e, and g, on the ledger's own schema."""
    dialect = ledger.dialect

    def e2() -> Any:
        with ledger.reading() as connection:
            rows = connection.execute(top_users(window, dialect)).all()
            return rows, connection.execute(user_count(window)).scalar_one()

    def g() -> Any:
        rows = ledger.report(report_query(window, ["model", "agent"]))
        return rows, ledger.breakdown(report_query(window, ["user"]), limit=10)

    return {
        "a stats": lambda: ledger.stats(window.project_id, window.period.timeframe),
        "b report (no group)": lambda: ledger.report(report_query(window)),
        "c by model": lambda: _all(ledger, grouped(window, "model", dialect)),
        "d by agent": lambda: _all(ledger, grouped(window, "agent_id", dialect)),
        "e1 top users, over()": lambda: _all(ledger, top_users_window(window, dialect)),
        "e2 top users + distinct": e2,
        "g report(model,agent)+users": g,
    }


# Money as three integer columns: exact sums with SQLite's own sum().
_INT_SUMS = (
    "count(*) AS events, coalesce(sum(api_calls), 0) AS api_calls, "
    "coalesce(sum(tokens_in), 0) AS tokens_in, coalesce(sum(tokens_out), 0) AS tokens_out, "
    "coalesce(sum(cost_units), 0) AS units, coalesce(sum(cost_nano), 0) AS nano, "
    "coalesce(sum(cost_atto), 0) AS atto"
)
_INT_WHERE = "WHERE project_id = :p AND ts >= :s AND ts < :e"
_INT_ORDER = "ORDER BY sum(cost_units) * 1000000000 + sum(cost_nano) DESC, sum(cost_atto) DESC"


def int_money(units: int, nano: int, atto: int) -> Decimal:
    """The exact sum of three integer money sums."""
    parts = (Decimal(units), Decimal(nano).scaleb(-9), Decimal(atto).scaleb(-18))
    return add_all(parts)


def int_queries(ledger: Ledger, window: Window) -> dict[str, Query]:
    """a to e, and g, on the integer money columns (the variant ``intmoney``)."""
    params = {"p": window.project_id, "s": window.start_us, "e": window.end_us}
    bucket = period_expr("sqlite", window.period.bucket, column("ts"))
    bucket_sql = str(bucket.compile(compile_kwargs={"literal_binds": True}))

    def run(sql: str) -> list[Any]:
        return _all(ledger, text(sql), params)

    def grouped_sql(key: str, extra: str = "", limit: str = "") -> str:
        return (
            f"SELECT {key}, {_INT_SUMS}{extra} FROM events {_INT_WHERE} "
            f"GROUP BY {key} {_INT_ORDER}, {key} {limit}"
        )

    def e2() -> Any:
        return run(grouped_sql("user_id", limit="LIMIT 10")), run(
            f"SELECT count(DISTINCT user_id) FROM events {_INT_WHERE}"
        )

    def g() -> Any:
        by_bucket = run(
            f"SELECT {bucket_sql} AS period, model, agent_id, {_INT_SUMS} FROM events "
            f"{_INT_WHERE} GROUP BY period, model, agent_id"
        )
        return by_bucket, run(grouped_sql("user_id", ", count(*) OVER () AS users", "LIMIT 10"))

    return {
        "a stats": lambda: run(f"SELECT {_INT_SUMS} FROM events {_INT_WHERE}"),
        "b report (no group)": lambda: run(
            f"SELECT {bucket_sql} AS period, {_INT_SUMS} FROM events "
            f"{_INT_WHERE} GROUP BY period ORDER BY period"
        ),
        "c by model": lambda: run(grouped_sql("model")),
        "d by agent": lambda: run(grouped_sql("agent_id")),
        "e1 top users, over()": lambda: run(
            grouped_sql("user_id", ", count(*) OVER () AS users", "LIMIT 10")
        ),
        "e2 top users + distinct": e2,
        "g report(model,agent)+users": g,
    }


def _ceil(micros: int, step: int) -> int:
    return -(-micros // step) * step


def rollup_queries(ledger: Ledger, window: Window) -> dict[str, Query]:
    """The overview from the rollup tables, the period's ragged ends from the events."""
    start, end = window.start_us, window.end_us
    # Whole hours/days [h0, h1) from the rollups, [start, h0) and [h1, end) from the events.
    h0 = min(_ceil(start, HOUR_MICROS), end)
    h1 = max(end - end % HOUR_MICROS, h0)
    d0 = min(_ceil(start, DAY_MICROS), end)
    d1 = max(end - end % DAY_MICROS, d0)
    params = {"p": window.project_id, "s": start, "e": end, "h0": h0, "h1": h1, "d0": d0, "d1": d1}
    bucket = period_expr("sqlite", window.period.bucket, column("t"))
    bucket_sql = str(bucket.compile(compile_kwargs={"literal_binds": True}))
    sums = "sum(events) AS events, sum(api_calls) AS api_calls, sum(tokens_in) AS tokens_in, "
    sums += "sum(tokens_out) AS tokens_out, decimal_sum(cost) AS cost"
    raw = "1, api_calls, tokens_in, tokens_out, total_cost"

    def union(rollup: str, unit: str, lo: str, hi: str, keys: str) -> str:
        return (
            f"SELECT {unit} AS t, {keys}, events, api_calls, tokens_in, tokens_out, cost "
            f"FROM {rollup} WHERE project_id = :p AND {unit} >= :{lo} AND {unit} < :{hi} "
            f"UNION ALL SELECT ts, {keys}, {raw} FROM events "
            f"WHERE project_id = :p AND ts >= :s AND ts < :{lo} "
            f"UNION ALL SELECT ts, {keys}, {raw} FROM events "
            f"WHERE project_id = :p AND ts >= :{hi} AND ts < :e"
        )

    def run(sql: str) -> list[Any]:
        return _all(ledger, text(sql), params)

    def by_model() -> list[Any]:  # also the chart and the totals (summed in Python)
        return run(
            f"SELECT {bucket_sql} AS period, model, {sums} "
            f"FROM ({union('rollup_hour_model', 'hour', 'h0', 'h1', 'model')}) "
            "GROUP BY period, model"
        )

    def by_agent() -> list[Any]:
        return run(
            f"SELECT agent_id, {sums} "
            f"FROM ({union('rollup_hour_agent', 'hour', 'h0', 'h1', 'agent_id')}) "
            "GROUP BY agent_id ORDER BY CAST(decimal_sum(cost) AS REAL) DESC, agent_id"
        )

    def users() -> list[Any]:
        return run(
            f"SELECT user_id, {sums}, count(*) OVER () AS users "
            f"FROM ({union('rollup_day_user', 'day', 'd0', 'd1', 'user_id')}) "
            "GROUP BY user_id ORDER BY CAST(decimal_sum(cost) AS REAL) DESC, user_id LIMIT 10"
        )

    return {
        "r1 chart+model (hour rollup)": by_model,
        "r2 by agent (hour rollup)": by_agent,
        "r3 top users (day rollup)": users,
        "h overview from rollups": lambda: (by_model(), by_agent(), users()),
    }


def queries_for(variant: str, ledger: Ledger, window: Window) -> dict[str, Query]:
    if variant == "intmoney":
        found = int_queries(ledger, window)
    elif variant == "rollup":
        return rollup_queries(ledger, window)
    else:
        found = core_queries(ledger, window)
    parts = [found[name] for name in found if name[0] in "abcd" or name.startswith("e1")]
    found["h b+c+d+e1 (4 narrow)"] = lambda: [query() for query in parts[1:]]
    found["f a..e sequential"] = lambda: [query() for query in parts]
    found["f|| a..e on 2 threads"] = lambda: _parallel(parts)
    return found


_POOL = ThreadPoolExecutor(2)


def _parallel(parts: list[Query]) -> list[Any]:
    return list(_POOL.map(lambda query: query(), parts))


# ----------------------------------------------------------- exact totals


def totals_of(variant: str, ledger: Ledger, window: Window) -> tuple[int, Decimal, Decimal]:
    """(events, cost, top user's cost) of the period, read the variant's way."""
    if variant == "intmoney":
        result = int_queries(ledger, window)
        (row,) = result["a stats"]()
        (top, *_), _count = result["e2 top users + distinct"]()
        return (
            int(row.events),
            int_money(row.units, row.nano, row.atto),
            int_money(top.units, top.nano, top.atto),
        )
    if variant == "rollup":
        found = rollup_queries(ledger, window)
        rows = found["r1 chart+model (hour rollup)"]()
        (top, *_) = found["r3 top users (day rollup)"]()
        cost = add_all(Decimal(row.cost) for row in rows)
        return sum(int(row.events) for row in rows), cost, Decimal(top.cost)
    rows = _all(ledger, _in_window(select(*_sums(ledger.dialect)), window))
    (top, *_) = _all(ledger, top_users(window, ledger.dialect))
    return int(rows[0].events), rows[0].cost, top.cost


# --------------------------------------------------------------- the timing


@dataclass
class Timing:
    best: float
    median: float


@dataclass
class Results:
    timings: dict[tuple[str, str, str], Timing] = field(default_factory=dict)
    plans: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    setup: dict[str, float] = field(default_factory=dict)
    sizes: dict[str, float] = field(default_factory=dict)


def time_query(query: Query, repeat: int) -> Timing:
    query()  # warm-up: the page cache, SQLAlchemy's statement cache
    runs = []
    for _ in range(repeat):
        started = time.perf_counter()
        query()
        runs.append(time.perf_counter() - started)
    return Timing(min(runs), statistics.median(runs))


@contextmanager
def captured(ledger: Ledger) -> Iterator[list[tuple[str, Any]]]:
    """The SELECT statements the ledger's engine runs meanwhile."""
    seen: list[tuple[str, Any]] = []

    def listen(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith(("SELECT", "WITH")):
            seen.append((statement, parameters))

    event.listen(ledger.engine, "before_cursor_execute", listen)
    try:
        yield seen
    finally:
        event.remove(ledger.engine, "before_cursor_execute", listen)


def plans_of(ledger: Ledger, query: Query) -> list[str]:
    with captured(ledger) as seen:
        query()
    plans = []
    with ledger.engine.connect() as connection:
        for statement, parameters in seen:
            rows = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)
            plans.append("; ".join(str(row[3]) for row in rows))
    return plans


def run_variant(
    variant: str, path: Path, project_id: str, now: datetime, repeat: int, results: Results
) -> None:
    ledger = Ledger.open(f"sqlite:///{path}")
    try:
        for period in PERIODS:
            window = Window(
                project_id, period, now - period.length, now + timedelta(microseconds=1)
            )
            for name, query in queries_for(variant, ledger, window).items():
                results.timings[(variant, name, period.name)] = time_query(query, repeat)
                if period.name == "30d" and not name.startswith(("f", "h b")):
                    results.plans[(variant, name)] = plans_of(ledger, query)
                print(".", end="", flush=True)
    finally:
        ledger.close()


def check_exact(variants: list[str], paths: dict[str, Path], project_id: str, now: datetime) -> str:
    """Every variant's events, cost and top user's cost over each period, against base."""
    lines = []
    for period in PERIODS:
        window = window_of(project_id, period, now)
        found = {}
        for variant in variants:
            ledger = Ledger.open(f"sqlite:///{paths[variant]}")
            try:
                found[variant] = totals_of(variant, ledger, window)
            finally:
                ledger.close()
        reference = found[variants[0]]
        wrong = [name for name, value in found.items() if value != reference]
        if wrong:
            raise AssertionError(f"{period.name}: {wrong} differ from {variants[0]}: {found}")
        events_, cost, top = reference
        lines.append(f"{period.name}: {events_:,} events, cost {cost}, top user {top}")
    return "; ".join(lines)


# --------------------------------------------------------------- the report


def print_results(variants: list[str], results: Results, repeat: int) -> None:
    width = 30
    for variant in variants:
        description = VARIANTS[variant][0]
        extra = ""
        if variant in results.setup:
            extra = (
                f"  [setup {results.setup[variant]:.1f} s, file {results.sizes[variant]:.0f} MiB]"
            )
        print(f"\n== {variant}: {description}{extra}")
        print(
            f"{'query':<{width}}" + "".join(f"{p.name + ' best/median (ms)':>26}" for p in PERIODS)
        )
        names = dict.fromkeys(name for (v, name, _) in results.timings if v == variant)
        for name in names:
            cells = []
            for period in PERIODS:
                timing = results.timings[(variant, name, period.name)]
                cells.append(f"{timing.best * 1000:>13.0f} / {timing.median * 1000:<10.0f}")
            print(f"{name:<{width}}" + "".join(f"{cell:>26}" for cell in cells))
    print(f"\n(best and median of {repeat} runs after a warm-up)")
    print("\n== EXPLAIN QUERY PLAN, last 30 days (one line per statement; variants alike merged)")
    shared: dict[str, dict[tuple[str, ...], list[str]]] = {}
    for (variant, name), plans in results.plans.items():
        shared.setdefault(name, {}).setdefault(tuple(plans), []).append(variant)
    for name, by_plan in shared.items():
        print(name)
        for statements, alike in by_plan.items():
            for plan in statements:
                print(f"  {','.join(alike)}: {plan}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--project", default="bench")
    parser.add_argument("--path", type=Path, help="the ledger (default: the cache's)")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--workdir", type=Path, help="for the copies (default: a temp dir)")
    args = parser.parse_args(argv)
    variants = args.variants.split(",")
    unknown = [name for name in variants if name not in VARIANTS]
    if unknown:
        parser.error(f"unknown variants {unknown}; choose from {', '.join(VARIANTS)}")

    path = (args.path or default_path(args.events, args.project, 60, 1)).expanduser().resolve()
    started = time.perf_counter()
    build_ledger(path, args.events, project_id=args.project, verbose=True)
    print(f"ledger {path} ready in {time.perf_counter() - started:.1f} s")
    print(
        f"Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}"
    )
    now = datetime.now(timezone.utc)
    results = Results()
    parent = args.workdir or path.parent
    with tempfile.TemporaryDirectory(prefix="overview-", dir=parent) as workdir:
        paths: dict[str, Path] = {}
        for variant in variants:
            paths[variant], setup = prepare(variant, path, Path(workdir))
            if paths[variant] != path:
                results.setup[variant] = setup
                results.sizes[variant] = paths[variant].stat().st_size / 2**20
            print(f"{variant}: ", end="", flush=True)
            run_variant(variant, paths[variant], args.project, now, args.repeat, results)
            print()
        print("exact totals agree:", check_exact(variants, paths, args.project, now))
    _POOL.shutdown()
    print_results(variants, results, args.repeat)
    return 0


if __name__ == "__main__":
    sys.exit(main())
