"""The templates of ``agentmeter send``, as data: what each asks and where each answer goes.

A template names a payment type and its fields. A field's answer goes into
the event's own field (``api_calls``, ``unit_price``...), into its metadata,
or both: the usage templates (compute hours, storage, SaaS calls, batch
credits) map onto the three payment types and keep their unit and quantity
in the metadata, so reports can group by ``metadata.unit``.

The one non-obvious decision: the event's wire dict is the only state.
Answering or editing a field writes into it (:func:`apply_field`), and a
field's current value is read back from it (:func:`field_value`), so an edit
in ``$EDITOR`` and an edit of one field work on the same thing. Nothing here
validates on its own: the event models do (``parse_event``), with the money
and count checks every other path uses.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from ..models import PaymentType
from ..pricing import MONEY_CONTEXT, money_text, to_money

# count: a whole number; money: a price or amount; quantity: an exact
# non-negative decimal kept in the metadata; text: free text;
# token_price: money whose default is the model's listed price.
Kind = Literal["count", "money", "quantity", "text", "token_price"]


@dataclass(frozen=True)
class FieldSpec:
    """One question of a template, and where its answer is stored."""

    name: str  # as typed in --field NAME=VALUE and shown in the menus
    label: str  # the prompt
    kind: Kind
    default: str | None = None  # shown at the prompt; None: none (or looked up)
    required: bool = False  # without a terminal it must be given as --field
    event_field: str | None = None  # the event's own field it fills
    metadata_key: str | None = None  # the metadata key it fills
    optional: bool = False  # an empty answer leaves it out


@dataclass(frozen=True)
class Template:
    key: str  # --template KEY
    title: str
    payment_type: PaymentType
    fields: tuple[FieldSpec, ...]
    unit: str | None = None  # metadata["unit"] of a usage template
    # instant_pay usage: amount = metadata[quantity] x metadata[unit_price]
    amount_from_metadata: bool = False
    description: str = ""  # the instant charge's description, from the metadata

    def field(self, name: str) -> FieldSpec:
        for spec in self.fields:
            if spec.name == name:
                return spec
        known = ", ".join(spec.name for spec in self.fields)
        raise KeyError(f"template {self.key!r} has no field {name!r} (its fields: {known})")


def _price(label: str, default: str | None = None) -> FieldSpec:
    """A price: offered at the prompt, but never charged unless given (as ``record``)."""
    return FieldSpec("unit_price", label, "money", default, required=True, event_field="unit_price")


def _counted(name: str, label: str) -> FieldSpec:
    """A whole quantity charged per unit: the event's api_calls and the metadata's quantity."""
    return FieldSpec(name, label, "count", "1", event_field="api_calls", metadata_key="quantity")


def _optional_text(name: str, label: str) -> FieldSpec:
    return FieldSpec(name, label, "text", "", metadata_key=name, optional=True)


TEMPLATES: tuple[Template, ...] = (
    Template(
        "api",
        "API request",
        PaymentType.API_REQUEST_PAY,
        (
            FieldSpec("api_calls", "API calls", "count", "1", event_field="api_calls"),
            _price("Price per call", "0.001"),
        ),
    ),
    Template(
        "tokens",
        "AI chat completion tokens",
        PaymentType.TOKEN_BASED_PAY,
        (
            FieldSpec("model", "Model", "text", "gpt-4o", metadata_key="model"),
            FieldSpec("tokens_in", "Input tokens", "count", "0", event_field="tokens_in"),
            FieldSpec("tokens_out", "Output tokens", "count", "0", event_field="tokens_out"),
            FieldSpec(
                "input_token_price",
                "Price per input token",
                "token_price",
                event_field="input_token_price",
            ),
            FieldSpec(
                "output_token_price",
                "Price per output token",
                "token_price",
                event_field="output_token_price",
            ),
        ),
    ),
    Template(
        "instant",
        "Instant charge",
        PaymentType.INSTANT_PAY,
        (
            FieldSpec("amount", "Amount", "money", required=True, event_field="amount"),
            FieldSpec("description", "Description", "text", "", event_field="description"),
        ),
    ),
    Template(
        "compute",
        "Compute hours",
        PaymentType.API_REQUEST_PAY,
        (
            _counted("hours", "Compute hours (whole hours)"),
            _price("Price per hour"),
            _optional_text("resource", "Resource (e.g. gpu-a100, optional)"),
        ),
        unit="compute_hour",
    ),
    Template(
        "storage",
        "Storage (GB-month)",
        PaymentType.INSTANT_PAY,
        (
            FieldSpec("gb_months", "GB-months", "quantity", "1", metadata_key="quantity"),
            FieldSpec(
                "unit_price",
                "Price per GB-month",
                "money",
                required=True,
                metadata_key="unit_price",
            ),
            _optional_text("resource", "Resource (e.g. a bucket, optional)"),
        ),
        unit="gb_month",
        amount_from_metadata=True,
        description="storage: {quantity} GB-month x {unit_price}",
    ),
    Template(
        "saas",
        "SaaS API calls",
        PaymentType.API_REQUEST_PAY,
        (
            FieldSpec("service", "Service", "text", required=True, metadata_key="service"),
            _counted("calls", "API calls"),
            _price("Price per call"),
        ),
        unit="api_call",
    ),
    Template(
        "credits",
        "Batch credits",
        PaymentType.API_REQUEST_PAY,
        (
            _counted("credits", "Credits"),
            _price("Price per credit"),
            _optional_text("batch", "Batch id (optional)"),
        ),
        unit="credit",
    ),
)
TEMPLATE_KEYS = tuple(template.key for template in TEMPLATES)


def template_named(key: str) -> Template:
    """The template of ``--template KEY`` (or its number in the menu, from 1)."""
    if key.isdigit() and 1 <= int(key) <= len(TEMPLATES):
        return TEMPLATES[int(key) - 1]
    for template in TEMPLATES:
        if template.key == key:
            return template
    raise KeyError(f"no template {key!r}: choose one of {', '.join(TEMPLATE_KEYS)}")


def typed(spec: FieldSpec, text: str) -> Any:
    """The answer as the event takes it; a count or money that does not
    parse stays text, so the event model's check names the field."""
    text = text.strip()
    if spec.kind == "count":
        try:
            number = Decimal(text)
        except InvalidOperation:
            return text
        return int(number) if number.is_finite() and number == number.to_integral() else text
    if spec.kind == "quantity":
        return money_text(to_money(text, spec.name))  # exact text in the metadata
    return text


