"""How long the tracker holds an event the server found ahead of its clock."""

from __future__ import annotations

from datetime import timedelta

import pytest

from agentmeter.delivery.clock_skew import wait_before_resend
from agentmeter.models import ErrorInfo


def refusal(latest: str | None, code: str = "timestamp_in_future") -> ErrorInfo:
    details = [{"field": "timestamp", "message": "in the future"}]
    if latest is not None:
        details[0]["latest_accepted"] = latest
    return ErrorInfo(code=code, message="in the future", details=details)


@pytest.mark.parametrize(
    ("stamped", "latest", "wait"),
    [
        ("2026-01-01T12:00:10Z", "2026-01-01T12:00:00Z", timedelta(seconds=11)),
        ("2026-01-01T12:00:00.500000Z", "2026-01-01T12:00:00Z", timedelta(seconds=1.5)),
        ("2026-01-01T12:00:00Z", "2026-01-01T12:00:00Z", timedelta(seconds=1)),
        ("2026-01-01T11:59:00Z", "2026-01-01T12:00:00Z", timedelta(seconds=1)),  # now fine
        ("2026-01-02T12:00:00Z", "2026-01-01T12:00:00Z", timedelta(days=1, seconds=1)),
        ("2026-01-02T12:00:01Z", "2026-01-01T12:00:00Z", None),  # not skew: a wrong time
        ("9999-12-31T00:00:00Z", "2026-01-01T12:00:00Z", None),
    ],
)
def test_the_wait_is_how_far_ahead_the_event_is(stamped, latest, wait):
    assert wait_before_resend({"timestamp": stamped}, refusal(latest)) == wait


@pytest.mark.parametrize("latest", [None, "yesterday", "2026-01-01T12:00:00"])
def test_an_unknown_distance_waits_a_minute(latest):
    event = {"timestamp": "2026-01-01T12:10:00Z"}
    assert wait_before_resend(event, refusal(latest)) == timedelta(minutes=1)


@pytest.mark.parametrize("code", ["validation_error", "idempotency_conflict", "rejected"])
def test_other_refusals_are_final(code):
    event = {"timestamp": "2026-01-01T12:00:10Z"}
    assert wait_before_resend(event, refusal("2026-01-01T12:00:00Z", code)) is None
