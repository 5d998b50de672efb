"""``agentmeter prices list|set|delete|import|markup|missing``: a project's model prices.

Prices are per 1,000,000 tokens, as providers list them. A project's own
price of a model goes in front of the catalog's (see docs/pricing.md);
``list --model M`` shows both, each with its source. ``missing`` lists the
models whose events were recorded at 0 for want of a price.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import click

from ..client import AgentMeterClient
from ..core.catalog import PER_MILLION, catalog_version, model_prices
from ..errors import AgentMeterValidationError
from ..models import ModelPrice, UnpricedModel
from ..pricing import money_text, to_money
from .common import reads_client, uses_client
from .output import (
    Column,
    TextTable,
    count_text,
    csv_writer,
    destination,
    dump_json,
    format_option,
    money_plain,
    optional_time_text,
    output_option,
    plural,
    print_table,
    write_csv,
    write_json,
)
from .params import MOMENT, MONEY, TIME_HELP
from .windows import time_shorthands

EXAMPLES = """
\b
Examples:
  agentmeter prices list
  agentmeter prices list --model gpt-4o --format json
  agentmeter prices set house-model --input 3 --output 12 --cached-input 0.3
  agentmeter prices delete house-model
  agentmeter prices import prices.csv
  agentmeter prices markup 20
  agentmeter prices missing --start-date 2025-01-01
"""
COLUMNS = ("model", "source", "input", "output", "cached_input", "cache_write")
MISSING_COLUMNS = ("model", "events", "tokens_in", "tokens_out", "first_seen", "last_seen")
NO_MODEL = "(no model)"


@click.group(epilog=EXAMPLES)
def prices() -> None:
    """A project's own model prices (per 1M tokens), in front of the catalog."""


@prices.command(
    "list", epilog="\b\nExamples:\n  agentmeter prices list --model gpt-4o --format json"
)
@click.option("--model", help="Show this model's catalog price beside the project's rows.")
@format_option()
@output_option()
@reads_client
def prices_list(client: AgentMeterClient, model: str | None, fmt: str, output: Path | None) -> None:
    """The project's own prices (and the catalog's for --model), with their source."""
    table = client.get_prices()
    rows = [_project_row(row) for row in table.prices if model is None or row.model == model]
    if model is not None:
        rows.append(_catalog_row(model))
    footer = [f"markup on catalog prices: {money_text(table.markup_percent)} %"]
    footer.append(f"catalog: {catalog_version()}")
    _show(rows, fmt, output, footer)


@prices.command(
    "set", epilog="\b\nExamples:\n  agentmeter prices set house-model --input 3 --output 12"
)
@click.argument("model")
@click.option("--input", "input_price", type=MONEY, required=True, help="Per 1M input tokens.")
@click.option("--output", "output_price", type=MONEY, required=True, help="Per 1M output tokens.")
@click.option("--cached-input", type=MONEY, help="Per 1M cached input tokens.")
@click.option("--cache-write", type=MONEY, help="Per 1M cache-write tokens.")
@uses_client
def prices_set(
    client: AgentMeterClient,
    model: str,
    input_price: Decimal,
    output_price: Decimal,
    cached_input: Decimal | None,
    cache_write: Decimal | None,
) -> None:
    """Price MODEL for the project (replaces its row, if any)."""
    row = client.set_price(model, input_price, output_price, cached_input, cache_write)
    click.echo(f"{row.model}: {money_text(row.input)} in, {money_text(row.output)} out per 1M")


@prices.command("delete", epilog="\b\nExamples:\n  agentmeter prices delete house-model")
@click.argument("model")
@uses_client
def prices_delete(client: AgentMeterClient, model: str) -> None:
    """Remove the project's price of MODEL (the catalog's applies again)."""
    client.delete_price(model)
    click.echo(f"{model}: deleted")


@prices.command("import", epilog="\b\nExamples:\n  agentmeter prices import prices.csv")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@uses_client
def prices_import(client: AgentMeterClient, file: Path) -> None:
    """Set every row of a CSV (model,input,output[,cached_input,cache_write]).

    Every row is checked before any is stored: one bad row stores nothing."""
    rows = _read_csv(file)
    for model, (input_price, output_price, cached_input, cache_write) in rows:
        client.set_price(model, input_price, output_price, cached_input, cache_write)
    click.echo(f"{len(rows)} prices set")


@prices.command("markup", epilog="\b\nExamples:\n  agentmeter prices markup 20")
@click.argument("percent", type=MONEY)
@uses_client
def prices_markup(client: AgentMeterClient, percent: Decimal) -> None:
    """Charge catalog prices plus PERCENT % (not the project's own prices)."""
    table = client.set_markup(percent)
    click.echo(f"markup on catalog prices: {money_text(table.markup_percent)} %")


