"""``agentmeter send``: compose one event from a template, preview it, then send it.

In a terminal it asks: the template (a numbered menu), each field with its
default, then shows the event as JSON and as a CloudEvent and offers send,
edit a field, edit in ``$EDITOR`` or cancel. Nothing is sent without the
send choice. Without a terminal, or with ``--yes``, every field comes from
the options and the event is sent at once (``--dry-run`` only shows it).

The API key a server needs, when neither ``--api-key`` nor
``AGENTMETER_API_KEY`` gives it, is asked without echo, and is masked in any
error that could quote it.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

import click

from ..client import AgentMeterClient
from ..core.cloudevent_map import to_cloudevent
from ..core.ids import new_event_id
from ..core.jsonio import format_time
from ..errors import AgentMeterError, AgentMeterValidationError, scrub
from ..models import MeterEvent
from .common import connection_options, handle_errors, make_client
from .output import dump_json
from .params import MOMENT, metadata_pairs
from .records import record_and_show
from .send_prompts import (
    checked,
    compose_interactively,
    fields_for,
    in_field_terms,
    listed_price,
    preview,
)
from .send_templates import (
    TEMPLATE_KEYS,
    FieldSpec,
    Template,
    apply_field,
    starting_event,
    template_named,
)

EXAMPLES = """
\b
Examples:
  agentmeter send                                   # in a terminal: menus and prompts
  agentmeter send --template tokens --user alice    # ask only the template's fields
  agentmeter send --yes --template api --user alice --agent search \\
      --field api_calls=3 --field unit_price=0.002
  agentmeter send --yes -t compute --user alice -f hours=12 -f unit_price=2.40 -f resource=a100
  agentmeter send --yes -t storage --user bob -f gb_months=120.5 -f unit_price=0.023
  agentmeter send --dry-run -t instant --user bob -f amount=4.99 -m order=1234
  echo | agentmeter send -t saas -f service=maps -f calls=250 -f unit_price=0.005 --format json
\b
Templates: api, tokens, instant, compute, storage, saas, credits (see docs/cli.md).
Fields of every template: user_id, agent_id; --user and --agent set them too.
"""


def who_fields(client: AgentMeterClient) -> tuple[FieldSpec, ...]:
    """The user and agent, asked before a template's own fields."""
    return (
        FieldSpec("user_id", "User", "text", client.user_id or "anonymous", event_field="user_id"),
        FieldSpec(
            "agent_id", "Agent", "text", client.agent_id or "default", event_field="agent_id"
        ),
    )


def given_fields(pairs: Sequence[str], user_id: str | None, agent_id: str | None) -> dict[str, str]:
    """``--field NAME=VALUE`` (repeatable), with ``--user`` and ``--agent``."""
    given: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise click.BadParameter(f"{pair!r} is not NAME=VALUE", param_hint="'--field'")
        given[name.strip()] = value
    for name, option in (("user_id", user_id), ("agent_id", agent_id)):
        if option is not None:
            given[name] = option
    return given


def compose_from_options(
    client: AgentMeterClient,
    template: Template,
    specs: Sequence[FieldSpec],
    event: dict[str, Any],
    given: Mapping[str, str],
) -> MeterEvent:
    """The event the options describe; a missing required field is a usage error."""
    for spec in specs:
        text = given.get(spec.name)
        if text is None and spec.required:
            raise click.UsageError(
                f"missing field {spec.name!r} for template {template.key!r} "
                f"({spec.label}): give --field {spec.name}=VALUE"
            )
        if text is None and spec.kind == "token_price":
            text = listed_price(client, spec, event)
        if text is None:
            text = spec.default or ""
        event = apply_field(template, event, spec, text)
    try:
        return checked(event)
    except AgentMeterValidationError as exc:
        raise in_field_terms(exc, specs) from None


def needs_api_key(base_url: str | None, api_key: str | None, db: str | None) -> bool:
    """A server is named and no key is configured for it."""
    url = db or base_url or os.environ.get("AGENTMETER_BASE_URL") or ""
    has_key = api_key or os.environ.get("AGENTMETER_API_KEY")
    return url.startswith(("http://", "https://")) and not has_key


