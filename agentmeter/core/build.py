"""Fast event construction for the hot path (tracker, decorators, LangChain).

A pydantic event costs 4-7 us to build; the hot path's budget is 5 us for
everything. So the hot path validates each input with the *same* functions
the models use (:mod:`agentmeter.pricing`) and builds the event's wire dict
directly. Two things are left for the delivery thread, off the hot path:
the timestamp (an integer of nanoseconds until then) becomes RFC 3339
text and ``total_cost`` is computed (:func:`finalize`). An event keeps the
id it gets here through every retry and replay.
"""

from __future__ import annotations

import re
import time
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from ..errors import AgentMeterValidationError
from ..pricing import api_request_cost, money_text, to_count, to_money, token_cost
from .checks import check_metadata, check_text
from .ids import new_event_id

WireEvent = dict[str, Any]
_EVENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,127}$")
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def check_name(value: Any, field: str) -> str:
    """A project, agent or user id: a non-empty string of at most 256 characters."""
    if type(value) is not str or not 0 < len(value) <= 256:
        raise AgentMeterValidationError.for_field(
            field, f"must be a non-empty string of at most 256 characters, got {value!r:.60}"
        )
    return value if value.isascii() else check_text(value, field)


def timestamp_ns(moment: datetime | None) -> int:
    if moment is None:
        return time.time_ns()
    if not isinstance(moment, datetime):
        raise AgentMeterValidationError.for_field("timestamp", "must be a datetime")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    delta = moment - _EPOCH
    return ((delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds) * 1000


def _base(
    payment_type: str,
    event_type: str,
    project_id: Any,
    agent_id: Any,
    user_id: Any,
    metadata: Any,
    event_id: str | None,
    timestamp: datetime | None,
) -> WireEvent:
    if event_id is not None and (type(event_id) is not str or not _EVENT_ID.match(event_id)):
        raise AgentMeterValidationError.for_field(
            "id", f"is not a valid event id: {event_id!r:.60}"
        )
    return {
        "id": event_id or new_event_id(),
        "project_id": check_name(project_id, "project_id"),
        "agent_id": check_name(agent_id, "agent_id"),
        "user_id": check_name(user_id, "user_id"),
        "payment_type": payment_type,
        "event_type": event_type,
        "timestamp": timestamp_ns(timestamp),
        "metadata": check_metadata(metadata),
    }


def api_request_event(
    project_id: Any,
    agent_id: Any,
    user_id: Any,
    api_calls: Any,
    unit_price: Any,
    metadata: Any = None,
    event_id: str | None = None,
    timestamp: datetime | None = None,
) -> WireEvent:
    event = _base(
        "api_request_pay", "api_call", project_id, agent_id, user_id, metadata, event_id, timestamp
    )
    event["api_calls"] = to_count(api_calls, "api_calls")
    event["unit_price"] = to_money(unit_price, "unit_price")
    return event


def token_event(
    project_id: Any,
    agent_id: Any,
    user_id: Any,
    tokens_in: Any,
    tokens_out: Any,
    input_token_price: Any,
    output_token_price: Any,
    metadata: Any = None,
    event_id: str | None = None,
    timestamp: datetime | None = None,
) -> WireEvent:
    event = _base(
        "token_based_pay",
        "token_usage",
        project_id,
        agent_id,
        user_id,
        metadata,
        event_id,
        timestamp,
    )
    event["tokens_in"] = to_count(tokens_in, "tokens_in")
    event["tokens_out"] = to_count(tokens_out, "tokens_out")
    event["input_token_price"] = to_money(input_token_price, "input_token_price")
    event["output_token_price"] = to_money(output_token_price, "output_token_price")
    return event


def instant_event(
    project_id: Any,
    agent_id: Any,
    user_id: Any,
    amount: Any,
    description: Any = "",
    metadata: Any = None,
    event_id: str | None = None,
    timestamp: datetime | None = None,
) -> WireEvent:
    if description is None:
        description = ""
    if type(description) is not str or len(description) > 1000:
        raise AgentMeterValidationError.for_field(
            "description", "must be a string of at most 1000 characters"
        )
    check_text(description, "description")
    event = _base(
        "instant_pay",
        "instant_payment",
        project_id,
        agent_id,
        user_id,
        metadata,
        event_id,
        timestamp,
    )
    event["amount"] = to_money(amount, "amount")
    event["description"] = description
    return event


def event_cost(event: WireEvent) -> Decimal:
    kind = event["payment_type"]
    if kind == "api_request_pay":
        return api_request_cost(event["api_calls"], Decimal(event["unit_price"]))
    if kind == "token_based_pay":
        return token_cost(
            event["tokens_in"],
            event["tokens_out"],
            Decimal(event["input_token_price"]),
            Decimal(event["output_token_price"]),
        )
    return Decimal(event["amount"])


def format_ns(nanoseconds: int) -> str:
    seconds, rest = divmod(nanoseconds, 1_000_000_000)
    moment = datetime.fromtimestamp(seconds, tz=timezone.utc).replace(microsecond=rest // 1000)
    return moment.isoformat().replace("+00:00", "Z")


def finalize(event: WireEvent) -> WireEvent:
    """Give a hot-path event its final wire form (idempotent; delivery thread only)."""
    if type(event["timestamp"]) is int:
        event["timestamp"] = format_ns(event["timestamp"])
        event["total_cost"] = money_text(event_cost(event))
    return event
