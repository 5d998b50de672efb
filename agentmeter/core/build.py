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
from .price_book import REPRICE

WireEvent = dict[str, Any]
EVENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,127}$")
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
    if event_id is not None and (type(event_id) is not str or not EVENT_ID.match(event_id)):
        raise AgentMeterValidationError.for_field(
            "id", f"is not a valid event id: {event_id!r:.60}"
        )
    now = time.time_ns()  # one clock read for the id and (unless given) the timestamp
    return {
        "id": event_id or new_event_id(now),
        "project_id": check_name(project_id, "project_id"),
        "agent_id": check_name(agent_id, "agent_id"),
        "user_id": check_name(user_id, "user_id"),
        "payment_type": payment_type,
        "event_type": event_type,
        "timestamp": now if timestamp is None else timestamp_ns(timestamp),
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
    *,
    model: Any = None,
    cached_tokens_in: Any = 0,
    cache_write_tokens: Any = 0,
    cached_input_token_price: Any = None,
    cache_write_token_price: Any = None,
) -> WireEvent:
    """A token event; the token classes and ``model`` go in only when given
    (not 0, not None), so without them the event is the 0.2 one."""
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
    if (
        model is not None
        or cached_tokens_in
        or cache_write_tokens
        or cached_input_token_price is not None
        or cache_write_token_price is not None
    ):
        add_token_classes(
            event,
            model,
            cached_tokens_in,
            cache_write_tokens,
            cached_input_token_price,
            cache_write_token_price,
        )
    return event


def add_token_classes(
    event: WireEvent,
    model: Any,
    cached_tokens_in: Any,
    cache_write_tokens: Any,
    cached_input_token_price: Any,
    cache_write_token_price: Any,
) -> None:
    """The optional fields of a token event, checked as the model checks them.

    The common case (a model, no cache tokens) is a few checks: it runs on the
    hot path of every charge priced by its model."""
    if model is not None:
        if type(model) is not str or not 0 < len(model) <= 200:
            raise AgentMeterValidationError.for_field(
                "model", f"must be a non-empty string of at most 200 characters, got {model!r:.60}"
            )
        event["model"] = model if model.isascii() else check_text(model, "model")
    if type(cached_tokens_in) is not int or cached_tokens_in:
        cached = to_count(cached_tokens_in, "cached_tokens_in")
        if cached > event["tokens_in"]:
            raise AgentMeterValidationError.for_field(
                "cached_tokens_in",
                f"must be at most tokens_in ({event['tokens_in']}), got {cached}",
            )
        if cached:
            event["cached_tokens_in"] = cached
    if type(cache_write_tokens) is not int or cache_write_tokens:
        written = to_count(cache_write_tokens, "cache_write_tokens")
        if written:
            event["cache_write_tokens"] = written
    if cached_input_token_price is not None:
        event["cached_input_token_price"] = to_money(
            cached_input_token_price, "cached_input_token_price"
        )
    if cache_write_token_price is not None:
        event["cache_write_token_price"] = to_money(
            cache_write_token_price, "cache_write_token_price"
        )


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
        if "cached_tokens_in" not in event and "cache_write_tokens" not in event:
            return token_cost(
                event["tokens_in"],
                event["tokens_out"],
                Decimal(event["input_token_price"]),
                Decimal(event["output_token_price"]),
            )
        cached_price = event.get("cached_input_token_price")
        write_price = event.get("cache_write_token_price")
        return token_cost(
            event["tokens_in"],
            event["tokens_out"],
            Decimal(event["input_token_price"]),
            Decimal(event["output_token_price"]),
            event.get("cached_tokens_in", 0),
            event.get("cache_write_tokens", 0),
            None if cached_price is None else Decimal(cached_price),
            None if write_price is None else Decimal(write_price),
        )
    return Decimal(event["amount"])


_last_second: tuple[int, str] = (0, "1970-01-01T00:00:00")


def format_ns(nanoseconds: int) -> str:
    """RFC 3339 in UTC to the microsecond, as ``datetime.isoformat`` writes it.

    The date and time to the second are made once per second (a batch's
    events share them): making them cost about 1 us per event on the worker,
    whose time is taken from the application's threads (the GIL)."""
    global _last_second
    seconds, rest = divmod(nanoseconds, 1_000_000_000)
    cached = _last_second
    if cached[0] != seconds:
        moment = datetime.fromtimestamp(seconds, tz=timezone.utc)
        cached = (seconds, moment.isoformat()[:-6])  # without "+00:00"
        _last_second = cached
    micros = rest // 1000
    return f"{cached[1]}.{micros:06d}Z" if micros else f"{cached[1]}Z"


def finalize(event: WireEvent) -> WireEvent:
    """Give a hot-path event its final wire form (idempotent; delivery thread only).

    An event priced while its project's price table was missing or stale
    carries ``(book, prices given, model)`` under ``REPRICE``: its prices are
    settled now, from a fresh table, before its cost is worked out."""
    if type(event["timestamp"]) is int:
        pending = event.pop(REPRICE, None)
        if pending is not None:
            pending[0].reprice(event, pending[1], pending[2])
        event["timestamp"] = format_ns(event["timestamp"])
        event["total_cost"] = money_text(event_cost(event))
    return event
