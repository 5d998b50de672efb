"""``agentmeter billing create|list|update``: billing records of a project.

Without ``--amount``, ``create`` lets the server sum the costs of the
period's events (``since <= time < until``) and round the sum to cents,
half-even, once. Events recorded at 0 for want of a price are not in that
sum: ``create`` names their models on stderr, and still makes the record.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import click

from ..client import AgentMeterClient
from ..errors import AgentMeterError, NotFoundError
from ..models import BillingRecord, BillingStatus
from .common import one_line, reads_client, secrets_of, uses_client
from .output import (
    Column,
    TextTable,
    align_money,
    dump_json,
    format_option,
    now_text,
    output_option,
    plural,
    print_table,
    time_text,
    write_csv,
    write_json,
)
from .params import MOMENT, MONEY, TIME_HELP, check_range
from .prices import PRICE_THEM, unpriced_models, unpriced_summary
from .windows import time_shorthands

STATUSES = [status.value for status in BillingStatus]
CSV_COLUMNS = ("id", "project_id", "period_start", "period_end", "amount", "status", "created_at")

EXAMPLES = """
\b
Examples:
  agentmeter billing create --since 2025-01-01 --until 2025-02-01
  agentmeter billing create --since 2025-01-01 --until 2025-02-01 --amount 120.00
  agentmeter billing list --format csv -o bills.csv
  agentmeter billing update bill_123 --status paid
"""


def _records_table(records: Sequence[BillingRecord]) -> TextTable:
    columns = [
        Column("Id"),
        Column("Period start (UTC)"),
        Column("Period end (UTC, exclusive)"),
        Column("Amount", numeric=True),
        Column("Status"),
    ]
    table = TextTable(columns)
    for record, amount in zip(records, align_money([r.amount for r in records]), strict=True):
        table.add_row(
            record.id,
            time_text(record.period_start),
            time_text(record.period_end),
            amount,
            record.status.value,
        )
    return table


def _show(record: BillingRecord, fmt: str) -> None:
    if fmt == "json":
        click.echo(dump_json(record.to_dict()))
    else:
        print_table(_records_table([record]), None)


@click.group(epilog=EXAMPLES)
def billing() -> None:
    """Make, list and settle billing records."""


@billing.command(
    "create",
    epilog="\b\nExamples:\n  agentmeter billing create --since 2025-01-01 --until 2025-02-01"
    "\n  agentmeter billing create --month 2025-01",
)
@click.option("--since", type=MOMENT, help=f"Period start, inclusive: {TIME_HELP}.")
@click.option("--until", type=MOMENT, help="Period end, exclusive.")
@time_shorthands(required=True)
@click.option(
    "--amount",
    type=MONEY,
    help="The amount to bill (default: the period's event costs, rounded to cents).",
)
@click.option("--status", type=click.Choice(STATUSES), default="pending", show_default=True)
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@uses_client
def billing_create(
    client: AgentMeterClient,
    since: datetime,
    until: datetime,
    amount: Decimal | None,
    status: str,
    fmt: str,
) -> None:
    """Create a billing record for a period."""
    check_range(since, until)
    _show(client.create_billing_record(None, since, until, amount, status), fmt)
    _warn_of_unpriced_events(client, since, until)


def _warn_of_unpriced_events(client: AgentMeterClient, since: datetime, until: datetime) -> None:
    """On stderr: the models of the period's events recorded at 0 for want of a price.

    The record is made already, so a failure here is a warning, never the
    command's error (a retry would make a second record)."""
    try:
        found = unpriced_models(client, since, until)
    except NotFoundError:
        return  # a server without GET /api/prices/missing (before 0.3)
    except AgentMeterError as exc:
        message = one_line(str(exc), secrets_of(client.config.api_key_value))
        click.echo(f"warning: could not look for unpriced events: {message}", err=True)
        return
    if not found:
        return
    lines = [
        f"warning: {plural(len(found), 'model')} of this period had no price: "
        "their events were recorded at 0 and are not in the amount",
        *(f"  {line}" for line in unpriced_summary(found)),
        f"  {PRICE_THEM}; later events are then priced",
    ]
    sys.stdout.flush()  # the record first, where both streams go to one place
    click.echo("\n".join(lines), err=True)


@billing.command(
    "list",
    epilog="\b\nExamples:\n  agentmeter billing list\n  agentmeter billing list --format csv",
)
@click.option("--status", type=click.Choice(STATUSES), help="Only records in this status.")
@format_option()
@output_option()
@reads_client
def billing_list(
    client: AgentMeterClient, status: str | None, fmt: str, output: Path | None
) -> None:
    """List the project's billing records."""
    records = client.list_billing_records()
    if status is not None:
        records = [record for record in records if record.status.value == status]
    if fmt == "csv":
        rows = [[getattr(record, column) for column in CSV_COLUMNS] for record in records]
        write_csv(output, CSV_COLUMNS, rows, plural(len(records), "billing record"))
    elif fmt == "json":
        items = [record.to_dict() for record in records]
        document = {"generated_at": now_text(), "billing_records": items}
        write_json(output, document, plural(len(records), "billing record"))
    else:
        footer = [plural(len(records), "billing record")]
        print_table(_records_table(records), output, footer=footer, what=footer[0])


@billing.command(
    "update", epilog="\b\nExamples:\n  agentmeter billing update bill_123 --status paid"
)
@click.argument("record_id", metavar="ID")
@click.option("--status", type=click.Choice(STATUSES), help="New status.")
@click.option("--amount", type=MONEY, help="New amount.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@uses_client
def billing_update(
    client: AgentMeterClient,
    record_id: str,
    status: str | None,
    amount: Decimal | None,
    fmt: str,
) -> None:
    """Change a record's status (pending, invoiced, paid, void) or amount."""
    if status is None and amount is None:
        raise click.UsageError("give --status or --amount (or both)")
    _show(client.update_billing_record(record_id, status=status, amount=amount), fmt)
