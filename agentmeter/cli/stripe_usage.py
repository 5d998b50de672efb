"""What ``agentmeter stripe sync`` would send: usage per user and period as meter events.

The usage comes from the ledger's report query (grouped by user, at the
chosen granularity), so every value equals what ``agentmeter report``
shows. Only whole periods inside ``[since, until)`` are considered, and only
closed ones: a period still running would be logged as sent while later
events kept arriving in it. Cost is sent in cents, rounded half-even once
from the exact sum of the user's period.

The one decision that makes re-runs safe: a meter event's ``identifier`` is
a hash of (project, user, period, event name, value kind), so the same
usage always goes out under the same identifier, and the sync log (keyed by
it) says what was already sent.

>>> cents(Decimal("0.125")), cents(Decimal("0.135"))
(12, 14)
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from ..core.jsonio import format_time
from ..ledger.base import to_micros
from ..ledger.stripe_store import SyncLogEntry
from ..models import ReportRow
from ..pricing import round_to_cents

VALUE_KINDS = ("cost", "tokens", "api_calls")
GRANULARITIES = ("hour", "day", "month")
# Stripe takes timestamps up to 35 days old; the margin covers a long run.
STRIPE_MAX_AGE = timedelta(days=35) - timedelta(hours=1)
CUSTOMER_ID = re.compile(r"^cus_[A-Za-z0-9]{1,250}$")
EVENT_NAME = re.compile(r"^[A-Za-z0-9_.:\-]{1,100}$")

# A row's status: what the run will do (or did) with it.
SEND = "to send"
SENT = "sent"
FAILED = "failed"
SYNCED = "already synced"
CHANGED = "changed since synced"
OVERLAP = "overlaps a synced period"
OPEN = "period not over"
TOO_OLD = "too old for Stripe"
UNMAPPED = "no Stripe customer"
ZERO = "nothing to send"


@dataclass(frozen=True)
class Period:
    start: datetime
    end: datetime
    granularity: str

    @property
    def label(self) -> str:
        """As ``agentmeter report`` names it: ``2025-01``, ``2025-01-31``, an RFC 3339 hour."""
        if self.granularity == "month":
            return self.start.strftime("%Y-%m")
        if self.granularity == "day":
            return self.start.date().isoformat()
        return format_time(self.start)

    @property
    def timestamp(self) -> int:
        """The meter event's time: the period's last second (so it bills in that period)."""
        return int(self.end.timestamp()) - 1


@dataclass
class PlannedEvent:
    """One user's usage in one period, and what the run does with it."""

    user_id: str
    period: Period
    value: int
    identifier: str
    customer_id: str | None
    status: str
    note: str = ""
    stripe_request_id: str | None = None

    def request(self, event_name: str) -> dict[str, Any]:
        """The Billing Meter Event's parameters, as the ``stripe`` package takes them."""
        return {
            "event_name": event_name,
            "identifier": self.identifier,
            "timestamp": self.period.timestamp,
            "payload": {"stripe_customer_id": self.customer_id or "", "value": str(self.value)},
        }


@dataclass(frozen=True)
class SyncSettings:
    project_id: str
    event_name: str
    value_kind: str
    granularity: str
    livemode: bool
    force: bool = False


@dataclass
class SyncPlan:
    settings: SyncSettings
    start: datetime
    end: datetime
    events: list[PlannedEvent] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        counted: dict[str, int] = {}
        for event in self.events:
            counted[event.status] = counted.get(event.status, 0) + 1
        return counted


# -------------------------------------------------------------- periods


def period_floor(moment: datetime, granularity: str) -> datetime:
    """The start of the UTC hour, day or month holding ``moment``."""
    moment = moment.astimezone(timezone.utc).replace(minute=0, second=0, microsecond=0)
    if granularity in ("day", "month"):
        moment = moment.replace(hour=0)
    if granularity == "month":
        moment = moment.replace(day=1)
    return moment


def next_period(start: datetime, granularity: str) -> datetime:
    if granularity == "hour":
        return start + timedelta(hours=1)
    if granularity == "day":
        return start + timedelta(days=1)
    year, month = (start.year + 1, 1) if start.month == 12 else (start.year, start.month + 1)
    return start.replace(year=year, month=month)


def period_ceil(moment: datetime, granularity: str) -> datetime:
    floor = period_floor(moment, granularity)
    return floor if floor == moment else next_period(floor, granularity)


