"""The client's alert and webhook endpoints (issue 17; the wire contract: docs/alerts.md).

A project's webhook endpoints receive its alerts (a user's meter crossing a
share of its threshold, the project's spend passing a daily or monthly
limit) and billing-record changes, signed the Standard Webhooks way. An
endpoint's signing ``secret`` is in the answer that created it only.
Arguments are checked by the wire models before anything is sent. Each
method is a plan (:mod:`agentmeter.endpoints.plan`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import Enum
from typing import Any, Final
from urllib.parse import quote

from ..core.webhook_models import AlertSettings, DeliveryStatus, WebhookDelivery, WebhookEndpoint
from ..core.webhook_wire import (
    AlertSettingsBody,
    DeliveryQuery,
    WebhookEndpointBody,
    WebhookListQuery,
)
from ..errors import AgentMeterValidationError
from .connection import Connection
from .inputs import MoneyInput
from .plan import Call, Plan, endpoint


class _Unset(Enum):
    """The type of :data:`UNSET`: an argument not given (unlike ``None``, which is sent)."""

    UNSET = "UNSET"

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Final = _Unset.UNSET
"""Leave this setting as it is (``None`` clears it)."""


def _segment(value: str, field: str) -> str:
    if not value:
        raise AgentMeterValidationError.for_field(field, "must not be empty")
    return quote(value, safe="")


class WebhookEndpoints:
    """A project's webhook endpoints, their deliveries, and its alert settings."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    # --------------------------------------------------------- endpoints

    @endpoint
    def create_webhook_endpoint(
        self,
        url: str,
        event_types: Sequence[str],
        *,
        enabled: bool = True,
        description: str | None = None,
        project_id: str | None = None,
    ) -> Plan[WebhookEndpoint]:
        """Send the project's events of ``event_types`` to ``url`` (http or https).

        The answer's ``secret`` (a ``SecretStr``) signs every request to the
        endpoint; it is in this answer only, so store it now."""
        body = WebhookEndpointBody(
            project_id=self._connection.resolve_project(project_id),
            url=url,
            event_types=list(event_types) if not isinstance(event_types, str) else [event_types],
            enabled=enabled,
            description=description,
        )
        answer = yield Call("POST", "/api/webhooks", body=body.to_dict(), idempotent=False)
        return WebhookEndpoint.from_dict(answer)

    @endpoint
    def list_webhook_endpoints(self, project_id: str | None = None) -> Plan[list[WebhookEndpoint]]:
        """The project's webhook endpoints, oldest first (without their secrets)."""
        query = WebhookListQuery(project_id=self._connection.resolve_project(project_id))
        answer = yield Call("GET", "/api/webhooks", params=query.to_params())
        return [WebhookEndpoint.from_dict(item) for item in _items(answer, "endpoints")]

    @endpoint
    def delete_webhook_endpoint(
        self, endpoint_id: str, project_id: str | None = None
    ) -> Plan[bool]:
        """Stop sending to an endpoint and forget it; True once deleted."""
        query = WebhookListQuery(project_id=self._connection.resolve_project(project_id))
        path = f"/api/webhooks/{_segment(endpoint_id, 'endpoint_id')}"
        answer = yield Call("DELETE", path, params=query.to_params())
        return bool(answer.get("deleted", True)) if isinstance(answer, Mapping) else True

    @endpoint
    def send_test_webhook(
        self, endpoint_id: str, project_id: str | None = None
    ) -> Plan[WebhookDelivery]:
        """Queue a ``webhook.test`` event to one endpoint; the delivery that carries it."""
        body = WebhookListQuery(project_id=self._connection.resolve_project(project_id))
        path = f"/api/webhooks/{_segment(endpoint_id, 'endpoint_id')}/test"
        answer = yield Call("POST", path, body=body.to_dict(), idempotent=False)
        return WebhookDelivery.from_dict(answer)

    # -------------------------------------------------------- deliveries

    @endpoint
    def list_webhook_deliveries(
        self,
        project_id: str | None = None,
        *,
        endpoint_id: str | None = None,
        status: DeliveryStatus | str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> Plan[list[WebhookDelivery]]:
        """The project's deliveries, newest first (``limit`` at most 1000), of one
        endpoint or with one status when given."""
        query = DeliveryQuery(
            project_id=self._connection.resolve_project(project_id),
            endpoint_id=endpoint_id,
            status=status,
            limit=limit,
            offset=offset,
        )
        answer = yield Call("GET", "/api/webhooks/deliveries", params=query.to_params())
        return [WebhookDelivery.from_dict(item) for item in _items(answer, "deliveries")]

    @endpoint
    def redeliver_webhook(
        self, delivery_id: str, project_id: str | None = None
    ) -> Plan[WebhookDelivery]:
        """Send a delivery again (delivered or failed ones too): it is pending and due now."""
        body = WebhookListQuery(project_id=self._connection.resolve_project(project_id))
        path = f"/api/webhooks/deliveries/{_segment(delivery_id, 'delivery_id')}/redeliver"
        answer = yield Call("POST", path, body=body.to_dict())
        return WebhookDelivery.from_dict(answer)

    # ----------------------------------------------------------- alerts

    @endpoint
    def get_alert_settings(self, project_id: str | None = None) -> Plan[AlertSettings]:
        """When the project's alerts fire: shares (percent) of each user's
        threshold, and its daily and monthly spend limits (None: no limit)."""
        query = WebhookListQuery(project_id=self._connection.resolve_project(project_id))
        answer = yield Call("GET", "/api/alerts", params=query.to_params())
        return AlertSettings.from_dict(answer)

    @endpoint
    def set_alert_settings(
        self,
        project_id: str | None = None,
        *,
        threshold_shares: Sequence[MoneyInput] | None = None,
        daily_limit: MoneyInput | _Unset | None = UNSET,
        monthly_limit: MoneyInput | _Unset | None = UNSET,
    ) -> Plan[AlertSettings]:
        """Change the project's alert settings; what is not given keeps its value.

        ``threshold_shares``: percents above 0 and at most 1000 (10 at most),
        e.g. ``[50, 80, 100]``. A limit of ``None`` clears it (no alert)."""
        given: dict[str, Any] = {"project_id": self._connection.resolve_project(project_id)}
        if threshold_shares is not None:
            given["threshold_shares"] = _listed(threshold_shares)
        if daily_limit is not UNSET:
            given["daily_limit"] = daily_limit
        if monthly_limit is not UNSET:
            given["monthly_limit"] = monthly_limit
        body = AlertSettingsBody(**given)
        payload = {key: value for key, value in body.to_dict().items() if key in given}
        answer = yield Call("PUT", "/api/alerts", body=payload)
        return AlertSettings.from_dict(answer)


def _listed(shares: Sequence[MoneyInput]) -> list[MoneyInput]:
    if isinstance(shares, str | bytes):  # "50" would read as ["5", "0"]
        raise AgentMeterValidationError.for_field(
            "threshold_shares", "must be a list of percents, e.g. [50, 80, 100]"
        )
    return list(shares)


def _items(answer: Any, key: str) -> list[Any]:
    """A list answer (or one wrapped as ``{key: [...]}``)."""
    if isinstance(answer, Mapping):
        return list(answer.get(key, []))
    return list(answer)
