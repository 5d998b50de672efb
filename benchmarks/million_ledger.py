"""A large, realistic SQLite ledger, built fast: one project, a million events by default.

``build_ledger(path)`` makes (or reuses) a ledger file with the real schema
(``Ledger.open``) and ``events`` rows exactly as ``Ledger.record_events``
writes them: money as the decimal text of ``money_text``, costs computed by
``agentmeter.pricing``, ``model`` and ``unpriced`` derived as
``agentmeter.ledger.rows.event_row`` derives them, the user meters charged
by the real ``add_usages``. Only the path in between is shorter: rows are
made as tuples (no pydantic event per row) and go to the driver's
executemany in chunks of 50,000, one transaction each, with the events'
secondary indexes dropped during the load and then made again from their own
stored ``CREATE INDEX`` text. Before the load, a sample of the generated rows
is stored through ``record_events`` in a scratch ledger and compared column
by column, so a drift from the real row builder fails loudly.

The mix: ~2,000 users (Zipf-like: a few heavy users), 25 agents, 12 models at
their list prices, the three payment types (70% token_based_pay, 20%
api_request_pay, 10% instant_pay), a few cached-input and unpriced token
events, times over the last ``days`` days up to now (busier towards now),
token counts 10..20,000 (log-uniform).

A file that already holds the requested number of events for the project,
the newest of them recent enough (``max_age_hours``), is reused as it is.

    python benchmarks/million_ledger.py                      # ~/.cache/agentmeter-bench/
    python benchmarks/million_ledger.py --events 200000 --path /tmp/l.db --force
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sqlite3
import sys
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import Any

from agentmeter.ledger import Ledger
from agentmeter.ledger.base import from_micros, now_micros
from agentmeter.ledger.dialect import MICROS
from agentmeter.ledger.events import add_usages
from agentmeter.models import (
    APIRequestPayEvent,
    InstantPayEvent,
    MeterEvent,
    TokenBasedPayEvent,
)
from agentmeter.pricing import MONEY_CONTEXT, ZERO, api_request_cost, money_text, token_cost

DEFAULT_DIR = Path.home() / ".cache" / "agentmeter-bench"
CHUNK = 50_000
VERIFY_SAMPLE = 600
USERS = 2_000
USER_SKEW = 1.1  # Zipf exponent: user k gets ~1/k**1.1 of the events
RECENT_GROWTH = 1.0  # event density rises linearly to (1 + this) x its start, at now

# The columns written, by name (the table's own order does not matter).
COLUMNS = (
    "id",
    "project_id",
    "agent_id",
    "user_id",
    "payment_type",
    "event_type",
    "ts",
    "recorded_at",
    "api_calls",
    "tokens_in",
    "tokens_out",
    "unit_price",
    "input_token_price",
    "output_token_price",
    "amount",
    "description",
    "total_cost",
    "model",
    "metadata",
    "cached_tokens_in",
    "cache_write_tokens",
    "cached_input_token_price",
    "cache_write_token_price",
    "unpriced",
)
Row = tuple[Any, ...]
_INSERT = f"INSERT INTO events ({', '.join(COLUMNS)}) VALUES ({', '.join('?' for _ in COLUMNS)})"


def _per_token(per_million: str) -> Decimal:
    return MONEY_CONTEXT.divide(Decimal(per_million), Decimal(1_000_000))


# model -> (input, output, cached input or None, cache write or None), USD per token
# (list prices per million tokens), and its share of the token events.
MODELS: dict[str, tuple[Decimal, Decimal, Decimal | None, Decimal | None]] = {
    name: (
        _per_token(inp),
        _per_token(out),
        _per_token(cached) if cached else None,
        _per_token(write) if write else None,
    )
    for name, inp, out, cached, write in (
        ("gpt-4o", "2.50", "10.00", "1.25", None),
        ("gpt-4o-mini", "0.15", "0.60", "0.075", None),
        ("gpt-4.1", "2.00", "8.00", "0.50", None),
        ("gpt-4.1-mini", "0.40", "1.60", "0.10", None),
        ("o3-mini", "1.10", "4.40", "0.55", None),
        ("claude-sonnet-4", "3.00", "15.00", "0.30", "3.75"),
        ("claude-opus-4", "15.00", "75.00", "1.50", "18.75"),
        ("claude-3-5-haiku", "0.80", "4.00", "0.08", "1.00"),
        ("gemini-2.5-pro", "1.25", "10.00", "0.31", None),
        ("gemini-2.5-flash", "0.30", "2.50", "0.075", None),
        ("mistral-large", "2.00", "6.00", None, None),
        ("llama-3.3-70b", "0.59", "0.79", None, None),
    )
}
MODEL_WEIGHTS = (14, 22, 8, 10, 4, 16, 2, 6, 4, 9, 2, 3)
AGENTS = tuple(
    f"{role}-agent"
    for role in (
        "support",
        "sales",
        "research",
        "coding",
        "review",
        "triage",
        "billing",
        "onboarding",
        "search",
        "summarize",
        "translate",
        "planner",
        "writer",
        "data",
        "qa",
        "legal",
        "hr",
        "ops",
        "security",
        "marketing",
        "docs",
        "email",
        "calendar",
        "voice",
        "vision",
    )
)
TOOLS = ("web_search", "code_exec", "vector_lookup", "image_gen", "browser", "sql")
UNIT_PRICES = tuple(Decimal(p) for p in ("0.001", "0.0025", "0.00375", "0.000125", "0.0000004321"))
INSTANT_REASONS = ("report export", "premium answer", "document OCR", "voice minute", "")


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def default_path(events: int, project_id: str, days: int, seed: int) -> Path:
    return DEFAULT_DIR / f"ledger-{events}-{project_id}-{days}d-s{seed}.db"


def build_ledger(
    path: Path,
    events: int = 1_000_000,
    *,
    project_id: str = "bench",
    days: int = 60,
    seed: int = 1,
    max_age_hours: float | None = 6.0,
    force: bool = False,
    verbose: bool = False,
) -> str:
    """Make (or reuse) a ledger at ``path`` holding ``events`` events of ``project_id``.

    Returns its SQLite URL. A file already holding exactly ``events`` events
    of the project is reused, unless ``force`` or its newest event is more
    than ``max_age_hours`` old (None: any age): the periods "last 24 hours"
    etc. need events up to now.
    """
    path = Path(path).expanduser().resolve()
    url = sqlite_url(path)
    if not force and _reusable(path, events, project_id, max_age_hours):
        _say(verbose, f"reusing {path} ({events:,} events)")
        return url
    for stale in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        stale.unlink(missing_ok=True)
    path.parent.mkdir(parents=True, exist_ok=True)

    started = time.perf_counter()
    now = now_micros()
    rows = Generator(project_id, days, seed, now)
    verify_rows(rows.sample(VERIFY_SAMPLE), project_id)
    _say(verbose, f"  sample of {VERIFY_SAMPLE} rows matches record_events")

    ledger = Ledger.open(url, synchronous="OFF")
    try:
        ledger.ensure_project(project_id, f"{project_id} ({events:,} generated events)")
        index_sql = _drop_event_indexes(ledger)
        charges: dict[tuple[str, str], Decimal] = defaultdict(lambda: ZERO)
        user_col, cost_col = COLUMNS.index("user_id"), COLUMNS.index("total_cost")
        written = 0
        for chunk in _prefetched(rows.chunks(events, CHUNK)):
            with ledger.writing() as connection:
                connection.exec_driver_sql("PRAGMA cache_size=-262144")  # 256 MiB
                connection.exec_driver_sql(_INSERT, chunk)
            for row in chunk:
                user = (project_id, row[user_col])
                charges[user] = MONEY_CONTEXT.add(charges[user], Decimal(row[cost_col]))
            written += len(chunk)
            _say(verbose, f"  {written:>9,} rows  {time.perf_counter() - started:6.1f} s")
        with ledger.writing() as connection:
            for statement in index_sql:
                connection.exec_driver_sql(statement)
            add_usages(connection, "sqlite", charges, now)
        _say(verbose, f"  indexes made  {time.perf_counter() - started:6.1f} s")
        with ledger.engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        ledger.close()
    if not _reusable(path, events, project_id, None):
        raise RuntimeError(f"{path} does not hold {events:,} events of {project_id!r}")
    return url


def _prefetched(chunks: Iterator[list[Row]]) -> Iterator[list[Row]]:
    """``chunks``, each made in a worker thread while the one before is inserted
    (the driver lets go of the GIL while SQLite works)."""
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(next, chunks, None)
        while (chunk := pending.result()) is not None:
            pending = pool.submit(next, chunks, None)
            yield chunk


def _say(verbose: bool, text: str) -> None:
    if verbose:
        print(text, flush=True)


def _reusable(path: Path, events: int, project_id: str, max_age_hours: float | None) -> bool:
    if not path.is_file():
        return False
    try:
        with sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True) as db:
            count, newest = db.execute(
                "SELECT count(*), max(ts) FROM events WHERE project_id = ?", (project_id,)
            ).fetchone()
    except sqlite3.Error:
        return False
    if count != events:
        return False
    if max_age_hours is None or newest is None:
        return True
    return bool(now_micros() - newest <= max_age_hours * 3600 * MICROS)


def _drop_event_indexes(ledger: Ledger) -> list[str]:
    """Drop the events' secondary indexes; return the statements that make them again."""
    with ledger.writing() as connection:
        found = connection.exec_driver_sql(
            "SELECT name, sql FROM sqlite_master "
            "WHERE type = 'index' AND tbl_name = 'events' AND sql IS NOT NULL"
        ).all()
        for name, _ in found:
            connection.exec_driver_sql(f'DROP INDEX "{name}"')
    return [sql for _, sql in found]