def whole_periods(since: datetime, until: datetime, granularity: str) -> tuple[datetime, datetime]:
    """The widest ``[start, end)`` of whole periods inside ``[since, until)`` (may be empty)."""
    return period_ceil(since, granularity), period_floor(until, granularity)


def period_of(label: str, granularity: str) -> Period:
    """A report row's period label (``2025-01``, ``2025-01-31``, an RFC 3339 hour) as a Period."""
    if granularity == "month":
        start = datetime.strptime(label, "%Y-%m").replace(tzinfo=timezone.utc)
    else:
        start = datetime.fromisoformat(label.replace("Z", "+00:00"))
        if start.tzinfo is None:
            start = start.replace(tzinfo=timezone.utc)
    return Period(start, next_period(start, granularity), granularity)


# ------------------------------------------------------- values and ids


def cents(cost: Decimal) -> int:
    """A cost in whole cents, rounded half-even once (as billing records are)."""
    return int(round_to_cents(cost).scaleb(2))


def usage_value(row: ReportRow, value_kind: str) -> int:
    if value_kind == "cost":
        return cents(row.cost)
    if value_kind == "tokens":
        return row.tokens_in + row.tokens_out
    return row.api_calls


def identifier(settings: SyncSettings, user_id: str, period: Period) -> str:
    """``am_`` and 32 hex digits: the same for the same usage, on every run and machine."""
    parts = (
        settings.project_id,
        user_id,
        period.start.isoformat(),
        period.end.isoformat(),
        settings.event_name,
        settings.value_kind,
    )
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8", "surrogatepass")).hexdigest()
    return f"am_{digest[:32]}"


def is_customer_id(text: str) -> bool:
    return CUSTOMER_ID.match(text) is not None


# ------------------------------------------------------------- the plan


def plan_sync(
    plan: SyncPlan,
    rows: Sequence[ReportRow],
    customers: Mapping[str, str],
    log: Iterable[SyncLogEntry],
    now: datetime,
    unmapped_notes: Mapping[str, str] | None = None,
) -> SyncPlan:
    """Fill ``plan.events``: one per report row, each with its status."""
    logged = {entry.identifier: entry for entry in log}
    by_user: dict[str, list[SyncLogEntry]] = {}
    for entry in logged.values():
        by_user.setdefault(entry.user_id, []).append(entry)
    for row in rows:
        user_id = row.user_id or ""
        period = period_of(row.period, plan.settings.granularity)
        event = PlannedEvent(
            user_id=user_id,
            period=period,
            value=usage_value(row, plan.settings.value_kind),
            identifier=identifier(plan.settings, user_id, period),
            customer_id=customers.get(user_id),
            status=SEND,
        )
        event.status, event.note = _status(plan.settings, event, logged, by_user, now)
        if event.status == UNMAPPED and unmapped_notes:
            event.note = unmapped_notes.get(user_id, "")
        plan.events.append(event)
    return plan


def _status(
    settings: SyncSettings,
    event: PlannedEvent,
    logged: Mapping[str, SyncLogEntry],
    by_user: Mapping[str, list[SyncLogEntry]],
    now: datetime,
) -> tuple[str, str]:
    if event.period.end > now:
        return OPEN, f"ends {event.period.end.isoformat().replace('+00:00', 'Z')}"
    previous = logged.get(event.identifier)
    if previous is not None and not settings.force:
        if previous.value == str(event.value):
            return SYNCED, ""
        return CHANGED, f"sent {previous.value}; resend with --force (same identifier)"
    if previous is None:
        overlap = _overlapping(event, by_user.get(event.user_id, []))
        if overlap is not None:
            return OVERLAP, f"{overlap.granularity} period {overlap.identifier} was sent"
    if event.value == 0:
        return ZERO, ""
    if event.customer_id is None:
        return UNMAPPED, ""
    if event.period.end - timedelta(seconds=1) < now - STRIPE_MAX_AGE:
        return TOO_OLD, "Stripe takes meter events of the last 35 days only"
    return SEND, "resend (--force)" if previous is not None else ""


def _overlapping(event: PlannedEvent, entries: Sequence[SyncLogEntry]) -> SyncLogEntry | None:
    """A logged event of another period (another granularity) covering part of this one:
    sending both would count that usage twice."""
    start, end = to_micros(event.period.start), to_micros(event.period.end)
    for entry in entries:
        if (
            entry.identifier != event.identifier
            and start < entry.period_end
            and entry.period_start < end
        ):
            return entry
    return None