@contextlib.contextmanager
def masking(secret: str | None) -> Iterator[None]:
    """A key typed at the prompt is no flag, so the common error handler
    cannot know it: mask it here in any error message first."""
    try:
        yield
    except AgentMeterError as exc:
        if secret:
            exc.message = scrub(exc.message, (secret,))
        raise


def starting_point(
    client: AgentMeterClient,
    metadata: Mapping[str, str],
    event_id: str | None,
    timestamp: datetime | None,
) -> dict[str, Any]:
    """What every template's event starts with. The id is fixed now, so
    every preview and edit shows the id that is sent."""
    base: dict[str, Any] = {
        "id": event_id or new_event_id(),
        "project_id": client.config.project_for(None, client.transport.default_project_id),
        "metadata": dict(metadata),
    }
    if timestamp is not None:
        base["timestamp"] = format_time(timestamp)
    return base


def report_preview(event: MeterEvent, fmt: str) -> None:
    if fmt == "json":
        wire = event.to_dict()
        click.echo(dump_json({"event": wire, "cloudevent": to_cloudevent(wire), "sent": False}))
        return
    preview(event)
    click.echo("dry run: nothing was sent")


@click.command(epilog=EXAMPLES)
@click.option(
    "--template",
    "-t",
    "template_key",
    type=click.Choice(TEMPLATE_KEYS),
    help="The template (else chosen from a menu in a terminal).",
)
@click.option("--user-id", "--user", "user_id", metavar="USER", help="The user charged.")
@click.option("--agent-id", "--agent", "agent_id", metavar="AGENT", help="The agent.")
@click.option(
    "--field",
    "-f",
    "fields",
    multiple=True,
    metavar="NAME=VALUE",
    help="A template field (repeatable), e.g. -f unit_price=0.002.",
)
@click.option(
    "--metadata", "-m", multiple=True, metavar="KEY=VALUE", help="Extra metadata (repeatable)."
)
@click.option("--id", "event_id", metavar="ID", help="The event's id (reuse it to retry safely).")
@click.option("--at", "timestamp", type=MOMENT, help="When it happened (default now).")
@click.option("--yes", "-y", is_flag=True, help="No prompts, no confirmation: send at once.")
@click.option(
    "--dry-run", "--preview", "dry_run", is_flag=True, help="Show the event; send nothing."
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="text: 'event id' and 'cost' lines; json: the server's answer (or the preview).",
)
@connection_options
@handle_errors
def send(
    template_key: str | None,
    user_id: str | None,
    agent_id: str | None,
    fields: tuple[str, ...],
    metadata: tuple[str, ...],
    event_id: str | None,
    timestamp: datetime | None,
    yes: bool,
    dry_run: bool,
    fmt: str,
    base_url: str | None,
    api_key: str | None,
    project_id: str | None,
    db: str | None,
) -> None:
    """Compose one event from a template, preview it (JSON and CloudEvent), and send it."""
    interactive = not yes and sys.stdin.isatty()
    if not interactive and template_key is None:
        raise click.UsageError("give --template (no terminal to choose one in)")
    template = template_named(template_key) if template_key else None
    given = given_fields(fields, user_id, agent_id)
    extra = metadata_pairs(metadata)
    typed_key = None
    if interactive and needs_api_key(base_url, api_key, db):
        typed_key = api_key = click.prompt("API key", hide_input=True)
    with masking(typed_key), make_client(base_url, api_key, project_id, db) as client:
        base = starting_point(client, extra, event_id, timestamp)
        who = who_fields(client)
        if template is None or interactive:
            event = compose_interactively(client, template, who, base, given, dry_run)
            if event is None:
                click.echo("dry run: nothing was sent" if dry_run else "cancelled: nothing sent")
                return
        else:
            specs = fields_for(template, who, given)
            event = compose_from_options(
                client, template, specs, starting_event(template, base), given
            )
            if dry_run:
                report_preview(event, fmt)
                return
        record_and_show(client, event, fmt)
