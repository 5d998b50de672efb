"""Alerts and webhooks on the wire: the answers and the request bodies.

Endpoints receive the events named in :data:`EVENT_TYPES`; ``webhook.test``
is sent only by ``POST /api/webhooks/{id}/test``. The full contract:
docs/alerts.md.
"""

from __future__ import annotations

from decimal import Decimal
from enum import Enum
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field, SecretStr, field_serializer

from ..errors import AgentMeterValidationError
from .base_model import AgentMeterModel
from .fields import Money, Text, UtcDatetime

THRESHOLD_CROSSED = "meter.threshold_crossed"
SPEND_EXCEEDED = "project.spend_exceeded"
BILLING_CREATED = "billing_record.created"
BILLING_UPDATED = "billing_record.updated"
TEST_EVENT = "webhook.test"
EVENT_TYPES = (THRESHOLD_CROSSED, SPEND_EXCEEDED, BILLING_CREATED, BILLING_UPDATED)
DEFAULT_SHARES = (Decimal(50), Decimal(80), Decimal(100))
MAX_URL_CHARS = 2048


class DeliveryStatus(str, Enum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


def _web_url(url: str) -> str:
    """An absolute http or https URL with a host (private addresses: see the server)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise AgentMeterValidationError.for_field("url", "must be an http:// or https:// URL")
    if parts.username or parts.password:
        raise AgentMeterValidationError.for_field("url", "must not carry a user or password")
    return url


def _event_types(types: list[str]) -> list[str]:
    unknown = [name for name in types if name not in EVENT_TYPES]
    if unknown or not types:
        raise AgentMeterValidationError.for_field(
            "event_types", f"choose from {', '.join(EVENT_TYPES)}; got {unknown or 'none'}"
        )
    return list(dict.fromkeys(types))


def _shares(shares: list[Decimal]) -> list[Decimal]:
    if any(share <= 0 or share > 1000 for share in shares):
        raise AgentMeterValidationError.for_field(
            "threshold_shares", "each share is a percent above 0 and at most 1000"
        )
    return sorted(set(shares))


WebUrl = Annotated[Text, Field(min_length=1, max_length=MAX_URL_CHARS), AfterValidator(_web_url)]
EventTypes = Annotated[list[str], AfterValidator(_event_types)]
Shares = Annotated[list[Money], Field(max_length=10), AfterValidator(_shares)]


# ------------------------------------------------------------------ answers


class WebhookEndpoint(AgentMeterModel):
    """Where a project's alerts are sent. ``secret`` is only in the answer that created it."""

    id: str
    project_id: str
    url: str
    event_types: list[str]
    enabled: bool = True
    description: str | None = None
    created_at: UtcDatetime | None = None
    secret: SecretStr | None = None

    def to_dict(self) -> dict[str, Any]:
        answer = super().to_dict()
        if self.secret is None:
            answer.pop("secret", None)
        return answer

    @field_serializer("secret", when_used="json")
    def _reveal(self, secret: SecretStr | None) -> str | None:
        return None if secret is None else secret.get_secret_value()


class WebhookDelivery(AgentMeterModel):
    """One event on its way to one endpoint, and how its attempts went."""

    id: str
    event_id: str
    endpoint_id: str
    event_type: str
    status: DeliveryStatus
    attempts: int = 0
    next_attempt_at: UtcDatetime | None = None
    last_status_code: int | None = None
    last_error: str | None = None
    created_at: UtcDatetime | None = None
    updated_at: UtcDatetime | None = None
    delivered_at: UtcDatetime | None = None


class AlertSettings(AgentMeterModel):
    """When a project's alerts fire: shares of each user's threshold, spend limits."""

    project_id: str
    threshold_shares: list[Money] = Field(default_factory=lambda: list(DEFAULT_SHARES))
    daily_limit: Money | None = None
    monthly_limit: Money | None = None
