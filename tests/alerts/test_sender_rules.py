"""The sender's retry rules, without a network: what is retried, when, and for how long."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest

from agentmeter.core.webhook_models import DeliveryStatus
from agentmeter.ledger.base import now_micros
from agentmeter.ledger.webhook_store import DueDelivery
from agentmeter.server.webhook_sender import (
    SECOND,
    Outcome,
    SenderSettings,
    WebhookSender,
    retry_after,
)


def delivery(attempts: int, age_seconds: float = 0) -> DueDelivery:
    created = now_micros() - int(age_seconds * SECOND)
    return DueDelivery(
        "whdl_1", "evt_1", "http://127.0.0.1:9/", "whsec_dGVzdA==", "{}", attempts, created
    )


def sender(**settings: float) -> WebhookSender:
    return WebhookSender(None, SenderSettings(**settings))  # type: ignore[arg-type]


@pytest.mark.parametrize("attempts", [0, 1, 2, 5, 9, 20])
def test_the_wait_doubles_with_jitter_up_to_an_hour(attempts: int) -> None:
    wait = sender()._next_attempt(delivery(attempts), Outcome(DeliveryStatus.PENDING)) or 0
    seconds = (wait - now_micros()) / SECOND
    full = min(5.0 * 2**attempts, 3600.0)
    assert full / 2 - 0.1 <= seconds <= full + 0.1


def test_retry_after_is_honoured_when_longer() -> None:
    outcome = Outcome(DeliveryStatus.PENDING, 429, "HTTP 429", retry_after=120.0)
    wait = sender()._next_attempt(delivery(0), outcome) or 0
    assert (wait - now_micros()) / SECOND >= 119.9


def test_retries_stop_once_the_event_is_a_day_old() -> None:
    outcome = Outcome(DeliveryStatus.PENDING, 503)
    assert sender()._next_attempt(delivery(3, age_seconds=24 * 3600 - 10), outcome) is None
    assert sender()._next_attempt(delivery(3, age_seconds=3600), outcome) is not None


def test_retry_after_reads_seconds_and_dates() -> None:
    assert retry_after("30") == 30.0
    later = datetime.now(timezone.utc) + timedelta(seconds=90)
    assert 80 <= (retry_after(format_datetime(later, usegmt=True)) or 0) <= 91
    assert retry_after("soon") is None
    assert retry_after(None) is None
