"""What an event must pass before it is stored, besides its own validation.

- **Its project exists.** A project key implies it (keys are deleted with
  their project), so only admin writes are checked, against a small cache of
  project ids seen to exist, kept for :data:`KNOWN_FOR` seconds: a project
  deleted through another server process may take that long to be refused.
  The embedded mode creates a project on its first use instead (its users
  never call ``POST /projects``).
- **Its time is not in the future** by more than the allowed clock skew
  (:data:`DEFAULT_MAX_FUTURE_SKEW`, as Stripe allows), so it cannot sit in
  every "last hour" view to come. A time sent without an offset is read as
  UTC, but the AgentMeter 0.2 SDK sends naive *local* time, which east of
  UTC lies up to 14 hours ahead: such a time is allowed those 14 hours more
  (refusing it would refuse every 0.2 client in Europe or Asia).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

from ..errors import TIMESTAMP_IN_FUTURE
from .errors import WireError, not_found

if TYPE_CHECKING:
    from . import Ledger

DEFAULT_MAX_FUTURE_SKEW = timedelta(minutes=5)
NAIVE_TIME_ALLOWANCE = timedelta(hours=14)  # the largest UTC offset (UTC+14)
KNOWN_FOR = 30.0  # seconds a project seen to exist is not looked up again


class KnownProjects:
    """Which project ids exist, looked up once in a while, created if asked to."""

    def __init__(self, ledger: Ledger, *, create_missing: bool = False) -> None:
        self.ledger = ledger
        self.create_missing = create_missing
        self._seen: dict[str, float] = {}  # project id -> monotonic time it was seen
        self._lock = threading.Lock()

    def missing(self, project_ids: Iterable[str]) -> set[str]:
        """The ids among ``project_ids`` with no project (none when creating them)."""
        now = time.monotonic()
        unknown = {pid for pid in project_ids if now - self._seen.get(pid, -KNOWN_FOR) >= KNOWN_FOR}
        if not unknown:
            return set()
        absent = set()
        for project_id in sorted(unknown):
            if self.create_missing:
                self.ledger.ensure_project(project_id, project_id)
            elif not self._exists(project_id):
                absent.add(project_id)
                continue
            with self._lock:
                self._seen[project_id] = now
        return absent

    def forget(self, project_id: str) -> None:
        """The project was deleted: look it up again next time."""
        with self._lock:
            self._seen.pop(project_id, None)

    def _exists(self, project_id: str) -> bool:
        try:
            self.ledger.get_project(project_id)
        except WireError as exc:
            if exc.status == 404:
                return False
            raise
        return True


def unknown_project(project_id: str) -> WireError:
    error = not_found(f"project {project_id!r}")
    error.details = [{"field": "project_id", "message": "no such project"}]
    return error


class FutureLimit:
    """How far in the future an event's time may be (``None``: any time)."""

    def __init__(self, max_future_skew: timedelta | None = DEFAULT_MAX_FUTURE_SKEW) -> None:
        if max_future_skew is not None and max_future_skew < timedelta(0):
            raise ValueError(f"max_future_skew must not be negative, got {max_future_skew}")
        self.skew = max_future_skew

    def latest(self) -> datetime | None:
        """The latest event time accepted now (None: any)."""
        return None if self.skew is None else datetime.now(timezone.utc) + self.skew

    def error(
        self, timestamp: datetime, latest: datetime | None, sent: object = None
    ) -> WireError | None:
        """A 422 naming ``timestamp`` if it is later than ``latest``; ``sent`` is the
        time as the client wrote it (a naive one is given more room)."""
        if latest is None or timestamp <= latest:
            return None
        if timestamp <= latest + NAIVE_TIME_ALLOWANCE and _is_naive(sent):
            return None
        message = (
            f"timestamp: {timestamp.isoformat()} is in the future (this server allows "
            f"{self.skew} of clock skew); send the time the usage happened"
        )
        # Its own code: a fast client clock is not bad content, and a tracker
        # sends the event again once the server's clock has caught up.
        details = [
            {
                "field": "timestamp",
                "message": "in the future",
                "latest_accepted": latest.isoformat().replace("+00:00", "Z"),
            }
        ]
        return WireError(422, TIMESTAMP_IN_FUTURE, message, details)


def _is_naive(sent: object) -> bool:
    if isinstance(sent, datetime):
        return sent.tzinfo is None
    if not isinstance(sent, str):
        return False
    try:
        return datetime.fromisoformat(sent.strip().replace("Z", "+00:00")).tzinfo is None
    except ValueError:
        return False
