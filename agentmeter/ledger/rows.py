"""An event as a row of the ledger, and what makes two rows of one id the same.

A row is the event's wire fields as columns, plus what the ledger derives
from them: the ``model`` (for reports by model; the event's own, else its
metadata's) and the ``unpriced`` mark (metadata ``"unpriced": true``: the
SDK recorded the event at 0 for want of a price of its model).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ..models import APIRequestPayEvent, InstantPayEvent, MeterEvent, TokenBasedPayEvent
from .base import to_micros


def metadata_text(metadata: dict[str, Any]) -> str:
    """The JSON a metadata dict is stored as."""
    return json.dumps(metadata, separators=(",", ":"), default=str) if metadata else "{}"


def event_row(event: MeterEvent, recorded_at: int, metadata: str | None = None) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": event.id,
        "project_id": event.project_id,
        "agent_id": event.agent_id,
        "user_id": event.user_id,
        "payment_type": event.payment_type.value,
        "event_type": getattr(event, "event_type").value,  # noqa: B009 - set on every subclass
        "ts": to_micros(event.timestamp),
        "recorded_at": recorded_at,
        "api_calls": 0,
        "tokens_in": 0,
        "tokens_out": 0,
        "unit_price": None,
        "input_token_price": None,
        "output_token_price": None,
        "amount": None,
        "description": None,
        "total_cost": event.total_cost,
        "model": _model_name(event.metadata),
        "metadata": metadata_text(event.metadata) if metadata is None else metadata,
        "cached_tokens_in": 0,
        "cache_write_tokens": 0,
        "cached_input_token_price": None,
        "cache_write_token_price": None,
        "unpriced": event.metadata.get("unpriced") is True,
    }
    if isinstance(event, APIRequestPayEvent):
        row.update(api_calls=event.api_calls, unit_price=event.unit_price)
    elif isinstance(event, TokenBasedPayEvent):
        row.update(
            tokens_in=event.tokens_in,
            tokens_out=event.tokens_out,
            input_token_price=event.input_token_price,
            output_token_price=event.output_token_price,
            cached_tokens_in=event.cached_tokens_in,
            cache_write_tokens=event.cache_write_tokens,
            cached_input_token_price=event.cached_input_token_price,
            cache_write_token_price=event.cache_write_token_price,
        )
        if event.model is not None:
            row["model"] = event.model
    elif isinstance(event, InstantPayEvent):
        row.update(amount=event.amount, description=event.description)
    return row


def _model_name(metadata: dict[str, Any]) -> str | None:
    model = metadata.get("model")
    return str(model)[:200] if model is not None else None


# What makes two events with one id "the same": the column and its wire name.
_COMPARED = {
    "payment_type": "payment_type",
    "agent_id": "agent_id",
    "user_id": "user_id",
    "ts": "timestamp",
    "api_calls": "api_calls",
    "unit_price": "unit_price",
    "tokens_in": "tokens_in",
    "tokens_out": "tokens_out",
    "input_token_price": "input_token_price",
    "output_token_price": "output_token_price",
    "amount": "amount",
    "description": "description",
    "metadata": "metadata",
    "model": "model",
    "cached_tokens_in": "cached_tokens_in",
    "cache_write_tokens": "cache_write_tokens",
    "cached_input_token_price": "cached_input_token_price",
    "cache_write_token_price": "cache_write_token_price",
}
STORED_COLUMNS = ("id", "project_id", "total_cost", *_COMPARED)


def differing_fields(
    stored: Mapping[str, Any], incoming: Mapping[str, Any], *, time_given: bool = True
) -> tuple[str, ...]:
    """The wire names of the fields in which two rows of one id differ.

    Money compares by value (``0.50`` is ``0.5``), metadata as parsed JSON
    (in any key order, but ``true`` is not ``1``). ``time_given=False``: the incoming
    time was filled in by the ledger, so it is not the sender's to differ.
    """
    names = []
    for column, name in _COMPARED.items():
        old, new = stored[column], incoming[column]
        if old == new or (column == "ts" and not time_given):
            continue
        if column == "metadata" and _same_metadata(old, new):
            continue
        if column == "description" and not old and not new:  # None and "" alike
            continue
        names.append(name)
    return tuple(names)


def _same_metadata(old_text: str, new_text: str) -> bool:
    """Whether two metadata texts hold the same JSON (key order and number spelling aside)."""
    try:
        old = json.loads(old_text, parse_constant=str)
        new = json.loads(new_text, parse_constant=str)
    except (ValueError, RecursionError):  # a row stored before the input checks
        return False
    return bool(_tagged(old) == _tagged(new))


def _tagged(value: Any) -> Any:
    """``value`` with each boolean marked, so that ``true`` never equals ``1``."""
    if isinstance(value, bool):
        return ("boolean", value)
    if isinstance(value, dict):
        return {key: _tagged(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_tagged(item) for item in value]
    return value