def starting_event(template: Template, base: Mapping[str, Any]) -> dict[str, Any]:
    """The wire dict before any answer: the payment type, who, the extra metadata, the unit."""
    event = {**base, "payment_type": template.payment_type.value}
    metadata = dict(event.get("metadata") or {})
    if template.unit is not None:
        metadata["unit"] = template.unit
    event["metadata"] = metadata
    return event


def apply_field(
    template: Template, event: Mapping[str, Any], spec: FieldSpec, text: str
) -> dict[str, Any]:
    """A copy of ``event`` with ``spec`` answered ``text`` (and what derives from it)."""
    changed = dict(event)
    metadata = dict(changed.get("metadata") or {})
    if spec.optional and not text.strip():
        if spec.metadata_key is not None:
            metadata.pop(spec.metadata_key, None)
        if spec.event_field is not None:
            changed.pop(spec.event_field, None)
    else:
        value = typed(spec, text)
        if spec.event_field is not None:
            changed[spec.event_field] = value
        if spec.metadata_key is not None:
            metadata[spec.metadata_key] = value
    changed["metadata"] = metadata
    return _derived(template, changed)


def _derived(template: Template, event: dict[str, Any]) -> dict[str, Any]:
    """A usage charge's amount and description from its metadata (exact product)."""
    if not template.amount_from_metadata:
        return event
    metadata = event["metadata"]
    if "quantity" not in metadata or "unit_price" not in metadata:
        return event
    quantity = to_money(metadata["quantity"], "gb_months")
    unit_price = to_money(metadata["unit_price"], "unit_price")
    event["amount"] = money_text(MONEY_CONTEXT.multiply(quantity, unit_price))
    event["description"] = template.description.format(
        quantity=money_text(quantity), unit_price=money_text(unit_price)
    )
    return event


def field_value(spec: FieldSpec, event: Mapping[str, Any]) -> str | None:
    """The field's current answer in ``event`` (None: not there)."""
    if spec.event_field is not None and spec.event_field in event:
        value = event[spec.event_field]
    elif spec.metadata_key is not None and spec.metadata_key in (event.get("metadata") or {}):
        value = event["metadata"][spec.metadata_key]
    else:
        return None
    return money_text(value) if isinstance(value, Decimal) else str(value)


def placeholder(spec: FieldSpec) -> str:
    """A valid stand-in for a field not answered yet, so checking the event
    after one answer can only fault that answer."""
    if spec.default is not None:
        return spec.default
    return "x" if spec.kind == "text" else "0"
