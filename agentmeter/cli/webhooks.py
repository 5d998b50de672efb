"""``agentmeter webhooks ...`` and ``agentmeter alerts ...``: where alerts go, and when they fire.

A webhook endpoint receives the project's events of the types it names,
signed with its secret (Standard Webhooks). The secret is shown once, by
``webhooks add``: store it then. ``alerts`` sets when the alerts fire: at
shares (percent) of each user's meter threshold, and when the project's
spend passes a daily or monthly limit. Money is printed exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import click

from ..client import AgentMeterClient
from ..core.webhook_models import EVENT_TYPES, AlertSettings, WebhookDelivery, WebhookEndpoint
from ..endpoints.webhooks import UNSET
from ..errors import AgentMeterValidationError
from ..models import DeliveryStatus
from ..pricing import to_money
from .common import reads_client, uses_client
from .output import (
    Column,
    TextTable,
    count_text,
    dump_json,
    key_value_table,
    money_display,
    optional_time_text,
    plural,
    print_table,
)
from .params import MONEY

EXAMPLES = """
\b
Examples:
  agentmeter webhooks add https://hooks.example.com/agentmeter --events meter.threshold_crossed
  agentmeter webhooks list
  agentmeter webhooks test whep_3f2a
  agentmeter webhooks deliveries --status failed
  agentmeter webhooks redeliver whdl_81c0
  agentmeter webhooks delete whep_3f2a
"""
ALERT_EXAMPLES = """
\b
Examples:
  agentmeter alerts list
  agentmeter alerts set --shares 50,80,100 --daily-limit 250 --monthly-limit 5000
  agentmeter alerts set --clear-daily
"""
STATUSES = [status.value for status in DeliveryStatus]
SHOWN_ONCE = "signing secret (shown only now; store it, it cannot be read again)"


def format_choice(func: click.decorators.FC) -> click.decorators.FC:
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(["table", "json"]),
        default="table",
        show_default=True,
        help="table for people; json for programs.",
    )(func)


# ------------------------------------------------------------ showing


def _endpoints_table(endpoints: Sequence[WebhookEndpoint]) -> TextTable:
    columns = ["Id", "URL", "Events", "Enabled", "Description", "Created (UTC)"]
    table = TextTable([Column(name) for name in columns])
    for item in endpoints:
        table.add_row(
            item.id,
            item.url,
            ",".join(item.event_types),
            "yes" if item.enabled else "no",
            item.description or "",
            optional_time_text(item.created_at) or "",
        )
    return table


def _deliveries_table(deliveries: Sequence[WebhookDelivery]) -> TextTable:
    columns = [
        Column("Id"),
        Column("Endpoint"),
        Column("Event"),
        Column("Status"),
        Column("Attempts", numeric=True),
        Column("Last code", numeric=True),
        Column("Next attempt (UTC)"),
        Column("Created (UTC)"),
        Column("Last error"),
    ]
    table = TextTable(columns)
    for item in deliveries:
        table.add_row(
            item.id,
            item.endpoint_id,
            item.event_type,
            item.status.value,
            str(item.attempts),
            "" if item.last_status_code is None else str(item.last_status_code),
            optional_time_text(item.next_attempt_at) or "",
            optional_time_text(item.created_at) or "",
            item.last_error or "",
        )
    return table


def _show_delivery(delivery: WebhookDelivery, fmt: str) -> None:
    if fmt == "json":
        click.echo(dump_json(delivery.to_dict()))
        return
    pairs = [
        ("Delivery", delivery.id),
        ("Event", f"{delivery.event_type} ({delivery.event_id})"),
        ("Endpoint", delivery.endpoint_id),
        ("Status", delivery.status.value),
        ("Attempts", str(delivery.attempts)),
        ("Next attempt (UTC)", optional_time_text(delivery.next_attempt_at) or "-"),
        ("Delivered (UTC)", optional_time_text(delivery.delivered_at) or "-"),
    ]
    if delivery.last_status_code is not None or delivery.last_error:
        last = [str(delivery.last_status_code or ""), delivery.last_error or ""]
        pairs.append(("Last answer", " ".join(part for part in last if part)))
    print_table(key_value_table(pairs, title=f"Webhook delivery {delivery.id}"), None)


def _limit_text(limit: Decimal | None) -> str:
    return money_display(limit) if limit is not None else "none"


def _show_settings(settings: AlertSettings, fmt: str) -> None:
    if fmt == "json":
        click.echo(dump_json(settings.to_dict()))
        return
    shares = ", ".join(f"{money_display(share)}%" for share in settings.threshold_shares)
    pairs = [
        ("Meter threshold shares", shares or "none"),
        ("Daily spend limit", _limit_text(settings.daily_limit)),
        ("Monthly spend limit", _limit_text(settings.monthly_limit)),
    ]
    print_table(key_value_table(pairs, title=f"Alerts of project {settings.project_id}"), None)


# ------------------------------------------------------------ webhooks


@click.group(epilog=EXAMPLES)
def webhooks() -> None:
    """Webhook endpoints that receive the project's alerts, and their deliveries."""


