"""A stats timeframe (``"24 hours"``, ``"7 days"``, ``"all"``) as a length of time.

Plain functions, re-exported by ``wire.py``: the driver-only report reader
(``ledger/fast_reports.py``) reads a timeframe without loading pydantic.
"""

from __future__ import annotations

import re
from datetime import timedelta

from ..errors import AgentMeterValidationError

TIMEFRAMES = ("1 hour", "24 hours", "7 days", "30 days", "all")
_TIMEFRAME = re.compile(r"^\s*(\d{1,6})\s*(hour|hours|day|days|h|d)\s*$", re.IGNORECASE)


def parse_timeframe(text: str) -> timedelta | None:
    """``"24 hours"`` -> ``timedelta(hours=24)``; ``"all"`` -> None."""
    if text.strip().lower() == "all":
        return None
    match = _TIMEFRAME.match(text)
    if not match:
        raise AgentMeterValidationError.for_field(
            "timeframe", f"must be like '24 hours', '7 days' or 'all', got {text[:40]!r}"
        )
    amount, unit = int(match.group(1)), match.group(2).lower()
    return timedelta(hours=amount) if unit.startswith("h") else timedelta(days=amount)
