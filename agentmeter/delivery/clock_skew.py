"""Events the server refused only because their time is ahead of its clock.

A machine whose clock runs fast stamps real usage minutes "in the future";
the server refuses such events with ``timestamp_in_future`` and says the
latest time it accepts now. That is not bad content: once the server's clock
has caught up the same event is accepted. So the tracker keeps it in the
outbox, out of reach until then, instead of dropping it as a rejection.

An event more than :data:`MAX_DEFERRAL` ahead is not a clock off by a few
minutes but a wrong time (the year 9999): rejected like any invalid event.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from ..errors import TIMESTAMP_IN_FUTURE
from ..models import ErrorInfo

MAX_DEFERRAL = timedelta(days=1)
_MARGIN = timedelta(seconds=1)  # past the server's limit, not on it
_UNKNOWN_WAIT = timedelta(minutes=1)  # the server did not say how far ahead


def wait_before_resend(event: dict[str, Any], error: ErrorInfo) -> timedelta | None:
    """How long to hold ``event`` before sending it again; None if the refusal
    is final (another error, or a time too far ahead to be clock skew)."""
    if error.code != TIMESTAMP_IN_FUTURE:
        return None
    stamped = _parsed(event.get("timestamp"))
    latest = _parsed(_latest_accepted(error))
    if stamped is None or latest is None:
        return _UNKNOWN_WAIT
    ahead = stamped - latest
    if ahead > MAX_DEFERRAL:
        return None
    return max(ahead, timedelta(0)) + _MARGIN


def _latest_accepted(error: ErrorInfo) -> Any:
    for detail in error.details:
        if isinstance(detail, dict) and "latest_accepted" in detail:
            return detail["latest_accepted"]
    return None


def _parsed(moment: Any) -> datetime | None:
    if not isinstance(moment, str):
        return None
    try:
        parsed = datetime.fromisoformat(moment.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None
