"""``agentmeter record api|tokens|instant``: record one event from a script or cron job.

Prints the event's id and the cost the server stored. ``--id`` makes a retry
safe: an event id is stored once, so running the same command twice
charges once (the second run says ``duplicate``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar

import click

from ..client import AgentMeterClient
from ..models import MeterEvent
from .common import uses_client
from .output import dump_json, money_plain
from .params import MOMENT, MONEY, metadata_pairs

F = TypeVar("F", bound=Callable[..., Any])


def event_options(func: F) -> F:
    """The options every kind of event takes."""
    options = [
        click.option(
            "--format",
            "fmt",
            type=click.Choice(["text", "json"]),
            default="text",
            show_default=True,
            help="text: 'event id: ...' and 'cost: ...' lines; json: the server's answer.",
        ),
        click.option(
            "--metadata",
            "-m",
            multiple=True,
            metavar="KEY=VALUE",
            help="Metadata to store with the event (repeatable).",
        ),
        click.option(
            "--at",
            "timestamp",
            type=MOMENT,
            help="When it happened (default now): a date, RFC 3339 time, or 2h, 1d...",
        ),
        click.option(
            "--id",
            "event_id",
            metavar="ID",
            help="The event's id (default: a new one). Reuse it to retry without double billing.",
        ),
        click.option(
            "--agent", "agent_id", metavar="AGENT", help="Agent (else AGENTMETER_AGENT_ID)."
        ),
        click.option("--user", "user_id", metavar="USER", help="User (else AGENTMETER_USER_ID)."),
    ]
    for option in options:
        func = option(func)
    return func


def _send(
    client: AgentMeterClient,
    event: MeterEvent,
    event_id: str | None,
    timestamp: datetime | None,
    fmt: str,
) -> None:
    if event_id is not None or timestamp is not None:
        fields = event.model_dump(exclude={"total_cost"})
        if event_id is not None:
            fields["id"] = event_id
        if timestamp is not None:
            fields["timestamp"] = timestamp
        event = type(event)(**fields)
    record_and_show(client, event, fmt)


def record_and_show(client: AgentMeterClient, event: MeterEvent, fmt: str) -> None:
    """Record ``event`` and print the server's answer (``record`` and ``send`` alike)."""
    answer = client.record_event(event)
    if fmt == "json":
        click.echo(dump_json(answer.to_dict()))
        return
    click.echo(f"event id: {answer.event_id}")
    click.echo(f"cost: {money_plain(answer.cost)}")
    if answer.duplicate:
        click.echo("duplicate: this id was already recorded; nothing was charged again")


@click.group(
    epilog="""
\b
Examples:
  agentmeter record api --user alice --agent search --api-calls 3 --unit-price 0.002
  agentmeter record tokens --user alice --agent chat --tokens-in 1200 --tokens-out 340 \\
      --input-token-price 0.000003 --output-token-price 0.000015 -m model=gpt-4o
  agentmeter record instant --user bob --amount 4.99 --description "PDF export"
  agentmeter record instant --user bob --amount 4.99 --id nightly-2025-01-31-bob
"""
)
def record() -> None:
    """Record one event: per API request, per token, or an instant charge."""


@record.command(
    "api",
    epilog="\b\nExamples:\n"
    "  agentmeter record api --user alice --agent search --api-calls 3 --unit-price 0.002",
)
@click.option("--api-calls", type=click.IntRange(min=0), default=1, show_default=True)
@click.option("--unit-price", type=MONEY, required=True, help="Price per call.")
@event_options
@uses_client
def record_api(
    client: AgentMeterClient,
    api_calls: int,
    unit_price: Decimal,
    user_id: str | None,
    agent_id: str | None,
    event_id: str | None,
    timestamp: datetime | None,
    metadata: tuple[str, ...],
    fmt: str,
) -> None:
    """Charge api_calls x unit_price."""
    event = client.build_api_request_pay(
        api_calls,
        unit_price,
        agent_id=agent_id,
        user_id=user_id,
        metadata=metadata_pairs(metadata),
    )
    _send(client, event, event_id, timestamp, fmt)


@record.command(
    "tokens",
    epilog="\b\nExamples:\n"
    "  agentmeter record tokens --user alice --tokens-in 1200 --tokens-out 340 \\\n"
    "      --input-token-price 0.000003 --output-token-price 0.000015 -m model=gpt-4o",
)
@click.option("--tokens-in", type=click.IntRange(min=0), default=0, show_default=True)
@click.option("--tokens-out", type=click.IntRange(min=0), default=0, show_default=True)
@click.option("--input-token-price", type=MONEY, required=True, help="Price per input token.")
@click.option("--output-token-price", type=MONEY, required=True, help="Price per output token.")
@event_options
@uses_client
def record_tokens(
    client: AgentMeterClient,
    tokens_in: int,
    tokens_out: int,
    input_token_price: Decimal,
    output_token_price: Decimal,
    user_id: str | None,
    agent_id: str | None,
    event_id: str | None,
    timestamp: datetime | None,
    metadata: tuple[str, ...],
    fmt: str,
) -> None:
    """Charge tokens_in x input price + tokens_out x output price."""
    event = client.build_token_based_pay(
        tokens_in,
        tokens_out,
        input_token_price,
        output_token_price,
        agent_id=agent_id,
        user_id=user_id,
        metadata=metadata_pairs(metadata),
    )
    _send(client, event, event_id, timestamp, fmt)


@record.command(
    "instant",
    epilog="\b\nExamples:\n"
    '  agentmeter record instant --user bob --amount 4.99 --description "PDF export"',
)
@click.option("--amount", type=MONEY, required=True, help="The amount to charge.")
@click.option("--description", default="", help="What the charge is for.")
@event_options
@uses_client
def record_instant(
    client: AgentMeterClient,
    amount: Decimal,
    description: str,
    user_id: str | None,
    agent_id: str | None,
    event_id: str | None,
    timestamp: datetime | None,
    metadata: tuple[str, ...],
    fmt: str,
) -> None:
    """Charge an amount at once."""
    event = client.build_instant_pay(
        amount,
        description,
        agent_id=agent_id,
        user_id=user_id,
        metadata=metadata_pairs(metadata),
    )
    _send(client, event, event_id, timestamp, fmt)
