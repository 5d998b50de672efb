"""The terminal side of ``agentmeter send``: menus, prompts, the preview and ``$EDITOR``.

Every answer is checked at once by the event models (``parse_event``, the
checks every other path uses); a rejected answer is shown and the same
question asked again. Fields not answered yet hold a valid stand-in while
an answer is checked, so an error can only be about that answer. Nothing
here sends: :func:`compose_interactively` hands back the event the user
chose to send, or None.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import click

from ..client import AgentMeterClient
from ..core.cloudevent_map import to_cloudevent
from ..errors import AgentMeterValidationError
from ..models import MeterEvent, parse_event
from .output import dump_json, money_plain
from .send_templates import (
    TEMPLATES,
    FieldSpec,
    Template,
    apply_field,
    field_value,
    placeholder,
    starting_event,
    template_named,
)

T = TypeVar("T")
ACTIONS = {"1": "send", "2": "field", "3": "editor", "4": "cancel"}
ACTION_MENU = "1) send   2) edit a field   3) edit in $EDITOR   4) cancel"
# Answers, not inputs: left out of what is edited in $EDITOR.
DERIVED = ("total_cost", "event_type")


def checked(event: Mapping[str, Any]) -> MeterEvent:
    """The event model of a wire dict (AgentMeterValidationError naming the field)."""
    return parse_event(event)


def in_field_terms(
    exc: AgentMeterValidationError, specs: Sequence[FieldSpec]
) -> AgentMeterValidationError:
    """The error under the name the user typed: ``hours (api_calls): ...``."""
    for spec in specs:
        if exc.field is not None and exc.field in (spec.event_field, spec.metadata_key):
            if spec.name == exc.field:
                return exc
            prefix = f"{exc.field}: "
            problem = exc.message[len(prefix) :] if exc.message.startswith(prefix) else exc.message
            return AgentMeterValidationError(f"{spec.name} ({exc.field}): {problem}", spec.name)
    return exc


def listed_price(client: AgentMeterClient, spec: FieldSpec, event: Mapping[str, Any]) -> str:
    """A token price the client would use for the event's model: the
    project's own price, else the catalog's (raises for an unknown model)."""
    metadata = event.get("metadata") or {}
    built = client.build_token_based_pay(
        tokens_in=_count_or_zero(event.get("tokens_in")),
        tokens_out=_count_or_zero(event.get("tokens_out")),
        project_id=event.get("project_id"),
        agent_id=event.get("agent_id"),
        user_id=event.get("user_id"),
        metadata={"model": metadata.get("model")} if metadata.get("model") else None,
    )
    return money_plain(built[spec.event_field or spec.name])


def _count_or_zero(value: Any) -> int:
    return value if isinstance(value, int) and value >= 0 else 0


def default_of(client: AgentMeterClient, spec: FieldSpec, event: Mapping[str, Any]) -> str | None:
    """What the prompt offers: a token price looked up (None if none is known), else the spec's."""
    if spec.kind != "token_price":
        return spec.default
    try:
        return listed_price(client, spec, event)
    except AgentMeterValidationError:
        return None


def preview(event: MeterEvent) -> None:
    wire = event.to_dict()
    click.echo("Event (JSON):")
    click.echo(dump_json(wire))
    click.echo("CloudEvent:")
    click.echo(dump_json(to_cloudevent(wire)))
    click.echo(f"Cost: {money_plain(event.total_cost)}")


def _menu_choice(prompt: str, choices: Callable[[str], T]) -> T:
    """Ask until ``choices`` accepts the answer (it raises KeyError otherwise)."""

    def convert(text: str) -> T:
        try:
            return choices(text.strip().lower())
        except KeyError as exc:
            raise click.BadParameter(str(exc.args[0])) from None

    chosen: T = click.prompt(prompt, value_proc=convert)
    return chosen


def choose_template() -> Template:
    click.echo("Templates:")
    for number, template in enumerate(TEMPLATES, start=1):
        click.echo(f"  {number}) {template.title:<28} {template.payment_type.value}")
    return _menu_choice(f"Template [1-{len(TEMPLATES)}]", template_named)


def _action(text: str) -> str:
    for number, action in ACTIONS.items():
        if text in (number, action, action[0]):
            return action
    raise KeyError(f"{text!r} is not one of 1, 2, 3, 4")


def ask_field(
    client: AgentMeterClient,
    template: Template,
    event: dict[str, Any],
    spec: FieldSpec,
    default: str | None,
) -> dict[str, Any]:
    """Ask one field until the event takes the answer; the event with it."""
    while True:
        text = click.prompt(spec.label, default=default, show_default=bool(default))
        try:
            answered = apply_field(template, event, spec, text)
            checked(answered)
        except AgentMeterValidationError as exc:
            click.echo(f"error: {in_field_terms(exc, (spec,))}", err=True)
            continue
        return answered


