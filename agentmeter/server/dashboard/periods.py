"""The dashboard's period picker: a named span (or two dates) as a half-open time range.

Every span ends *now* (one microsecond past it, as ranges are half-open):
the same events ``/api/meter/stats`` counts for the same timeframe.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone

# name -> (label, length, chart bucket)
PRESETS: dict[str, tuple[str, timedelta, str]] = {
    "24h": ("Last 24 hours", timedelta(hours=24), "hour"),
    "7d": ("Last 7 days", timedelta(days=7), "hour"),
    "30d": ("Last 30 days", timedelta(days=30), "day"),
}
CHOICES = {
    **{name: label for name, (label, _, _) in PRESETS.items()},
    "this-month": "This month",
    "last-month": "Last month",
    "custom": "Custom",
}
DEFAULT = "30d"
_TICK = timedelta(microseconds=1)
_HOURLY_UP_TO = timedelta(days=7)
_DAILY_UP_TO = timedelta(days=400)


class PeriodError(ValueError):
    """A custom period that cannot be read; the message says why."""


@dataclass(frozen=True)
class Period:
    name: str  # a key of CHOICES
    start: datetime
    end: datetime  # exclusive
    bucket: str  # "hour", "day" or "month": the chart's and the report's granularity
    first_day: date | None = None  # a custom period's dates, to show in the picker
    last_day: date | None = None

    @property
    def label(self) -> str:
        if self.name == "custom" and self.first_day and self.last_day:
            return f"{self.first_day.isoformat()} to {self.last_day.isoformat()}"
        return CHOICES[self.name]

    def params(self) -> dict[str, str]:
        """The query parameters that choose this period again."""
        if self.name != "custom" or not (self.first_day and self.last_day):
            return {"period": self.name}
        return {
            "period": "custom",
            "from": self.first_day.isoformat(),
            "to": self.last_day.isoformat(),
        }


def period_of(params: Mapping[str, str], now: datetime | None = None) -> Period:
    """The period a page's query string asks for (the last 30 days by default).

    Raises :class:`PeriodError` for a custom period with unreadable or reversed dates.
    """
    now = now or datetime.now(timezone.utc)
    name = params.get("period") or DEFAULT
    if name in PRESETS:
        _, length, bucket = PRESETS[name]
        return Period(name, now - length, now + _TICK, bucket)
    if name == "this-month":
        return Period(name, _month_start(now), now + _TICK, "day")
    if name == "last-month":
        end = _month_start(now)
        return Period(name, _month_start(end - _TICK), end, "day")
    if name == "custom":
        return _custom(params.get("from", ""), params.get("to", ""))
    raise PeriodError(f"no period {name[:40]!r}; choose one of {', '.join(CHOICES)}")


def _custom(first_text: str, last_text: str) -> Period:
    first, last = _day(first_text, "from"), _day(last_text, "to")
    if last < first:
        raise PeriodError("the period's last day is before its first")
    start = datetime.combine(first, time(), timezone.utc)
    end = datetime.combine(last + timedelta(days=1), time(), timezone.utc)
    span = end - start
    bucket = "hour" if span <= _HOURLY_UP_TO else "day" if span <= _DAILY_UP_TO else "month"
    return Period("custom", start, end, bucket, first, last)


def _day(text: str, field: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise PeriodError(f"{field}: give a date as YYYY-MM-DD, got {text[:40]!r}") from None


def _month_start(moment: datetime) -> datetime:
    return datetime(moment.year, moment.month, 1, tzinfo=timezone.utc)


def bucket_starts(period: Period) -> list[datetime]:
    """Every hour, day or month that begins inside the period (and the one it starts in)."""
    moment = _floor(period.start, period.bucket)
    starts = []
    while moment < period.end:
        starts.append(moment)
        moment = _next(moment, period.bucket)
    return starts


def _floor(moment: datetime, bucket: str) -> datetime:
    if bucket == "hour":
        return moment.replace(minute=0, second=0, microsecond=0)
    if bucket == "day":
        return datetime.combine(moment.date(), time(), timezone.utc)
    return _month_start(moment)


def _next(moment: datetime, bucket: str) -> datetime:
    if bucket == "hour":
        return moment + timedelta(hours=1)
    if bucket == "day":
        return moment + timedelta(days=1)
    return _month_start(moment + timedelta(days=32))
