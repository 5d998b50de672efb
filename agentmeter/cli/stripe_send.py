"""Sending a sync plan's meter events with Stripe's own ``stripe`` package, and logging each.

One retry layer: the package's (``max_network_retries``: connection
errors, 409, 5xx, and any answer carrying ``Stripe-Should-Retry: true``,
which is how Stripe marks a 429 worth retrying; every try carries the same
idempotency key). A plain 429 is not retried, as Stripe's libraries
choose: the row is reported as failed, and the next run sends it.

Each accepted event is written to the sync log at once, in its own
transaction: a run that stops half-way keeps the proof of what reached
Stripe. The key is held by the client only; every message is scrubbed of it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from typing import Any

import click

from ..errors import scrub
from ..ledger import Ledger, SyncLogEntry
from ..ledger.base import to_micros
from .stripe_usage import FAILED, SEND, SENT, PlannedEvent, SyncPlan

API_BASE_ENV = "AGENTMETER_STRIPE_API_BASE"  # for tests and proxies, e.g. http://127.0.0.1:12111
KEY_ENV = "STRIPE_API_KEY"
_KEY_MODES = {"sk_live_": True, "rk_live_": True, "sk_test_": False, "rk_test_": False}


class KeyRefused(Exception):
    """Stripe refused the key (401/403): no other event can go either."""


class SendFailed(Exception):
    """Stripe did not take this one event (after the package's retries)."""


def key_livemode(api_key: str) -> bool:
    """Whether a Stripe key is a live one, from its documented prefix."""
    for prefix, livemode in _KEY_MODES.items():
        if api_key.startswith(prefix):
            return livemode
    raise click.UsageError(
        f"{KEY_ENV} is not a Stripe secret or restricted key "
        "(it starts with sk_live_, sk_test_, rk_live_ or rk_test_)"
    )


def api_base() -> str | None:
    base = os.environ.get(API_BASE_ENV) or None
    if base is not None and not re.match(r"^https?://[^/\s]+/?$", base):
        raise click.UsageError(f"{API_BASE_ENV} must be a URL like https://host:port, got {base!r}")
    return base.rstrip("/") if base else None


class MeterEventSender:
    """``POST /v1/billing/meter_events`` through ``stripe.StripeClient``."""

    def __init__(self, api_key: str, *, retries: int, base_url: str | None = None) -> None:
        try:
            import stripe
        except ImportError:
            raise click.ClickException(
                "stripe sync --commit needs the stripe extra: pip install 'agentmeter[stripe]'"
            ) from None
        self._stripe: Any = stripe
        self._secrets = (api_key,)
        options: dict[str, Any] = {"max_network_retries": retries}
        if base_url is not None:
            options["base_addresses"] = {"api": base_url}
        self._client: Any = stripe.StripeClient(api_key, **options)

    def __repr__(self) -> str:
        return "MeterEventSender()"  # never the key

    def send(self, request: dict[str, Any]) -> str | None:
        """Send one meter event; Stripe's request id for it (None if it gave none)."""
        stripe = self._stripe
        try:
            event = self._client.v1.billing.meter_events.create(params=request)
        except (stripe.AuthenticationError, stripe.PermissionError) as exc:
            raise KeyRefused(self._message(exc)) from None
        except stripe.StripeError as exc:
            raise SendFailed(self._message(exc)) from None
        response = getattr(event, "last_response", None)
        return getattr(response, "request_id", None)

    def _message(self, exc: Any) -> str:
        status = exc.http_status or "no answer"
        error = getattr(exc, "error", None)  # Stripe's error object: its code even where
        code = getattr(exc, "code", None) or getattr(error, "code", None)  # exc.code is None
        code = f" {code}" if code else ""
        text = exc.user_message or type(exc).__name__
        where = f" (request {exc.request_id})" if getattr(exc, "request_id", None) else ""
        return scrub(" ".join(f"{status}{code}: {text}{where}".split()), self._secrets)


def send_plan(
    plan: SyncPlan,
    ledger: Ledger,
    sender: MeterEventSender,
    advance: Callable[[], None] = lambda: None,
) -> None:
    """Send every event planned ``to send``, in order; log each one Stripe took."""
    pending = [event for event in plan.events if event.status == SEND]
    for index, event in enumerate(pending):
        try:
            event.stripe_request_id = sender.send(event.request(plan.settings.event_name))
        except KeyRefused as exc:
            for unsent in pending[index:]:
                unsent.status, unsent.note = FAILED, f"not sent: Stripe refused the key: {exc}"
            return
        except SendFailed as exc:
            event.status, event.note = FAILED, str(exc)
            advance()
            continue
        ledger.record_stripe_sync(log_entry(plan, event))
        event.status = SENT
        advance()


def log_entry(plan: SyncPlan, event: PlannedEvent) -> SyncLogEntry:
    settings = plan.settings
    return SyncLogEntry(
        project_id=settings.project_id,
        identifier=event.identifier,
        livemode=settings.livemode,
        user_id=event.user_id,
        customer_id=event.customer_id or "",
        event_name=settings.event_name,
        value_kind=settings.value_kind,
        granularity=settings.granularity,
        period_start=to_micros(event.period.start),
        period_end=to_micros(event.period.end),
        value=str(event.value),
        stripe_request_id=event.stripe_request_id,
    )
