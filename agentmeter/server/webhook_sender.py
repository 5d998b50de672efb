"""The background sender of ``agentmeter serve``: due webhook deliveries, signed, with retries.

Each round it takes due deliveries under a lease (so among many servers one
sends a given delivery at a time), posts each to its endpoint signed the
Standard Webhooks way, and records the attempt:

- a 2xx ends it (delivered);
- a timeout, a connection error, 408, 429 or 5xx is tried again after
  ``base * 2**(attempts - 1)`` seconds (at most an hour), with jitter, or
  after the ``Retry-After`` the receiver asked for, for as long as the event
  is younger than 24 hours; then it has failed;
- any other answer fails it at once (the receiver refused it).

A server killed mid-send leaves the delivery leased; another round (after a
restart, or on another server) takes it once the lease ends, so a receiver
may see an event twice in that case and dedupes by ``webhook-id``.
"""

from __future__ import annotations

import logging
import os
import random
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

import requests

from ..core.webhook_models import DeliveryStatus
from ..ledger import Ledger
from ..ledger.base import now_micros
from ..ledger.webhook_api import is_private_address
from ..ledger.webhook_store import DueDelivery
from ..webhooks import sign

logger = logging.getLogger("agentmeter.server")
SECOND = 1_000_000
RETRYABLE = frozenset({408, 429})


@dataclass(frozen=True)
class SenderSettings:
    retry_base: float = 5.0  # seconds before the second attempt
    retry_cap: float = 3600.0
    give_up_after: float = 24 * 3600.0  # the event's age when retries stop
    lease: float = 30.0
    poll: float = 0.5
    timeout: float = 10.0
    private_destinations: bool = True

    @classmethod
    def from_environment(cls, private_destinations: bool) -> SenderSettings:
        """Defaults, with ``AGENTMETER_WEBHOOK_*`` overrides (seconds) for tests."""

        def seconds(name: str, default: float) -> float:
            return float(os.environ.get(f"AGENTMETER_WEBHOOK_{name}", default))

        return cls(
            retry_base=seconds("RETRY_BASE", cls.retry_base),
            lease=seconds("LEASE", cls.lease),
            poll=seconds("POLL", cls.poll),
            timeout=seconds("TIMEOUT", cls.timeout),
            private_destinations=private_destinations,
        )


@dataclass(frozen=True)
class Outcome:
    status: DeliveryStatus
    status_code: int | None = None
    error: str | None = None
    retry_after: float | None = None


class WebhookSender:
    def __init__(self, ledger: Ledger, settings: SenderSettings) -> None:
        self.ledger = ledger
        self.settings = settings
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="agentmeter-webhooks", daemon=True)
        self._pool = ThreadPoolExecutor(4, thread_name_prefix="agentmeter-webhook-send")
        self._http = requests.Session()

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._thread.join(timeout)
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                sent = self.round()
            except Exception:  # a ledger that is busy or away: try the next round
                logger.exception("webhook sender: a round failed")
                sent = 0
            if not sent:
                self._stop.wait(self.settings.poll)

    def round(self) -> int:
        """Send what is due now; return how many deliveries were attempted."""
        due = self.ledger.claim_due(int(self.settings.lease * SECOND))
        for outcome in self._pool.map(self._attempt, due):
            del outcome  # recorded by _attempt
        return len(due)

    def _attempt(self, delivery: DueDelivery) -> Outcome:
        outcome = self._post(delivery)
        next_at = None
        if outcome.status is DeliveryStatus.PENDING:
            next_at = self._next_attempt(delivery, outcome)
            if next_at is None:
                outcome = Outcome(DeliveryStatus.FAILED, outcome.status_code, outcome.error)
        self.ledger.finish_attempt(
            delivery.id, status=outcome.status, status_code=outcome.status_code,
            error=outcome.error, next_attempt_at=next_at,
        )  # fmt: skip
        return outcome

    def _post(self, delivery: DueDelivery) -> Outcome:
        if not self.settings.private_destinations:
            host = urlsplit(delivery.url).hostname or ""
            if is_private_address(host):
                return Outcome(DeliveryStatus.FAILED, error="the URL resolves to a private address")
        try:
            answer = self._http.post(
                delivery.url, data=delivery.body.encode("utf-8"), headers=signed(delivery),
                timeout=self.settings.timeout, allow_redirects=False,
            )  # fmt: skip
        except requests.RequestException as exc:
            return Outcome(DeliveryStatus.PENDING, error=type(exc).__name__)
        code = answer.status_code
        if 200 <= code < 300:
            return Outcome(DeliveryStatus.DELIVERED, code)
        if code in RETRYABLE or code >= 500:
            wait = retry_after(answer.headers.get("retry-after"))
            return Outcome(DeliveryStatus.PENDING, code, f"HTTP {code}", wait)
        return Outcome(DeliveryStatus.FAILED, code, f"HTTP {code}")

    def _next_attempt(self, delivery: DueDelivery, outcome: Outcome) -> int | None:
        """When to try again, or None once the event is too old to keep trying."""
        settings = self.settings
        backoff = min(settings.retry_base * 2**delivery.attempts, settings.retry_cap)
        wait = backoff * random.uniform(0.5, 1.0)
        if outcome.retry_after is not None:
            wait = max(wait, min(outcome.retry_after, settings.retry_cap))
        at = now_micros() + int(wait * SECOND)
        if at - delivery.event_created_at > settings.give_up_after * SECOND:
            return None
        return at


def signed(delivery: DueDelivery) -> dict[str, str]:
    """The Standard Webhooks headers of this attempt (and the content type)."""
    headers = sign(
        delivery.body, delivery.secret, msg_id=delivery.event_id,
        timestamp=datetime.now(timezone.utc),
    )  # fmt: skip
    return {"content-type": "application/json", "user-agent": "agentmeter-webhooks", **headers}


def retry_after(value: str | None) -> float | None:
    """``Retry-After`` in seconds (a number or an HTTP date); None when absent or unreadable."""
    if not value:
        return None
    if value.strip().isdigit():
        return float(value.strip())
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max((moment - datetime.now(timezone.utc)).total_seconds(), 0.0)
