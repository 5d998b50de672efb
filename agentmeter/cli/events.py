"""``agentmeter events``: list or export stored events, newest first.

The server hands out at most 1,000 events per request, so longer exports
are fetched page by page (with a progress bar on a terminal) and streamed:
CSV and JSON rows are written as they arrive. An event that shifts into a
later page while the export runs (new events arrive at the front) is
written once.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import click

from ..client import AgentMeterClient
from ..models import MeterEvent, PaymentType
from .cloudevent_export import FORMATS as CLOUDEVENT_FORMATS
from .cloudevent_export import WRITERS as CLOUDEVENT_WRITERS
from .common import project_of, reads_client
from .output import (
    Column,
    TextTable,
    align_money,
    confirm_written,
    count_text,
    csv_writer,
    destination,
    dump_json,
    format_option,
    now_text,
    optional_time_text,
    output_option,
    plural,
    print_table,
    progress_bar,
    time_text,
    wire_value,
)
from .params import MOMENT, TIME_HELP, check_range, end_or_now
from .windows import time_shorthands

PAGE = 1000
CSV_COLUMNS = (
    "id",
    "timestamp",
    "project_id",
    "agent_id",
    "user_id",
    "payment_type",
    "event_type",
    "api_calls",
    "tokens_in",
    "tokens_out",
    "unit_price",
    "input_token_price",
    "output_token_price",
    "amount",
    "description",
    "total_cost",
    "metadata",
    # Added for `agentmeter import` (after the first columns, which keep their places):
    # with them a row rebuilds its event, and its cost, exactly.
    "model",
    "cached_tokens_in",
    "cache_write_tokens",
    "cached_input_token_price",
    "cache_write_token_price",
)

EXAMPLES = """
\b
Examples:
  agentmeter events --db sqlite:///ledger.db
  agentmeter events --user alice --since 24h
  agentmeter events --payment-type token_based_pay --limit 20 --format json
  agentmeter events --all --since 2025-01-01 --until 2025-02-01 --format csv -o jan.csv
  agentmeter events --all --format cloudevents-jsonl -o usage.jsonl   # agentmeter import reads it
