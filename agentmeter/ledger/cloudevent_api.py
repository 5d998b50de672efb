"""CloudEvents in: ``POST /api/meter/cloudevents``, without HTTP (docs/cloudevents.md).

Structured mode only: ``application/cloudevents+json`` (one envelope, answered
like ``POST /api/meter/event``) and ``application/cloudevents-batch+json`` (a
JSON array, answered like the batch endpoint). Each envelope is checked by the
official ``cloudevents`` package, mapped to a wire event
(:mod:`agentmeter.core.cloudevent_map`) and then takes the very path of the
event endpoints (:class:`~agentmeter.ledger.api.LedgerAPI`): the same
validation, access rules, idempotency by id and answers.

The decision worth knowing: binary mode (``ce-*`` headers and a plain JSON
body) is refused with 415 naming the two media types. One parse path, and a
batch has no binary mode anyway. The ``cloudevents`` package is imported on
the first request, so a server without the ``cloudevents`` extra still starts;
the endpoint then answers 501 saying what to install.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from ..core.cloudevent_map import (
    BATCH_CONTENT_TYPE,
    CLOUDEVENTS_PATH,
    PROJECT_EXTENSION,
    STRUCTURED_CONTENT_TYPE,
    event_of,
)
from ..errors import AgentMeterValidationError
from .api import LedgerAPI, Principal
from .errors import WireError
from .event_input import MAX_BATCH_EVENTS, rejection

__all__ = ["CLOUDEVENTS_PATH", "media_type_of", "record_cloudevents"]
CONTENT_TYPES = (STRUCTURED_CONTENT_TYPE, BATCH_CONTENT_TYPE)
Validator = Callable[[dict[str, Any], Any], object]


def media_type_of(content_type: str | None) -> str:
    """The request's structured-mode media type, or 415 naming the two accepted."""
    media_type = (content_type or "").split(";")[0].strip().lower()
    if media_type in CONTENT_TYPES:
        return media_type
    given = f"got {media_type!r}" if media_type else "no Content-Type was sent"
    binary = " (binary mode, ce-* headers with a plain body, is not accepted)"
    raise WireError(
        415,
        "unsupported_media_type",
        f"send {STRUCTURED_CONTENT_TYPE} (one CloudEvent) or {BATCH_CONTENT_TYPE} "
        f"(a JSON array of them){binary if media_type == 'application/json' else ''}; {given}",
    )


def record_cloudevents(
    api: LedgerAPI, who: Principal, content_type: str | None, body: Any
) -> tuple[int, dict[str, Any]]:
    """The status and answer to a CloudEvents request (201 for one, 200 for a batch)."""
    media_type = media_type_of(content_type)
    validate = official_validator()
    if media_type == STRUCTURED_CONTENT_TYPE:
        if not isinstance(body, Mapping):
            raise WireError(400, "bad_request", f"a {media_type} body is one JSON object")
        return 201, api.record_event(who, wire_event(who, body, validate))
    return 200, _record_batch(api, who, body, validate)


def _record_batch(api: LedgerAPI, who: Principal, body: Any, validate: Validator) -> dict[str, Any]:
    if not isinstance(body, list):
        raise WireError(
            422,
            "validation_error",
            "body: must be a JSON array of CloudEvents",
            [{"field": "body", "message": "must be a JSON array"}],
        )
    if len(body) > MAX_BATCH_EVENTS:
        raise WireError(
            413,
            "too_many_events",
            f"a batch holds at most {MAX_BATCH_EVENTS} events, got {len(body)}",
        )
    events: list[dict[str, Any]] = []
    positions: list[int] = []  # each mapped event's index in the request
    rejected: list[dict[str, Any]] = []
    for index, envelope in enumerate(body):
        try:
            events.append(wire_event(who, envelope, validate))
        except WireError as exc:
            rejected.append(rejection(index, envelope, exc))
            continue
        positions.append(index)
    answer = api.record_batch(who, {"events": events})
    for item in answer["rejected"]:
        item["index"] = positions[item["index"]]
    answer["rejected"] = sorted([*rejected, *answer["rejected"]], key=lambda item: item["index"])
    return answer


def wire_event(who: Principal, envelope: Any, validate: Validator) -> dict[str, Any]:
    """The wire event of one envelope, its project the key's when it names none
    (WireError 422 naming the attribute otherwise)."""
    try:
        event = event_of(envelope)
    except AgentMeterValidationError as exc:
        raise WireError.from_validation(exc) from None
    _check_officially(envelope, validate)
    if not event.get("project_id") and who.project_id:
        event["project_id"] = who.project_id
    if not event.get("project_id"):
        raise WireError(
            422,
            "validation_error",
            f"{PROJECT_EXTENSION}: required with an admin key (the project to charge)",
            [{"field": PROJECT_EXTENSION, "message": "required"}],
        )
    return event


def _check_officially(envelope: Mapping[str, Any], validate: Validator) -> None:
    """The ``cloudevents`` package's verdict on the envelope's attributes."""
    attributes = {key: value for key, value in envelope.items() if key != "data"}
    time = attributes.get("time")
    if isinstance(time, str):
        try:
            attributes["time"] = datetime.fromisoformat(time.replace("Z", "+00:00"))
        except ValueError:
            raise _invalid("time", f"must be an RFC 3339 time, got {time[:40]!r}") from None
    from cloudevents.core.exceptions import CloudEventValidationError

    try:
        validate(attributes, envelope.get("data"))
    except CloudEventValidationError as exc:
        names = sorted(exc.errors)
        details = [
            {"field": name, "message": "; ".join(str(error) for error in exc.errors[name])}
            for name in names
        ]
        first = details[0]
        raise WireError(
            422, "validation_error", f"{first['field']}: {first['message']}", details
        ) from None


def _invalid(field: str, message: str) -> WireError:
    return WireError(
        422, "validation_error", f"{field}: {message}", [{"field": field, "message": message}]
    )


def official_validator() -> Validator:
    """The ``cloudevents`` package's v1.0 event class (it validates on construction),
    or 501 when the server was installed without the ``cloudevents`` extra."""
    try:
        from cloudevents.core.v1.event import CloudEvent
    except ImportError:
        raise WireError(
            501,
            "not_implemented",
            "this server cannot read CloudEvents: install the cloudevents package "
            "(pip install 'agentmeter[cloudevents]') and restart it",
        ) from None
    return CloudEvent