@prices.command(
    "missing",
    epilog="\b\nExamples:\n  agentmeter prices missing --start-date 2025-01-01 --format json",
)
@click.option(
    "--start-date", "--since", "start", type=MOMENT, help=f"Start, inclusive: {TIME_HELP}."
)
@click.option("--end-date", "--until", "end", type=MOMENT, help="End, exclusive.")
@time_shorthands(since="start", until="end")
@format_option()
@output_option()
@reads_client
def prices_missing(
    client: AgentMeterClient,
    start: datetime | None,
    end: datetime | None,
    fmt: str,
    output: Path | None,
) -> None:
    """Models whose events were recorded at 0 for want of a price, with their tokens."""
    if start is not None and end is not None and end <= start:
        raise click.UsageError("--end-date must be after --start-date")
    found = unpriced_models(client, start, end)
    what = plural(len(found), "unpriced model")
    if fmt == "csv":
        rows = [[_missing_cell(model, column) for column in MISSING_COLUMNS] for model in found]
        write_csv(output, MISSING_COLUMNS, rows, what)
    elif fmt == "json":
        write_json(output, {"models": [model.to_dict() for model in found]}, what)
    elif not found:
        with destination(output) as stream:
            stream.write("no unpriced events\n")
    else:
        table = TextTable([Column(name, numeric=name in _COUNTS) for name in MISSING_COLUMNS])
        for model in found:
            table.add_row(*(_shown(_missing_cell(model, column)) for column in MISSING_COLUMNS))
        print_table(table, output, [what, PRICE_THEM], what)


PRICE_THEM = "price each with: agentmeter prices set MODEL --input X --output Y (per 1M tokens)"
_COUNTS = ("events", "tokens_in", "tokens_out")


def _shown(cell: Any) -> str:
    """A cell as the table shows it: counts with thousands separators."""
    if isinstance(cell, int):
        return count_text(cell)
    return "" if cell is None else str(cell)


def unpriced_models(
    client: AgentMeterClient, start: datetime | None, end: datetime | None
) -> list[UnpricedModel]:
    """The project's unpriced events by model (``start <= time < end``)."""
    return client.get_missing_prices(None, start, end)


def _missing_cell(model: UnpricedModel, column: str) -> Any:
    if column == "model":
        return model.model if model.model is not None else NO_MODEL
    if column in ("first_seen", "last_seen"):
        return optional_time_text(getattr(model, column))
    return getattr(model, column)


def unpriced_summary(found: Sequence[UnpricedModel]) -> list[str]:
    """One line per model: ``gpt-x: 3 events, 1,200 tokens in, 300 out``."""
    return [
        f"{model.model if model.model is not None else NO_MODEL}: "
        f"{plural(model.events, 'event')}, {count_text(model.tokens_in)} tokens in, "
        f"{count_text(model.tokens_out)} out"
        for model in found
    ]


# ------------------------------------------------------------ rows


def _project_row(row: ModelPrice) -> dict[str, Any]:
    return {
        "model": row.model,
        "source": "project",
        "input": row.input,
        "output": row.output,
        "cached_input": row.cached_input,
        "cache_write": row.cache_write,
    }


def _catalog_row(model: str) -> dict[str, Any]:
    listed = model_prices(model)
    if listed is None:
        return dict.fromkeys(COLUMNS) | {"model": model, "source": "unknown to the catalog"}
    per_million = [
        None if value is None else value * PER_MILLION  # per token -> per 1M
        for value in (listed.input, listed.output, listed.cached_input, listed.cache_write)
    ]
    return dict(zip(COLUMNS, [model, f"catalog ({listed.model})", *per_million], strict=True))


def _text(value: Any) -> str:
    if value is None:
        return ""
    return money_plain(value) if isinstance(value, Decimal) else str(value)


def _show(rows: list[dict[str, Any]], fmt: str, output: Path | None, footer: list[str]) -> None:
    if fmt == "json":
        with destination(output, what=f"{len(rows)} prices") as stream:
            document = [{key: _text(value) or None for key, value in row.items()} for row in rows]
            stream.write(dump_json(document) + "\n")
        return
    if fmt == "csv":
        with destination(output, newline="", what=f"{len(rows)} prices") as stream:
            writer = csv_writer(stream)
            writer.writerow(COLUMNS)
            writer.writerows([_text(row[column]) for column in COLUMNS] for row in rows)
        return
    from rich.table import Table  # the table format only

    table = Table(*COLUMNS, title="Model prices per 1M tokens")
    for row in rows:
        table.add_row(*(_text(row[column]) for column in COLUMNS))
    print_table(table, output, footer)


PriceCells = tuple[Decimal, Decimal, Decimal | None, Decimal | None]


def _read_csv(file: Path) -> list[tuple[str, PriceCells]]:
    with file.open(newline="", encoding="utf-8") as stream:
        records = list(csv.reader(stream))
    if records and records[0] and records[0][0].strip().lower() == "model":
        records = records[1:]  # a header
    rows = []
    for number, record in enumerate(records, start=1):
        if not any(cell.strip() for cell in record):
            continue
        if not 3 <= len(record) <= 5:
            raise AgentMeterValidationError.for_field(
                f"row {number}", "needs model,input,output[,cached_input,cache_write]"
            )
        cells = [cell.strip() for cell in record] + [""] * (5 - len(record))
        values = [
            to_money(cell, f"row {number} {name}") if cell else None
            for name, cell in zip(COLUMNS[2:], cells[1:], strict=True)
        ]
        price_in, price_out, cached_input, cache_write = values
        if price_in is None or price_out is None:
            raise AgentMeterValidationError.for_field(f"row {number}", "needs input and output")
        rows.append((cells[0], (price_in, price_out, cached_input, cache_write)))
    return rows
