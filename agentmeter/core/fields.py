"""Annotated field types shared by every model: money, counts, times, ids.

Validation lives in :mod:`agentmeter.pricing`; these types only plug it
into pydantic and choose the JSON form (money as decimal text, time as
RFC 3339 with ``Z``).
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BeforeValidator,
    PlainSerializer,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    WithJsonSchema,
)

from ..errors import AgentMeterValidationError
from ..pricing import money_text, to_count, to_money, to_total
from .checks import check_metadata, check_text
from .jsonio import format_time


def _money(value: Any, info: ValidationInfo) -> Decimal:
    return to_money(value, info.field_name or "value")


def _total(value: Any, info: ValidationInfo) -> Decimal:
    return to_total(value, info.field_name or "value")


def _count(value: Any, info: ValidationInfo) -> int:
    return to_count(value, info.field_name or "value")


def _text(value: str, info: ValidationInfo) -> str:
    if value.isascii():  # the common case, checked without a call: ASCII has no surrogate
        return value
    return check_text(value, info.field_name or "value")


def _metadata(value: Any) -> dict[str, Any]:
    return check_metadata(value)


def _utc(value: Any, info: ValidationInfo) -> datetime:
    return to_utc(value, info.field_name or "value")


def to_utc(value: Any, field: str) -> datetime:
    """A timezone-aware UTC datetime from a datetime, a date or RFC 3339 text.

    Naive times are read as UTC (the 0.2 SDK sends naive ones).
    """
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise AgentMeterValidationError.for_field(
                field,
                f"must be an RFC 3339 time like 2025-01-31T23:59:59Z, got {value[:40]!r}",
            ) from None
    elif isinstance(value, date) and not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    if not isinstance(value, datetime):
        raise AgentMeterValidationError.for_field(
            field, f"must be a datetime, got {type(value).__name__}"
        )
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    try:
        return value.astimezone(timezone.utc)
    except (OverflowError, ValueError):
        raise AgentMeterValidationError.for_field(
            field, f"is outside the years 1 to 9999 in UTC: {value.isoformat()}"
        ) from None


_MONEY_SCHEMA = {
    "anyOf": [
        {"type": "number", "minimum": 0},
        {"type": "string", "pattern": r"^\s*\+?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?\s*$"},
    ],
    "description": "exact decimal; a JSON number or a decimal string",
}

Money = Annotated[
    Decimal,
    BeforeValidator(_money),
    PlainSerializer(money_text, return_type=str, when_used="json"),
    WithJsonSchema(_MONEY_SCHEMA, mode="validation"),
    WithJsonSchema(
        {"type": "string", "pattern": r"^\d+(\.\d+)?$", "description": "exact decimal text"},
        mode="serialization",
    ),
]
# A sum of money values: exact, but without the bound of a single amount.
MoneyTotal = Annotated[
    Decimal,
    BeforeValidator(_total),
    PlainSerializer(money_text, return_type=str, when_used="json"),
    WithJsonSchema(_MONEY_SCHEMA, mode="validation"),
    WithJsonSchema(
        {"type": "string", "pattern": r"^\d+(\.\d+)?$", "description": "exact decimal text"},
        mode="serialization",
    ),
]
Count = Annotated[
    int,
    BeforeValidator(_count),
    WithJsonSchema({"type": "integer", "minimum": 0}),
]
UtcDatetime = Annotated[
    datetime,
    BeforeValidator(_utc),
    PlainSerializer(format_time, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]
# Text a user controls: valid Unicode (no lone surrogate), so it can be stored and sent.
Text = Annotated[str, AfterValidator(_text)]
Identifier = Annotated[Text, StringConstraints(min_length=1, max_length=256)]
# JSON-safe metadata: see agentmeter.core.checks.
MetadataDict = Annotated[dict[str, Any], BeforeValidator(_metadata)]
EventId = Annotated[
    str,
    StringConstraints(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:\-]*$"),
]


def validation_error_from(exc: ValidationError) -> AgentMeterValidationError:
    """Turn pydantic's error into ours, keeping every field's problem."""
    errors: list[dict[str, Any]] = []
    for item in exc.errors(include_url=False):
        original = (item.get("ctx") or {}).get("error")
        if isinstance(original, AgentMeterValidationError):
            # Raised by our own validators, or by a model's __init__ (which
            # already collected its fields' errors).
            errors.extend(original.errors)
        elif item["type"] in ("union_tag_invalid", "union_tag_not_found"):
            errors.append({"field": "payment_type", "message": _PAYMENT_TYPE_PROBLEM})
        else:
            field = ".".join(str(part) for part in item["loc"]) or "value"
            errors.append({"field": field, "message": f"{field}: {item['msg']}"})
    if not errors:
        return AgentMeterValidationError(str(exc), field=None, errors=[])
    summary = str(errors[0]["message"])
    if len(errors) > 1:
        summary = f"{summary} (and {len(errors) - 1} more invalid fields)"
    return AgentMeterValidationError(summary, field=errors[0]["field"], errors=errors)


_PAYMENT_TYPE_PROBLEM = (
    "payment_type: must be one of 'api_request_pay', 'token_based_pay', 'instant_pay'"
)
