"""Time as the ledger stores it: integer microseconds since the Unix epoch, UTC.

Plain functions without SQLAlchemy, shared by every ledger module (through
``base.py``) and by the driver-only report reader (``fast_reports.py``).
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from typing import Any

MICROS = 1_000_000
HOUR_MICROS = 3600 * MICROS
DAY_MICROS = 86400 * MICROS


def to_micros(moment: datetime) -> int:
    """UTC microseconds since the epoch, exactly (no float on the way)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    delta = moment - datetime(1970, 1, 1, tzinfo=timezone.utc)
    return (delta.days * 86400 + delta.seconds) * MICROS + delta.microseconds


def from_micros(micros: int) -> datetime:
    seconds, rest = divmod(micros, MICROS)
    moment = datetime.fromtimestamp(seconds, tz=timezone.utc)
    return moment.replace(microsecond=rest)


_EPOCH = datetime(1970, 1, 1)  # naive: adding a timedelta to it needs no time zone


def wire_time(micros: int) -> str:
    """``format_time(from_micros(micros))``, RFC 3339 with ``Z``, at half the cost
    (an event list writes one per row)."""
    return (_EPOCH + timedelta(microseconds=micros)).isoformat() + "Z"


def now_micros() -> int:
    return time.time_ns() // 1000


def period_label(value: Any, granularity: str) -> str:
    """A report period as the wire shows it: RFC 3339 for an hour (its start in
    micros), the date for a day, ``YYYY-MM`` (already text) for a month."""
    if granularity in ("month", "all"):
        return str(value)
    if granularity == "hour":
        return wire_time(int(value))
    return from_micros(int(value)).date().isoformat()