class Generator:
    """Event rows (tuples in ``COLUMNS`` order), oldest first, all drawn from one seed."""

    def __init__(self, project_id: str, days: int, seed: int, now: int) -> None:
        self.project_id = project_id
        self.span = days * 86_400 * MICROS
        self.now = now
        self.seed = seed
        self.users = [f"user-{rank:05d}" for rank in range(1, USERS + 1)]
        self.user_weights = _cumulative(1 / rank**USER_SKEW for rank in range(1, USERS + 1))
        self.agent_weights = _cumulative(1 / (rank + 2) for rank in range(len(AGENTS)))
        self.models = list(MODELS)
        self.model_weights = _cumulative(MODEL_WEIGHTS)

    def chunks(self, count: int, size: int) -> Iterator[list[Row]]:
        """``count`` rows in time order, ``size`` at a time."""
        rng = random.Random(self.seed)
        times = self._times(rng, count)
        for start in range(0, count, size):
            yield self._rows(rng, times[start : start + size])

    def sample(self, count: int) -> list[Row]:
        """Rows of every kind from their own seed (for the check against record_events)."""
        rng = random.Random(self.seed + 1_000_003)
        return self._rows(rng, self._times(rng, count))

    def _times(self, rng: random.Random, count: int) -> list[int]:
        # Density rising linearly towards now: inverse CDF of (1 + g*x) on [0, 1].
        g = RECENT_GROWTH
        start = self.now - self.span
        span = self.span
        sqrt = math.sqrt
        times = [
            start + int(span * ((sqrt(1 + g * (2 + g) * rng.random()) - 1) / g))
            for _ in range(count)
        ]
        times.sort()
        return times

    def _rows(self, rng: random.Random, times: Sequence[int]) -> list[Row]:
        n = len(times)
        users = rng.choices(self.users, cum_weights=self.user_weights, k=n)
        agents = rng.choices(AGENTS, cum_weights=self.agent_weights, k=n)
        models = rng.choices(self.models, cum_weights=self.model_weights, k=n)
        kinds = rng.choices((0, 1, 2), weights=(70, 20, 10), k=n)
        project_id, now = self.project_id, self.now
        rand, randrange, getrandbits, choice = (
            rng.random,
            rng.randrange,
            rng.getrandbits,
            rng.choice,
        )
        rows: list[Row] = []
        append = rows.append
        for ts, user, agent, model, kind in zip(times, users, agents, models, kinds, strict=True):
            event_id = _uuid7(ts // 1000, getrandbits(74))
            recorded_at = min(ts + randrange(20_000, 3_000_000), now)
            if kind == 0:  # token_based_pay
                tokens_in = int(10 * 2000 ** rand())
                tokens_out = int(10 * 2000 ** rand())
                price_in, price_out, cached_price, write_price = MODELS[model]
                cached = writes = 0
                unpriced = rand() < 0.001
                if unpriced:
                    price_in = price_out = ZERO
                    cached_price = write_price = None
                    metadata = json.dumps({"unpriced": True}, separators=(",", ":"))
                elif cached_price is not None and rand() < 0.15:
                    cached = randrange(0, tokens_in + 1)
                    if write_price is not None and rand() < 0.3:
                        writes = randrange(0, 4_000)
                    metadata = "{}"
                else:
                    cached_price = write_price = None
                    metadata = f'{{"session":"s-{randrange(1_000_000):06d}"}}'
                cost = token_cost(
                    tokens_in,
                    tokens_out,
                    price_in,
                    price_out,
                    cached,
                    writes,
                    cached_price,
                    write_price,
                )
                append(
                    (
                        event_id,
                        project_id,
                        agent,
                        user,
                        "token_based_pay",
                        "token_usage",
                        ts,
                        recorded_at,
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
                        metadata,
                        cached,
                        writes,
                        None if cached_price is None else money_text(cached_price),
                        None if write_price is None else money_text(write_price),
                        unpriced,
                    )
                )
            elif kind == 1:  # api_request_pay: a tool call, some naming their model
                calls = 1 if rand() < 0.8 else randrange(2, 20)
                unit_price = choice(UNIT_PRICES)
                tool = choice(TOOLS)
                named = rand() < 0.5
                metadata = (
                    f'{{"tool":"{tool}","model":"{model}"}}' if named else f'{{"tool":"{tool}"}}'
                )
                append(
                    (
                        event_id,
                        project_id,
                        agent,
                        user,
                        "api_request_pay",
                        "api_call",
                        ts,
                        recorded_at,
                        calls,
                        0,
                        0,
                        money_text(unit_price),
                        None,
                        None,
                        None,
                        None,
                        money_text(api_request_cost(calls, unit_price)),
                        model if named else None,
                        metadata,
                        0,
                        0,
                        None,
                        None,
                        False,
                    )
                )
            else:  # instant_pay: up to 10 decimal places
                places = randrange(2, 11)  # 0.01 .. 0.1 with 2 to 10 decimal places
                amount = Decimal(randrange(10 ** (places - 2), 10 ** (places - 1) + 1))
                amount = amount.scaleb(-places)
                amount_text = money_text(amount)
                append(
                    (
                        event_id,
                        project_id,
                        agent,
                        user,
                        "instant_pay",
                        "instant_payment",
                        ts,
                        recorded_at,
                        0,
                        0,
                        0,
                        None,
                        None,
                        None,
                        amount_text,
                        choice(INSTANT_REASONS),
                        amount_text,
                        None,
                        "{}",
                        0,
                        0,
                        None,
                        None,
                        False,
                    )
                )
        return rows


def _cumulative(weights: Any) -> list[float]:
    total = 0.0
    out = []
    for weight in weights:
        total += weight
        out.append(total)
    return out


def _uuid7(millis: int, rand: int) -> str:
    """A UUIDv7 text as ``agentmeter.core.ids.new_event_id`` makes, at a given time."""
    value = (
        (millis & 0xFFFF_FFFF_FFFF) << 80
        | 0x7 << 76
        | ((rand >> 62) & 0xFFF) << 64
        | 0x2 << 62
        | (rand & ((1 << 62) - 1))
    )
    text = f"{value:032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def _event_of(row: Row) -> MeterEvent:
    """The pydantic event a generated row stands for."""
    get = dict(zip(COLUMNS, row, strict=True)).__getitem__
    common: dict[str, Any] = {
        "id": get("id"),
        "project_id": get("project_id"),
        "agent_id": get("agent_id"),
        "user_id": get("user_id"),
        "timestamp": from_micros(get("ts")),
        "metadata": json.loads(get("metadata")),
    }
    kind = get("payment_type")
    if kind == "api_request_pay":
        return APIRequestPayEvent(
            **common, api_calls=get("api_calls"), unit_price=Decimal(get("unit_price"))
        )
    if kind == "instant_pay":
        return InstantPayEvent(
            **common, amount=Decimal(get("amount")), description=get("description")
        )
    optional = {
        name: Decimal(get(name))
        for name in ("cached_input_token_price", "cache_write_token_price")
        if get(name) is not None
    }
    return TokenBasedPayEvent(
        **common,
        **optional,
        tokens_in=get("tokens_in"),
        tokens_out=get("tokens_out"),
        input_token_price=Decimal(get("input_token_price")),
        output_token_price=Decimal(get("output_token_price")),
        cached_tokens_in=get("cached_tokens_in"),
        cache_write_tokens=get("cache_write_tokens"),
        model=get("model"),
    )


def verify_rows(rows: Sequence[Row], project_id: str) -> None:
    """Store ``rows``' events through ``record_events`` and check every column matches."""
    ledger = Ledger.open("sqlite://")
    try:
        ledger.ensure_project(project_id, project_id)
        ledger.record_events([_event_of(row) for row in rows])
        with ledger.reading() as connection:
            stored = {
                item[0]: tuple(item)
                for item in connection.exec_driver_sql(f"SELECT {', '.join(COLUMNS)} FROM events")
            }
    finally:
        ledger.close()
    skip = COLUMNS.index("recorded_at")  # record_events stamps its own
    for row in rows:
        real = stored[row[0]]
        for index, name in enumerate(COLUMNS):
            mine, theirs = row[index], real[index]
            if index != skip and (mine != theirs or type(mine) is not type(theirs)):
                if isinstance(mine, bool) and theirs == int(mine):
                    continue  # SQLite stores a bool as 0/1, as record_events does
                raise AssertionError(f"{name} of {row[0]}: generated {mine!r}, stored {theirs!r}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--project", default="bench")
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--path", type=Path, help="default: ~/.cache/agentmeter-bench/...")
    parser.add_argument("--force", action="store_true", help="rebuild even if reusable")
    args = parser.parse_args(argv)
    path = args.path or default_path(args.events, args.project, args.days, args.seed)
    started = time.perf_counter()
    url = build_ledger(
        path,
        args.events,
        project_id=args.project,
        days=args.days,
        seed=args.seed,
        force=args.force,
        verbose=True,
    )
    elapsed = time.perf_counter() - started
    size = Path(path).stat().st_size / 2**20
    print(f"{url}: {args.events:,} events, {size:,.0f} MiB, {elapsed:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