def _event_types(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> list[str]:
    """``--events a,b --events c``: each comma-separated, in order, once."""
    names = [name.strip() for value in values for name in value.split(",") if name.strip()]
    return list(dict.fromkeys(names))


@webhooks.command(
    "add",
    epilog="\b\nExamples:\n  agentmeter webhooks add https://hooks.example.com/agentmeter "
    "--events meter.threshold_crossed,project.spend_exceeded --format json",
)
@click.argument("url")
@click.option(
    "--events",
    "event_types",
    metavar="TYPE[,TYPE...]",
    multiple=True,
    required=True,
    callback=_event_types,
    help=f"Event types to send, comma-separated: {', '.join(EVENT_TYPES)}.",
)
@click.option("--description", metavar="TEXT", help="Free text (what this endpoint is for).")
@click.option("--disabled", is_flag=True, help="Add it switched off (nothing is sent to it).")
@format_choice
@uses_client
def webhooks_add(
    client: AgentMeterClient,
    url: str,
    event_types: list[str],
    description: str | None,
    disabled: bool,
    fmt: str,
) -> None:
    """Send the project's events of the given types to URL (http or https).

    Prints the endpoint's signing secret: it is shown only now."""
    made = client.create_webhook_endpoint(
        url, event_types, enabled=not disabled, description=description
    )
    if fmt == "json":
        click.echo(dump_json(made.to_dict()))  # with "secret", this once
        return
    print_table(_endpoints_table([made]), None)
    if made.secret is not None:
        click.echo(f"\n{SHOWN_ONCE}: {made.secret.get_secret_value()}")


@webhooks.command("list", epilog="\b\nExamples:\n  agentmeter webhooks list --format json")
@format_choice
@reads_client
def webhooks_list(client: AgentMeterClient, fmt: str) -> None:
    """The project's webhook endpoints, oldest first (their secrets are not shown again)."""
    found = client.list_webhook_endpoints()
    if fmt == "json":
        click.echo(dump_json([item.to_dict() for item in found]))
    elif not found:
        click.echo("no webhook endpoints (add one with: agentmeter webhooks add URL --events ...)")
    else:
        print_table(_endpoints_table(found), None, [plural(len(found), "webhook endpoint")])


@webhooks.command("delete", epilog="\b\nExamples:\n  agentmeter webhooks delete whep_3f2a")
@click.argument("endpoint_id", metavar="ID")
@format_choice
@uses_client
def webhooks_delete(client: AgentMeterClient, endpoint_id: str, fmt: str) -> None:
    """Stop sending to endpoint ID and forget it (and its deliveries)."""
    deleted = client.delete_webhook_endpoint(endpoint_id)
    if fmt == "json":
        click.echo(dump_json({"id": endpoint_id, "deleted": deleted}))
    else:
        click.echo(f"{endpoint_id}: deleted")


@webhooks.command("test", epilog="\b\nExamples:\n  agentmeter webhooks test whep_3f2a")
@click.argument("endpoint_id", metavar="ID")
@format_choice
@uses_client
def webhooks_test(client: AgentMeterClient, endpoint_id: str, fmt: str) -> None:
    """Send a webhook.test event to endpoint ID; shows the delivery that carries it."""
    _show_delivery(client.send_test_webhook(endpoint_id), fmt)


@webhooks.command(
    "deliveries",
    epilog="\b\nExamples:\n  agentmeter webhooks deliveries --status failed --limit 20",
)
@click.option("--endpoint", "endpoint_id", metavar="ID", help="Only this endpoint's deliveries.")
@click.option("--status", type=click.Choice(STATUSES), help="Only deliveries in this status.")
@click.option(
    "--limit",
    type=click.IntRange(1, 1000),
    default=100,
    show_default=True,
    help="At most this many, newest first.",
)
@format_choice
@reads_client
def webhooks_deliveries(
    client: AgentMeterClient, endpoint_id: str | None, status: str | None, limit: int, fmt: str
) -> None:
    """The project's webhook deliveries, newest first, with their attempts."""
    found = client.list_webhook_deliveries(endpoint_id=endpoint_id, status=status, limit=limit)
    if fmt == "json":
        click.echo(dump_json([item.to_dict() for item in found]))
    elif not found:
        click.echo("no webhook deliveries")
    else:
        noun = "delivery" if len(found) == 1 else "deliveries"
        print_table(_deliveries_table(found), None, [f"{count_text(len(found))} {noun}"])


@webhooks.command("redeliver", epilog="\b\nExamples:\n  agentmeter webhooks redeliver whdl_81c0")
@click.argument("delivery_id", metavar="ID")
@format_choice
@uses_client
def webhooks_redeliver(client: AgentMeterClient, delivery_id: str, fmt: str) -> None:
    """Send delivery ID again now (a delivered or failed one too)."""
    _show_delivery(client.redeliver_webhook(delivery_id), fmt)


# -------------------------------------------------------------- alerts


@click.group(epilog=ALERT_EXAMPLES)
def alerts() -> None:
    """When the project's alerts fire: meter threshold shares, spend limits."""


def _shares(ctx: click.Context, param: click.Parameter, value: str | None) -> list[Decimal] | None:
    """``50,80,100`` as exact percents; ``none``: no meter threshold alerts."""
    if value is None:
        return None
    if value.strip().lower() in ("", "none"):
        return []
    shares = []
    for cell in value.split(","):
        try:
            shares.append(to_money(cell.strip(), "--shares"))
        except AgentMeterValidationError:
            raise click.BadParameter(
                f"{cell.strip()!r} is not a percent; give them like 50,80,100"
            ) from None
    return shares


@alerts.command("list", epilog="\b\nExamples:\n  agentmeter alerts list --format json")
@format_choice
@reads_client
def alerts_list(client: AgentMeterClient, fmt: str) -> None:
    """The project's alert settings (defaults until set: 50,80,100 %, no limits)."""
    _show_settings(client.get_alert_settings(), fmt)


@alerts.command(
    "set",
    epilog="\b\nExamples:\n  agentmeter alerts set --shares 50,80,100 --daily-limit 250\n"
    "  agentmeter alerts set --clear-monthly",
)
@click.option(
    "--shares",
    metavar="P[,P...]",
    callback=_shares,
    help="Alert when a user's usage reaches these percents of its meter threshold "
    "(above 0, at most 1000; 10 at most); none: no such alerts.",
)
@click.option("--daily-limit", type=MONEY, help="Alert when a day's spend (UTC) passes this.")
@click.option("--monthly-limit", type=MONEY, help="Alert when a month's spend passes this.")
@click.option("--clear-daily", is_flag=True, help="Remove the daily limit.")
@click.option("--clear-monthly", is_flag=True, help="Remove the monthly limit.")
@format_choice
@uses_client
def alerts_set(
    client: AgentMeterClient,
    shares: list[Decimal] | None,
    daily_limit: Decimal | None,
    monthly_limit: Decimal | None,
    clear_daily: bool,
    clear_monthly: bool,
    fmt: str,
) -> None:
    """Change the project's alert settings; what is not given stays as it is."""
    changes: dict[str, Any] = {}
    if shares is not None:
        changes["threshold_shares"] = shares
    for name, value, clear in (
        ("daily", daily_limit, clear_daily),
        ("monthly", monthly_limit, clear_monthly),
    ):
        if value is not None and clear:
            raise click.UsageError(f"give --{name}-limit or --clear-{name}, not both")
        if value is not None or clear:
            changes[f"{name}_limit"] = value  # None (--clear-*) is sent: it clears the limit
    if not changes:
        raise click.UsageError(
            "nothing to change: give --shares, --daily-limit, --monthly-limit, "
            "--clear-daily or --clear-monthly"
        )
    settings = client.set_alert_settings(
        threshold_shares=changes.get("threshold_shares"),
        daily_limit=changes.get("daily_limit", UNSET),
        monthly_limit=changes.get("monthly_limit", UNSET),
    )
    _show_settings(settings, fmt)
