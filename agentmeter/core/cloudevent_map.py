"""An event as a CloudEvent (v1.0, structured JSON) and back, as plain dicts.

The envelope carries who and when: ``id`` is the event id, ``source`` the agent,
``subject`` the user, ``time`` the timestamp, ``type`` the payment type
(``agentmeter.<payment_type>``) and the extension ``projectid`` the project
(left out, the key's own project is meant). ``data`` holds the rest: the
payment type's own fields and the metadata. No SDK is needed here; the server
checks envelopes with the ``cloudevents`` package as well.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from agentmeter.errors import AgentMeterValidationError

SPEC_VERSION = "1.0"
TYPE_PREFIX = "agentmeter."
PAYMENT_TYPES = ("api_request_pay", "token_based_pay", "instant_pay")
CLOUDEVENT_TYPES = tuple(TYPE_PREFIX + name for name in PAYMENT_TYPES)
PROJECT_EXTENSION = "projectid"
# The attributes CloudEvents v1.0 requires, in the order they are checked.
REQUIRED_ATTRIBUTES = ("specversion", "id", "source", "type")
# The media types of structured mode: one envelope, and a JSON array of them.
STRUCTURED_CONTENT_TYPE = "application/cloudevents+json"
BATCH_CONTENT_TYPE = "application/cloudevents-batch+json"
CLOUDEVENTS_PATH = "/api/meter/cloudevents"
# The event fields the envelope carries, by their envelope attribute.
ENVELOPE_FIELDS = {
    "id": "id",
    "source": "agent_id",
    "subject": "user_id",
    "time": "timestamp",
    PROJECT_EXTENSION: "project_id",
}
# Fields of a stored event that are answers, not inputs: never in ``data``.
DERIVED_FIELDS = frozenset({"payment_type", "event_type", "total_cost", "cost"})


def to_cloudevent(event: Mapping[str, Any]) -> dict[str, Any]:
    """The structured-mode CloudEvent of one wire event (a dict as the API takes it)."""
    envelope: dict[str, Any] = {
        "specversion": SPEC_VERSION,
        "type": TYPE_PREFIX + str(event["payment_type"]),
        "datacontenttype": "application/json",
    }
    for attribute, field in ENVELOPE_FIELDS.items():
        if event.get(field) is not None:
            envelope[attribute] = event[field]
    envelope["data"] = {
        key: value
        for key, value in event.items()
        if key not in DERIVED_FIELDS and key not in ENVELOPE_FIELDS.values()
    }
    return envelope


def check_envelope(envelope: Any) -> None:
    """Raise AgentMeterValidationError naming the first required attribute that is
    missing or not a non-empty string (``specversion`` must be ``"1.0"``)."""
    if not isinstance(envelope, Mapping):
        raise AgentMeterValidationError.for_field("cloudevent", "must be a JSON object")
    for attribute in REQUIRED_ATTRIBUTES:
        value = envelope.get(attribute)
        if attribute not in envelope:
            raise AgentMeterValidationError.for_field(attribute, "required")
        if not isinstance(value, str) or not value:
            raise AgentMeterValidationError.for_field(attribute, "must be a non-empty string")
    if envelope["specversion"] != SPEC_VERSION:
        raise AgentMeterValidationError.for_field(
            "specversion", f"must be {SPEC_VERSION!r}, got {envelope['specversion']!r}"
        )
    if "data_base64" in envelope:
        raise AgentMeterValidationError.for_field(
            "data_base64", "not supported: send the event's fields as JSON in data"
        )


def event_of(envelope: Any) -> dict[str, Any]:
    """The wire event of a full CloudEvent: its required attributes checked, then mapped."""
    check_envelope(envelope)
    return from_cloudevent(envelope)


def from_cloudevent(envelope: Any) -> dict[str, Any]:
    """The wire event a CloudEvent describes (AgentMeterValidationError naming the attribute)."""
    if not isinstance(envelope, Mapping):
        raise AgentMeterValidationError.for_field("cloudevent", "must be a JSON object")
    kind = envelope.get("type")
    if kind not in CLOUDEVENT_TYPES:
        raise AgentMeterValidationError.for_field(
            "type", f"must be one of {', '.join(CLOUDEVENT_TYPES)}, got {kind!r}"
        )
    data = envelope.get("data", {})
    if not isinstance(data, Mapping):
        raise AgentMeterValidationError.for_field("data", "must be a JSON object")
    clashes = sorted(set(data) & (set(ENVELOPE_FIELDS.values()) | {"payment_type"}))
    if clashes:
        raise AgentMeterValidationError.for_field(
            f"data.{clashes[0]}", "belongs in the envelope, not in data"
        )
    event: dict[str, Any] = {**data, "payment_type": kind[len(TYPE_PREFIX) :]}
    for attribute, field in ENVELOPE_FIELDS.items():
        if envelope.get(attribute) is not None:
            event[field] = envelope[attribute]
    return event
