"""``agentmeter import FILE``: load an export (CSV, JSON) or a CloudEvents file into a ledger.

The file's records (:mod:`agentmeter.cli.import_reader`) go in batches
through the client's ``send_batch``, the batch endpoint a server or the
embedded ledger answers, so every event is validated and stored exactly as
if it were recorded now, each id once: importing a file twice stores
nothing the second time and reports every event as a duplicate.

Speed: the reader builds plain dicts (no event models), and a few batches
are in flight at once on a server (``--concurrency``), so reading and
encoding the next batch overlaps the server's work on the last one.
"""

from __future__ import annotations

import sys
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from ..client import AgentMeterClient
from ..models import BatchResult
from .common import EXIT_API, project_of, uses_client
from .import_reader import (
    FORMATS,
    ImportFileError,
    Item,
    count_records,
    detect_format,
    read_items,
    where,
)
from .output import count_text, plural, progress_bar

MAX_BATCH = 1000

EXAMPLES = """
\b
Examples:
  agentmeter events --all --format csv -o usage.csv --db sqlite:///old.db
  agentmeter import usage.csv --db sqlite:///new.db
  agentmeter import usage.jsonl --base-url http://127.0.0.1:8787 --api-key $KEY
  agentmeter import export.json --into-project proj_2 --batch-size 500
"""


@dataclass
class Rejection:
    position: int
    event_id: str | None
    reason: str


@dataclass
class Summary:
    """What an import did: counts, and each rejected record with its place."""

    read: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: list[Rejection] = field(default_factory=list)

    def add(self, positions: list[int], result: BatchResult) -> None:
        self.accepted += result.accepted
        self.duplicates += result.duplicates
        for item in result.rejected:
            self.rejected.append(Rejection(positions[item.index], item.id, item.error.message))


@click.command("import", epilog=EXAMPLES)
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default="auto",
    show_default=True,
    help="The file's format; auto: by its extension and first record.",
)
@click.option(
    "--batch-size",
    type=click.IntRange(1, MAX_BATCH),
    default=MAX_BATCH,
    show_default=True,
    help="Events per request.",
)
@click.option(
    "--concurrency",
    type=click.IntRange(1, 16),
    default=2,
    show_default=True,
    help="Batches in flight at once on a server (the embedded ledger takes one at a time).",
)
@click.option(
    "--into-project",
    metavar="ID",
    help="Put every event into this project (else each keeps its own project_id).",
)
@uses_client
def import_events(
    client: AgentMeterClient,
    file: Path,
    fmt: str,
    batch_size: int,
    concurrency: int,
    into_project: str | None,
) -> None:
    """Load events from FILE (a CSV or JSON export of `agentmeter events`, or CloudEvents).

    Idempotent by event id: a second import of the same file stores nothing and
    counts every event as a duplicate. Prints accepted, duplicates and each
    rejected record (file line for CSV and JSON Lines, array index for JSON)
    with the reason; exits 1 when any record was rejected.
    """
    try:
        chosen = detect_format(file) if fmt == "auto" else fmt
        total = count_records(file, chosen)
        default_project = project_of(client)
        on_server = client.transport.describe.startswith(("http://", "https://"))
        started = time.perf_counter()
        with progress_bar() as progress:
            task = progress.add_task(f"importing {file.name}", total=total)
            items = read_items(file, chosen)
            summary = send_all(
                client,
                _with_project(items, into_project, default_project),
                batch_size,
                concurrency if on_server else 1,
                lambda done: progress.advance(task, done),
            )
    except ImportFileError as exc:
        raise click.UsageError(f"{file}: {exc}") from None
    except UnicodeDecodeError:
        raise click.UsageError(f"{file}: not UTF-8 text") from None
    _print_summary(file, chosen, summary, time.perf_counter() - started)
    if summary.rejected:
        sys.exit(EXIT_API)


def _with_project(
    items: Iterable[Item], into_project: str | None, default_project: str | None
) -> Iterator[Item]:
    for item in items:
        event = item.event
        if event is not None:
            if into_project:
                event["project_id"] = into_project
            elif not event.get("project_id") and default_project:
                event["project_id"] = default_project
        yield item


def send_all(
    client: AgentMeterClient,
    items: Iterable[Item],
    batch_size: int,
    concurrency: int,
    advance: Callable[[int], None] = lambda done: None,
) -> Summary:
    """Send every event of ``items`` in batches, ``concurrency`` of them at once."""
    summary = Summary()
    in_flight: deque[tuple[Future[BatchResult], list[int]]] = deque()

    def settle(oldest: tuple[Future[BatchResult], list[int]]) -> None:
        future, positions = oldest
        summary.add(positions, future.result())
        advance(len(positions))

    with ThreadPoolExecutor(concurrency, thread_name_prefix="agentmeter-import") as pool:
        for positions, events in _batches(items, batch_size, summary, advance):
            in_flight.append((pool.submit(client.send_batch, events), positions))
            while len(in_flight) > concurrency:
                settle(in_flight.popleft())
        while in_flight:
            settle(in_flight.popleft())
    summary.rejected.sort(key=lambda rejection: rejection.position)
    return summary


def _batches(
    items: Iterable[Item], size: int, summary: Summary, advance: Callable[[int], None]
) -> Iterator[tuple[list[int], list[dict[str, Any]]]]:
    """Batches of (positions, events); unreadable records go straight to ``summary``."""
    positions: list[int] = []
    events: list[dict[str, Any]] = []
    for item in items:
        summary.read += 1
        if item.event is None:
            summary.rejected.append(Rejection(item.position, None, item.error or "unreadable"))
            advance(1)
            continue
        positions.append(item.position)
        events.append(item.event)
        if len(events) == size:
            yield positions, events
            positions, events = [], []
    if events:
        yield positions, events


def _print_summary(file: Path, fmt: str, summary: Summary, seconds: float) -> None:
    # A rate over less than a second says more about start-up than about speed.
    rate = f", {count_text(round(summary.read / seconds))} events/s" if seconds >= 1 else ""
    click.echo(
        f"{file.name} ({fmt}): {plural(summary.read, 'record')} read in {seconds:.1f} s{rate}"
    )
    width = len(count_text(max(summary.read, 1)))
    for label, value in (
        ("accepted", summary.accepted),
        ("duplicates", summary.duplicates),
        ("rejected", len(summary.rejected)),
    ):
        click.echo(f"  {label + ':':<12}{count_text(value):>{width}}")
    for rejection in summary.rejected:
        named = f" (id {rejection.event_id})" if rejection.event_id else ""
        click.echo(f"  {where(fmt, rejection.position)}{named}: {rejection.reason}")