def fill_fields(
    client: AgentMeterClient,
    template: Template,
    specs: Sequence[FieldSpec],
    event: dict[str, Any],
    given: Mapping[str, str],
) -> dict[str, Any]:
    """Ask every field not given as an option, in order; the given ones are taken as they are."""
    for spec in specs:  # stand-ins first: an answer is checked against a whole event
        event = apply_field(template, event, spec, placeholder(spec))
    for spec in specs:
        if spec.name in given:
            try:
                answered = apply_field(template, event, spec, given[spec.name])
                checked(answered)
            except AgentMeterValidationError as exc:  # a bad option: corrected here
                click.echo(f"error: {in_field_terms(exc, (spec,))}", err=True)
            else:
                event = answered
                continue
        event = ask_field(client, template, event, spec, default_of(client, spec, event))
    return event


def edit_one_field(
    client: AgentMeterClient, template: Template, specs: Sequence[FieldSpec], event: dict[str, Any]
) -> dict[str, Any]:
    click.echo("Fields:")
    for number, spec in enumerate(specs, start=1):
        click.echo(f"  {number}) {spec.name} = {field_value(spec, event) or ''}")

    def by_number_or_name(text: str) -> FieldSpec:
        if text.isdigit() and 1 <= int(text) <= len(specs):
            return specs[int(text) - 1]
        for spec in specs:
            if spec.name == text:
                return spec
        raise KeyError(f"{text!r} is not a field number or name")

    spec = _menu_choice(f"Field [1-{len(specs)}]", by_number_or_name)
    event = ask_field(client, template, event, spec, field_value(spec, event))
    if spec.name == "model":  # another model: offer its prices
        for price in (item for item in specs if item.kind == "token_price"):
            event = ask_field(client, template, event, price, default_of(client, price, event))
    return event


def edit_in_editor(template: Template, event: MeterEvent) -> dict[str, Any] | None:
    """The event as edited in $EDITOR, or None (unchanged, or invalid: said why)."""
    editable = {key: value for key, value in event.to_dict().items() if key not in DERIVED}
    try:
        text = click.edit(dump_json(editable) + "\n", extension=".json", require_save=True)
    except click.ClickException as exc:  # no editor found, or it failed: back to the menu
        click.echo(f"error: {exc.format_message()}", err=True)
        return None
    if text is None:
        click.echo("no change")
        return None
    try:
        edited = json.loads(text)
    except ValueError as exc:
        click.echo(f"error: not JSON: {exc}", err=True)
        return None
    try:
        if not isinstance(edited, dict):
            raise AgentMeterValidationError.for_field("event", "must be a JSON object")
        if edited.get("payment_type") != template.payment_type.value:
            raise AgentMeterValidationError.for_field(
                "payment_type",
                f"is set by the template ({template.payment_type.value}); "
                "choose another template instead",
            )
        checked(edited)
    except AgentMeterValidationError as exc:
        click.echo(f"error: {exc}", err=True)
        return None
    return edited


def fields_for(
    template: Template, who: Sequence[FieldSpec], given: Mapping[str, str]
) -> tuple[FieldSpec, ...]:
    """The user, the agent and the template's fields; a given name that is none is a usage error."""
    specs = (*who, *template.fields)
    unknown = sorted(set(given) - {spec.name for spec in specs})
    if unknown:
        raise click.UsageError(
            f"template {template.key!r} has no field {unknown[0]!r}; its fields: "
            + ", ".join(spec.name for spec in specs)
        )
    return specs


def compose_interactively(
    client: AgentMeterClient,
    template: Template | None,
    who: Sequence[FieldSpec],
    base: Mapping[str, Any],
    given: Mapping[str, str],
    dry_run: bool,
) -> MeterEvent | None:
    """Template, fields, preview, then the menu until send (the event) or cancel (None)."""
    template = template or choose_template()
    specs = fields_for(template, who, given)
    event = fill_fields(client, template, specs, starting_event(template, base), given)
    model = checked(event)
    preview(model)
    while not dry_run:
        click.echo(ACTION_MENU)
        action = _menu_choice("Choice", _action)
        if action == "send":
            return model
        if action == "cancel":
            return None
        edited = (
            edit_one_field(client, template, specs, event)
            if action == "field"
            else edit_in_editor(template, model)
        )
        if edited is not None:  # else: unchanged or refused, back to the menu
            event = edited
            model = checked(event)
            preview(model)
    return None
