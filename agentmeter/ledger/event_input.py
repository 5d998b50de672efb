"""One event of a request, checked: its model, its metadata as stored, or why not.

The event endpoints (single, batch, CloudEvents) share these, so an event is
valid or refused the same way whichever way it came.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import TypeAdapter, ValidationError

from ..core.checks import has_lone_surrogate
from ..errors import AgentMeterValidationError
from ..models import AnyEvent, MeterEvent, parse_event
from .errors import WireError
from .rows import metadata_text

MAX_METADATA_BYTES = 16 * 1024
MAX_BATCH_EVENTS = 1000

_BATCH_ADAPTER: TypeAdapter[list[AnyEvent]] = TypeAdapter(list[AnyEvent])


def parse_wire_event(data: Any) -> tuple[MeterEvent, str]:
    """A valid event and its metadata as the JSON it is stored as (or WireError)."""
    if not isinstance(data, Mapping):
        raise WireError(422, "validation_error", "an event must be a JSON object")
    if not data.get("id"):
        # A server-made id would make a client's retry a second event.
        raise WireError(
            422,
            "validation_error",
            "id: required: every event carries the id its client made, so a resend is safe",
            [{"field": "id", "message": "required"}],
        )
    try:
        event = parse_event(data)
    except AgentMeterValidationError as exc:
        raise WireError.from_validation(exc) from None
    metadata = metadata_text(event.metadata)
    size = len(metadata)  # json.dumps escapes non-ASCII: characters are bytes
    if size > MAX_METADATA_BYTES:
        raise WireError(
            422,
            "validation_error",
            f"metadata: {size} bytes is more than the limit of {MAX_METADATA_BYTES}",
            [{"field": "metadata", "message": "too large"}],
        )
    return event, metadata


def parse_valid_batch(items: list[Any]) -> list[tuple[int, MeterEvent, str]] | None:
    """A batch whose every event is valid, validated in one call (the common case,
    a third faster); None if any is not."""
    if not all(isinstance(item, Mapping) and item.get("id") for item in items):
        return None
    try:
        events = _BATCH_ADAPTER.validate_python(items)
    except (ValidationError, AgentMeterValidationError):
        return None
    parsed: list[tuple[int, MeterEvent, str]] = []
    for index, event in enumerate(events):
        metadata = metadata_text(event.metadata)
        if len(metadata) > MAX_METADATA_BYTES:
            return None
        parsed.append((index, event, metadata))
    return parsed


def rejection(index: int, item: Any, exc: WireError) -> dict[str, Any]:
    event_id = item.get("id") if isinstance(item, Mapping) else None
    return {
        "index": index,
        "id": event_id if isinstance(event_id, str) and not has_lone_surrogate(event_id) else None,
        "error": {"code": exc.code, "message": exc.message, "details": exc.details},
    }
