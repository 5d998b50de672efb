"""What may be stored as text and as metadata: the values every later stage can read.

A value that JSON cannot carry (NaN, Infinity, a lone UTF-16 surrogate such
as ``"\\ud800"``, nesting deeper than :data:`MAX_METADATA_DEPTH`) is refused
where it enters, with the field named: once stored, it would break every
read of its row, and in a batch it would take the valid events with it.
The models, the hot-path builder and the server all call these functions,
so the three agree on what is valid.

>>> check_metadata({"model": "gpt-4o", "tokens": 12})
{'model': 'gpt-4o', 'tokens': 12}
>>> check_metadata({"x": float("nan")})
Traceback (most recent call last):
...
agentmeter.errors.AgentMeterValidationError: metadata.x: must be a finite number, got nan
"""

from __future__ import annotations

import datetime as dt
import enum
import json
import math
import uuid
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from ..errors import AgentMeterValidationError

MAX_METADATA_DEPTH = 32
# Integers beyond 64 bits are not read back exactly by most JSON parsers.
INT_LIMIT = 2**64
_EXPONENT_LIMIT = 400
_SCALARS = (str, int, float, bool, type(None))


def has_lone_surrogate(text: str) -> bool:
    """Whether ``text`` holds a UTF-16 surrogate that UTF-8 cannot encode."""
    if text.isascii():
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def check_text(value: str, field: str) -> str:
    """``value`` itself, if it is text that can be stored and sent (no lone surrogate)."""
    if has_lone_surrogate(value):
        raise AgentMeterValidationError.for_field(
            field, "holds an unpaired UTF-16 surrogate; it is not valid Unicode text"
        )
    return value


def check_metadata(metadata: Any) -> dict[str, Any]:
    """A copy of ``metadata`` that any later stage can encode, or AgentMeterValidationError.

    Keys are strings; values are JSON values (finite numbers, valid text,
    at most :data:`MAX_METADATA_DEPTH` levels deep), datetimes, decimals,
    UUIDs or enums. Any other object is stored as its ``str()``, taken now,
    so a later change of the object (or a failing ``__str__``) cannot reach
    the stored event. The copy is shallow unless a value had to be converted
    or is a container: later changes by the caller do not leak in.
    """
    if metadata is None:
        return {}
    if type(metadata) is dict:
        copied = metadata.copy()
    elif isinstance(metadata, Mapping):
        copied = dict(metadata)
    else:
        raise AgentMeterValidationError.for_field(
            "metadata", f"must be a dict, got {type(metadata).__name__}"
        )
    for key, value in copied.items():
        # The common case, flat text and small numbers, costs one type check
        # each (the tracker's hot path runs this for every event).
        if type(key) is not str or not key.isascii():
            return _with_text_keys(copied)
        kind = type(value)
        if kind is str:
            if value.isascii():
                continue
        elif kind is int:
            if -INT_LIMIT < value < INT_LIMIT:
                continue
        elif kind is float and value - value == 0.0:  # finite: inf - inf and nan - nan are nan
            continue
        copied[key] = _json_value(value, f"metadata.{key}", 2)
    return copied


def _with_text_keys(metadata: dict[str, Any]) -> dict[str, Any]:
    """The slow path: top-level keys must be text (a str enum is its value);
    nested keys may also be numbers, booleans or None, written as JSON writes them."""
    for key in metadata:
        if not isinstance(key, str):
            raise _invalid("metadata", f"keys must be strings, got {key!r:.60}")
    converted: dict[str, Any] = _json_value(metadata, "metadata", 1)
    return converted


def _invalid(path: str, problem: str) -> AgentMeterValidationError:
    return AgentMeterValidationError(f"{path}: {problem}", field="metadata")


def _key_text(key: Any, path: str) -> str:
    """A key as JSON writes it: text as itself (a str enum as its value), and
    ``1``, ``1.5``, ``true``, ``null`` as their JSON text."""
    if isinstance(key, str):
        text = str(key.value) if isinstance(key, enum.Enum) else str.__str__(key)
    elif (
        key is None
        or isinstance(key, (bool, int))
        or (isinstance(key, float) and math.isfinite(key))
    ):
        text = json.dumps(key)
    else:
        raise _invalid(path, f"keys must be strings, got {key!r:.60}")
    if has_lone_surrogate(text):
        raise _invalid(path, "a key holds an unpaired UTF-16 surrogate")
    return text


def _json_value(value: Any, path: str, depth: int) -> Any:
    """``value`` made safe to encode (a deep copy of containers), or a validation error."""
    if isinstance(value, (*_SCALARS, Decimal)):
        return _scalar(value, path)
    if isinstance(value, (dt.date, dt.time, uuid.UUID)):
        return value
    if isinstance(value, enum.Enum):
        return _json_value(value.value, path, depth)
    if isinstance(value, (Mapping, list, tuple, set, frozenset)):
        if depth > MAX_METADATA_DEPTH:
            raise _invalid(path, f"nested deeper than {MAX_METADATA_DEPTH} levels")
        if isinstance(value, Mapping):
            copied: dict[str, Any] = {}
            for key, item in value.items():
                text = _key_text(key, path)
                copied[text] = _json_value(item, f"{path}.{text}", depth + 1)
            return copied
        items = _in_stable_order(value) if isinstance(value, (set, frozenset)) else value
        return [_json_value(item, f"{path}[{i}]", depth + 1) for i, item in enumerate(items)]
    return _text_of(value, path)


def _in_stable_order(values: set[Any] | frozenset[Any]) -> list[Any]:
    """A set's items in an order that does not vary between runs, where one exists."""
    try:
        return sorted(values, key=repr)
    except Exception:  # a user's __repr__ may raise anything
        return list(values)


def _scalar(value: Any, path: str) -> Any:
    if isinstance(value, str):
        if has_lone_surrogate(value):
            raise _invalid(path, "holds an unpaired UTF-16 surrogate")
        return str(value)
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        if not -INT_LIMIT < value < INT_LIMIT:
            raise _invalid(path, "integers must be within ±2**64")
        return int(value)
    finite = value.is_finite() if isinstance(value, Decimal) else math.isfinite(value)
    if not finite:
        raise _invalid(path, f"must be a finite number, got {value}")
    # A decimal's text has no exponent on the wire: 1E+999999 would be a megabyte.
    if isinstance(value, Decimal) and value and abs(value.adjusted()) > _EXPONENT_LIMIT:
        raise _invalid(path, f"numbers must lie within 1e-{_EXPONENT_LIMIT} to 1e{_EXPONENT_LIMIT}")
    return value


def _text_of(value: Any, path: str) -> str:
    try:
        text = str(value)
    except Exception:  # a user's __str__ may raise anything
        raise _invalid(path, f"a {type(value).__name__} that cannot be turned into text") from None
    return _scalar(text, path)  # type: ignore[no-any-return]
