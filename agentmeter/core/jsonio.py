"""JSON as the wire speaks it: exact decimals both ways.

Money is written as the decimal's own text in a string (``"0.004"``) and read
from either a string or a JSON number; numbers are parsed with
``parse_float=Decimal`` so no value ever passes through a binary float.
"""

from __future__ import annotations

import enum
import json
import uuid
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any

from ..errors import AgentMeterValidationError
from ..pricing import money_text


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return money_text(value) if value.is_finite() else str(value)
    if isinstance(value, datetime):
        return format_time(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    # Metadata may hold objects of the user's; their text is better than a
    # lost event.
    return str(value)


_ENCODER = json.JSONEncoder(
    default=_default, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)


def dumps(value: Any) -> str:
    return _ENCODER.encode(value)


def dumps_bytes(value: Any) -> bytes:
    """UTF-8 JSON; through ``orjson`` when it is installed (the ``speed`` extra)
    and writes the value as the standard library would, else the standard library."""
    if _orjson is not None:
        fast = _orjson_bytes(value)
        if fast is not None:
            return fast
    return _ENCODER.encode(value).encode("utf-8")


# orjson encodes a batch of events about 6 times faster than the standard
# library, and the tracker's worker encodes while the application's threads
# wait for the GIL. It is only a shortcut: wherever it would write something
# other than the standard encoder (NaN or Infinity, which it writes as null;
# integers beyond 64 bits; non-text keys; a lone surrogate; dataclasses, numpy
# values, datetimes or any object it does not know, which go through
# ``_default`` or its ``str()`` here), the value is encoded again the standard
# way, which writes it or raises exactly as without orjson. Decimals are
# written by ``_default`` in both, as their own text.
try:
    import orjson as _orjson
except ImportError:  # pragma: no cover - the speed extra is optional
    _orjson = None  # type: ignore[assignment]
else:
    _ORJSON_OPTIONS = _orjson.OPT_PASSTHROUGH_DATETIME | _orjson.OPT_PASSTHROUGH_DATACLASS


def _orjson_default(value: Any) -> Any:
    kind = type(value)
    if kind is Decimal:
        return money_text(value) if value.is_finite() else str(value)
    if kind is datetime:  # as _default writes it (an event's answer has one)
        return format_time(value)
    if kind is set or kind is frozenset:
        return list(value)
    raise TypeError  # the standard encoder decides (and its _default)


def _orjson_bytes(value: Any) -> bytes | None:
    """orjson's encoding of ``value``, or None where it may differ from the standard one."""
    try:
        encoded: bytes = _orjson.dumps(value, default=_orjson_default, option=_ORJSON_OPTIONS)
    except Exception:  # anything orjson refuses: the standard encoder's answer instead
        return None
    # null is also how orjson writes NaN and Infinity, which the standard
    # encoder refuses: let it see any body with a null (or the word in a string).
    return None if b"null" in encoded else encoded


def encode_body(body: Any) -> bytes | None:
    """A request body as UTF-8 JSON; AgentMeterValidationError when it cannot be one.

    The models refuse such values first; this keeps a raw dict that slipped
    past them (NaN, a lone surrogate) from escaping as a ValueError.
    """
    if body is None:
        return None
    try:
        return dumps_bytes(body)
    except (ValueError, RecursionError) as exc:  # UnicodeEncodeError is a ValueError
        raise AgentMeterValidationError(
            f"the request cannot be sent as JSON ({type(exc).__name__}): "
            "it holds NaN, Infinity, an unpaired surrogate or too deep a nesting",
            field=None,
        ) from None


def loads(data: str | bytes) -> Any:
    return json.loads(data, parse_float=Decimal)


def format_time(moment: datetime) -> str:
    """RFC 3339 in UTC with a ``Z`` offset; naive times are taken as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    else:
        moment = moment.astimezone(timezone.utc)
    return moment.isoformat().replace("+00:00", "Z")
