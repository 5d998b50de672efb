"""``agentmeter meter get|set|increment|reset``: a user's running usage and budget."""

from __future__ import annotations

from decimal import Decimal

import click

from ..client import AgentMeterClient
from ..models import UserMeter
from ..pricing import money_text
from .common import reads_client, uses_client
from .output import dump_json, key_value_table, money_display, optional_time_text, print_table
from .params import MONEY

EXAMPLES = """
\b
Examples:
  agentmeter meter get --user alice
  agentmeter meter set --user alice --threshold 50
  agentmeter meter increment --user alice --amount 2.5
  agentmeter meter reset --user alice --db sqlite:///ledger.db
"""


def user_option(func: click.decorators.FC) -> click.decorators.FC:
    return click.option("--user", "user_id", required=True, metavar="USER", help="The user.")(func)


def meter_format(func: click.decorators.FC) -> click.decorators.FC:
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(["table", "json"]),
        default="table",
        show_default=True,
    )(func)


def show_meter(meter: UserMeter, fmt: str) -> None:
    if fmt == "json":
        document = meter.to_dict()
        remaining = meter.remaining_budget
        document["remaining_budget"] = money_text(remaining) if remaining is not None else None
        document["usage_percentage"] = money_text(meter.usage_percentage)
        document["last_reset_at"] = optional_time_text(meter.last_reset_at)  # None: never
        click.echo(dump_json(document))
        return
    threshold = meter.threshold_amount
    remaining = meter.remaining_budget
    pairs = [
        ("User", meter.user_id),
        ("Usage", money_display(meter.current_usage)),
        ("Threshold", money_display(threshold) if threshold is not None else "none"),
        ("Remaining", money_display(remaining) if remaining is not None else "unlimited"),
        ("Used", f"{meter.usage_percentage}%" if threshold else "-"),
        ("Last reset (UTC)", optional_time_text(meter.last_reset_at) or "never"),
    ]
    title = f"Meter of {meter.user_id}, project {meter.project_id}"
    print_table(key_value_table(pairs, title=title), None)


@click.group(epilog=EXAMPLES)
def meter() -> None:
    """Read and change a user's meter: usage against a budget threshold."""


@meter.command("get", epilog="\b\nExamples:\n  agentmeter meter get --user alice --format json")
@user_option
@meter_format
@reads_client
def meter_get(client: AgentMeterClient, user_id: str, fmt: str) -> None:
    """Show the user's usage, threshold and what remains."""
    show_meter(client.get_user_meter(user_id), fmt)


@meter.command("set", epilog="\b\nExamples:\n  agentmeter meter set --user alice --threshold 50")
@user_option
@click.option("--threshold", type=MONEY, required=True, help="Budget threshold.")
@meter_format
@uses_client
def meter_set(client: AgentMeterClient, user_id: str, threshold: Decimal, fmt: str) -> None:
    """Set the user's budget threshold."""
    show_meter(client.set_user_meter(threshold, user_id), fmt)


@meter.command(
    "increment", epilog="\b\nExamples:\n  agentmeter meter increment --user alice --amount 2.5"
)
@user_option
@click.option("--amount", type=MONEY, required=True, help="Amount to add.")
@meter_format
@uses_client
def meter_increment(client: AgentMeterClient, user_id: str, amount: Decimal, fmt: str) -> None:
    """Add an amount to the user's usage (no event is recorded)."""
    show_meter(client.increment_user_meter(amount, user_id), fmt)


@meter.command("reset", epilog="\b\nExamples:\n  agentmeter meter reset --user alice")
@user_option
@meter_format
@uses_client
def meter_reset(client: AgentMeterClient, user_id: str, fmt: str) -> None:
    """Set the user's usage back to 0 (events stay in the ledger)."""
    show_meter(client.reset_user_meter(user_id), fmt)