"""


def fetch(
    client: AgentMeterClient, limit: int | None, filters: dict[str, Any]
) -> Iterator[MeterEvent]:
    """Up to ``limit`` events (all with None), page by page, each id once."""
    seen: set[str] = set()
    offset = 0
    while limit is None or len(seen) < limit:
        want = PAGE if limit is None else min(PAGE, limit - len(seen))
        page = client.get_events(limit=want, offset=offset, **filters)
        for event in page:
            if event.id not in seen and (limit is None or len(seen) < limit):
                seen.add(event.id)
                yield event
        if len(page) < want:
            return
        offset += len(page)


def _quantity(event: MeterEvent) -> str:
    kind = event.payment_type
    if kind == PaymentType.API_REQUEST_PAY:
        return plural(event["api_calls"], "call")
    if kind == PaymentType.TOKEN_BASED_PAY:
        return f"{count_text(event['tokens_in'])} in / {count_text(event['tokens_out'])} out"
    return str(event.get("description") or "")


def _csv_row(item: dict[str, Any]) -> list[Any]:
    metadata = json.dumps(item.get("metadata") or {}, ensure_ascii=False)
    return [metadata if column == "metadata" else item.get(column) for column in CSV_COLUMNS]


@click.command(epilog=EXAMPLES)
@click.option("--user", "user_id", metavar="USER", help="Only this user's events.")
@click.option("--agent", "agent_id", metavar="AGENT", help="Only this agent's events.")
@click.option(
    "--payment-type",
    type=click.Choice([kind.value for kind in PaymentType]),
    help="Only events of this payment type.",
)
@click.option("--since", type=MOMENT, help=f"Start, inclusive: {TIME_HELP}.")
@click.option("--until", type=MOMENT, help="End, exclusive (same forms as --since).")
@time_shorthands()
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=100,
    show_default=True,
    help="At most this many events (fetched 1,000 per request).",
)
@click.option("--all", "everything", is_flag=True, help="Every matching event (no limit).")
@format_option(
    extra=CLOUDEVENT_FORMATS,
    extra_help="; cloudevents (a JSON array) or "
    "cloudevents-jsonl (a line each) for CloudEvents v1.0",
)
@output_option()
@reads_client
def events(
    client: AgentMeterClient,
    user_id: str | None,
    agent_id: str | None,
    payment_type: str | None,
    since: datetime | None,
    until: datetime | None,
    limit: int,
    everything: bool,
    fmt: str,
    output: Path | None,
) -> None:
    """List stored events, newest first (table), or export them (json, csv, cloudevents)."""
    check_range(since, until)
    if everything and _given("limit"):
        raise click.UsageError("give either --all or --limit, not both")
    filters: dict[str, Any] = {
        "user_id": user_id,
        "agent_id": agent_id,
        "payment_type": payment_type,
        "start_date": since,
        "end_date": end_or_now(until),
    }
    cap = None if everything else limit
    with progress_bar() as progress:
        task = progress.add_task("fetching events", total=cap)
        stream = fetch(client, cap, filters)

        def counted() -> Iterator[MeterEvent]:
            for event in stream:
                progress.advance(task)
                yield event

        if fmt == "table":
            found = list(counted())
        else:
            query = {
                "project_id": project_of(client),
                **{key: value for key, value in filters.items() if key.endswith("_id")},
                "payment_type": payment_type,
                "since": optional_time_text(since),
                "until": optional_time_text(until),
                "limit": cap,
            }
            newline = "" if fmt == "csv" else None
            with destination(output, newline=newline, what=None) as out:
                count = _WRITERS[fmt](out, counted(), query)
            if output is not None:
                confirm_written(output, plural(count, "event"))
            return
    _print_events(found, output)


def _given(parameter: str) -> bool:
    """Whether the user typed the option (not just its default)."""
    source = click.get_current_context().get_parameter_source(parameter)
    return source not in (None, click.core.ParameterSource.DEFAULT)


def _write_csv(out: IO[str], found: Iterator[MeterEvent], query: dict[str, Any]) -> int:
    writer = csv_writer(out)
    # Python 3.11's writer leaves a cell with a lone "\r" unquoted when lines end
    # in "\n", and a reader then splits the row there: such rows quote every cell.
    careful = csv.writer(out, lineterminator="\n", quoting=csv.QUOTE_ALL)
    writer.writerow(CSV_COLUMNS)
    count = 0
    for event in found:
        row = [wire_value(value) for value in _csv_row(event.to_dict())]
        has_cr = any(isinstance(cell, str) and "\r" in cell for cell in row)
        (careful if has_cr else writer).writerow(row)
        count += 1
    return count


def _write_json(out: IO[str], found: Iterator[MeterEvent], query: dict[str, Any]) -> int:
    """Streamed: the header, then each event as it arrives, then the count."""
    out.write(f'{{\n  "generated_at": {json.dumps(now_text())},\n')
    out.write(f'  "query": {_nested(query, 2)},\n  "events": [')
    count = 0
    for event in found:
        out.write(("," if count else "") + "\n    " + _nested(event.to_dict(), 4))
        count += 1
    out.write(("\n  " if count else "") + f'],\n  "count": {count}\n}}\n')
    return count


_WRITERS = {"csv": _write_csv, "json": _write_json, **CLOUDEVENT_WRITERS}


def _nested(value: Any, indent: int) -> str:
    return dump_json(value).replace("\n", "\n" + " " * indent)


def _print_events(found: list[MeterEvent], output: Path | None) -> None:
    columns = [
        Column("Time (UTC)"),
        Column("Event id"),
        Column("User"),
        Column("Agent"),
        Column("Payment type"),
        Column("Usage"),
        Column("Cost", numeric=True),
    ]
    table = TextTable(columns)
    costs = align_money([event.total_cost for event in found])
    for event, cost in zip(found, costs, strict=True):
        table.add_row(
            time_text(event.timestamp),
            event.id,
            event.user_id,
            event.agent_id,
            event.payment_type.value,
            _quantity(event),
            cost,
        )
    footer = [f"{plural(len(found), 'event')}, newest first"]
    print_table(table, output, footer=footer, what=plural(len(found), "event"))
