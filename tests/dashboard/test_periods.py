"""The period picker: every named span and custom dates as half-open UTC ranges."""

from __future__ import annotations

import itertools
from datetime import date, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agentmeter.server.dashboard.periods import PeriodError, bucket_starts, period_of

NOW = datetime(2026, 3, 15, 10, 30, 5, tzinfo=timezone.utc)
TICK = timedelta(microseconds=1)


@pytest.mark.parametrize(
    ("name", "length", "bucket"),
    [
        ("24h", timedelta(hours=24), "hour"),
        ("7d", timedelta(days=7), "hour"),
        ("30d", timedelta(days=30), "day"),
    ],
)
def test_a_preset_ends_now_like_the_stats_timeframe(
    name: str, length: timedelta, bucket: str
) -> None:
    period = period_of({"period": name}, NOW)
    assert (period.start, period.end, period.bucket) == (NOW - length, NOW + TICK, bucket)


def test_the_default_is_the_last_30_days() -> None:
    assert period_of({}, NOW).name == "30d"


def test_this_month_and_last_month() -> None:
    this = period_of({"period": "this-month"}, NOW)
    last = period_of({"period": "last-month"}, NOW)
    assert this.start == datetime(2026, 3, 1, tzinfo=timezone.utc) == last.end
    assert last.start == datetime(2026, 2, 1, tzinfo=timezone.utc)


def test_last_month_in_january_is_december() -> None:
    period = period_of({"period": "last-month"}, datetime(2026, 1, 9, tzinfo=timezone.utc))
    assert period.start == datetime(2025, 12, 1, tzinfo=timezone.utc)


def test_a_custom_period_includes_its_last_day() -> None:
    period = period_of({"period": "custom", "from": "2026-01-01", "to": "2026-01-31"}, NOW)
    assert period.start == datetime(2026, 1, 1, tzinfo=timezone.utc)
    assert period.end == datetime(2026, 2, 1, tzinfo=timezone.utc)
    assert period.bucket == "day"
    assert period.params() == {"period": "custom", "from": "2026-01-01", "to": "2026-01-31"}


@pytest.mark.parametrize(
    "params",
    [
        {"period": "custom", "from": "2026-02-01", "to": "2026-01-01"},
        {"period": "custom", "from": "yesterday", "to": "2026-01-01"},
        {"period": "custom"},
        {"period": "<script>"},
    ],
)
def test_an_unreadable_period_is_refused_with_a_reason(params: dict[str, str]) -> None:
    with pytest.raises(PeriodError):
        period_of(params, NOW)


@given(
    st.dates(min_value=date(1971, 1, 1), max_value=date(9000, 1, 1)),
    st.integers(min_value=0, max_value=2000),
)
def test_buckets_cover_a_custom_period_without_gaps(first: date, days: int) -> None:
    last = first + timedelta(days=days)
    period = period_of({"period": "custom", "from": first.isoformat(), "to": last.isoformat()})
    starts = bucket_starts(period)
    assert starts[0] <= period.start < (starts[1] if len(starts) > 1 else period.end)
    assert all(earlier < later for earlier, later in itertools.pairwise(starts))
    assert starts[-1] < period.end
