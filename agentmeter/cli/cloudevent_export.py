"""``agentmeter events --format cloudevents`` and ``cloudevents-jsonl``: events as CloudEvents.

Each event becomes its structured-mode envelope
(:func:`agentmeter.core.cloudevent_map.to_cloudevent`). ``cloudevents``
writes one JSON array (the body ``POST /api/meter/cloudevents`` takes as
``application/cloudevents-batch+json``), ``cloudevents-jsonl`` one envelope per
line. Both are streamed: an envelope is written as its page arrives.
``agentmeter import`` reads either back.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import IO, Any

from ..core.cloudevent_map import to_cloudevent
from ..models import MeterEvent
from .output import dump_json, wire_value

FORMATS = ("cloudevents", "cloudevents-jsonl")


def write_cloudevents(out: IO[str], found: Iterator[MeterEvent], query: dict[str, Any]) -> int:
    """One JSON array of envelopes, indented like the JSON export; the count written."""
    out.write("[")
    count = 0
    for event in found:
        text = dump_json(to_cloudevent(event.to_dict())).replace("\n", "\n  ")
        out.write(("," if count else "") + "\n  " + text)
        count += 1
    out.write("\n]\n" if count else "]\n")
    return count


def write_cloudevents_jsonl(
    out: IO[str], found: Iterator[MeterEvent], query: dict[str, Any]
) -> int:
    """One envelope per line (JSON Lines); the count written."""
    count = 0
    for event in found:
        envelope = to_cloudevent(event.to_dict())
        out.write(json.dumps(envelope, ensure_ascii=False, default=wire_value) + "\n")
        count += 1
    return count


WRITERS = {"cloudevents": write_cloudevents, "cloudevents-jsonl": write_cloudevents_jsonl}
