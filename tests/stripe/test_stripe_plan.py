"""The sync plan's arithmetic: cents rounded once, identifiers, periods, statuses."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agentmeter.cli.stripe_usage import (
    Period,
    SyncSettings,
    cents,
    identifier,
    next_period,
    period_ceil,
    period_floor,
    period_of,
    whole_periods,
)
from agentmeter.ledger import Ledger
from agentmeter.models import InstantPayEvent

from .conftest import day, run

UTC = timezone.utc
COSTS = st.decimals(
    min_value=Decimal("-50"), max_value=Decimal("5000"), places=8, allow_nan=False
).filter(lambda value: value.is_finite())


@given(st.lists(COSTS, min_size=1, max_size=30))
def test_cents_round_the_exact_sum_half_even_once(costs: list[Decimal]) -> None:
    exact = sum(costs, Decimal(0))
    expected = exact.quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN) * 100
    assert cents(exact) == int(expected)
    assert Decimal(cents(exact)) == expected  # an integer number of cents, nothing cut


def test_half_a_cent_goes_to_the_even_cent() -> None:
    assert [cents(Decimal(text)) for text in ("0.125", "0.135", "0.005", "-0.015")] == [
        12,
        14,
        0,
        -2,
    ]


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(COSTS.filter(lambda value: value > 0), min_size=1, max_size=12))
def test_the_value_sent_is_the_days_exact_cost_rounded_once(
    tmp_path: Path, costs: list[Decimal]
) -> None:
    """Rounding each event first would drift (12 x 0.004 -> 0, not 0.05): the sum is rounded."""
    url = f"sqlite:///{tmp_path / f'h{len(list(tmp_path.iterdir()))}.db'}"
    yesterday = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    yesterday -= timedelta(days=1)
    ledger = Ledger.open(url)
    ledger.record_events(
        [
            InstantPayEvent(
                project_id="p",
                agent_id="a",
                user_id="u",
                amount=cost,
                timestamp=yesterday + timedelta(minutes=n),
            )
            for n, cost in enumerate(costs)
        ]
    )
    ledger.map_stripe_customer("p", "u", "cus_U1")
    ledger.close()
    result = run("stripe", "sync", "--db", url, "--project-id", "p", "--since", day(yesterday),
                 "--until", day(yesterday + timedelta(days=1)), "--format", "json")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    (row,) = json.loads(result.stdout)["rows"]
    exact = sum(costs, Decimal(0))
    assert row["value"] == int(exact.quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN) * 100)
    if row["value"] == 0:  # less than half a cent: nothing is sent
        assert row["status"] == "nothing to send"
    else:
        assert row["request"]["payload"]["value"] == str(row["value"])


SETTINGS = SyncSettings(
    project_id="p", event_name="ai_cost", value_kind="cost", granularity="day", livemode=False
)
JAN_1 = Period(datetime(2025, 1, 1, tzinfo=UTC), datetime(2025, 1, 2, tzinfo=UTC), "day")


def test_an_identifier_is_stable_short_and_names_everything_it_covers() -> None:
    first = identifier(SETTINGS, "alice", JAN_1)
    assert first == identifier(SETTINGS, "alice", JAN_1)
    assert first.startswith("am_")
    assert len(first) <= 100  # Stripe's limit
    month = Period(JAN_1.start, datetime(2025, 2, 1, tzinfo=UTC), "month")
    others = {
        identifier(SETTINGS, "bob", JAN_1),
        identifier(SETTINGS, "alice", month),
        identifier(SyncSettings("q", "ai_cost", "cost", "day", False), "alice", JAN_1),
        identifier(SyncSettings("p", "ai_other", "cost", "day", False), "alice", JAN_1),
        identifier(SyncSettings("p", "ai_cost", "tokens", "day", False), "alice", JAN_1),
    }
    assert first not in others
    assert len(others) == 5
    # The mode is not part of it: test and live are separate Stripe accounts' worth of data.
    assert identifier(SyncSettings("p", "ai_cost", "cost", "day", True), "alice", JAN_1) == first


def test_periods_floor_ceil_and_follow_each_other() -> None:
    moment = datetime(2024, 12, 31, 23, 30, 5, tzinfo=UTC)
    assert period_floor(moment, "hour") == datetime(2024, 12, 31, 23, tzinfo=UTC)
    assert period_floor(moment, "day") == datetime(2024, 12, 31, tzinfo=UTC)
    assert period_floor(moment, "month") == datetime(2024, 12, 1, tzinfo=UTC)
    assert period_ceil(moment, "month") == datetime(2025, 1, 1, tzinfo=UTC)
    assert period_ceil(datetime(2025, 1, 1, tzinfo=UTC), "day") == datetime(2025, 1, 1, tzinfo=UTC)
    assert next_period(datetime(2024, 12, 1, tzinfo=UTC), "month") == datetime(
        2025, 1, 1, tzinfo=UTC
    )
    assert next_period(datetime(2024, 2, 1, tzinfo=UTC), "month") == datetime(
        2024, 3, 1, tzinfo=UTC
    )
    assert whole_periods(moment, datetime(2025, 1, 3, 12, tzinfo=UTC), "day") == (
        datetime(2025, 1, 1, tzinfo=UTC),
        datetime(2025, 1, 3, tzinfo=UTC),
    )


def test_report_period_labels_read_back_with_their_last_second() -> None:
    assert period_of("2025-02", "month").end == datetime(2025, 3, 1, tzinfo=UTC)
    assert period_of("2025-01-31", "day") == Period(
        datetime(2025, 1, 31, tzinfo=UTC), datetime(2025, 2, 1, tzinfo=UTC), "day"
    )
    hour = period_of("2025-01-31T23:00:00Z", "hour")
    assert hour.end == datetime(2025, 2, 1, tzinfo=UTC)
    assert hour.timestamp == int(datetime(2025, 2, 1, tzinfo=UTC).timestamp()) - 1
    assert hour.label == "2025-01-31T23:00:00Z"
