"""The request bodies and queries of the alert and webhook endpoints (docs/alerts.md)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from .fields import Identifier, Money, Text
from .webhook_models import DeliveryStatus, EventTypes, Shares, WebUrl
from .wire import WireModel


class WebhookEndpointBody(WireModel):
    project_id: Identifier
    url: WebUrl
    event_types: EventTypes
    enabled: bool = True
    description: Annotated[Text, Field(max_length=500)] | None = None


class WebhookListQuery(WireModel):
    project_id: Identifier


class DeliveryQuery(WireModel):
    project_id: Identifier
    endpoint_id: Identifier | None = None
    status: DeliveryStatus | None = None
    limit: int = Field(default=100, ge=1, le=1000)
    offset: int = Field(default=0, ge=0, le=10**9)


class AlertSettingsBody(WireModel):
    """``PUT /api/alerts``: fields left out keep their value; a null limit clears it."""

    project_id: Identifier
    threshold_shares: Shares | None = None
    daily_limit: Annotated[Money, Field(gt=0)] | None = None
    monthly_limit: Annotated[Money, Field(gt=0)] | None = None
