"""The wire API's alert and webhook endpoints (docs/alerts.md): functions of a
:class:`~agentmeter.ledger.api.LedgerAPI`, which checks access and parses
bodies the same way for every endpoint."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ..core.webhook_wire import (
    AlertSettingsBody,
    DeliveryQuery,
    WebhookEndpointBody,
    WebhookListQuery,
)
from ..errors import AgentMeterValidationError
from ..webhooks import new_secret
from .api import Principal, parse
from .errors import WireError

if TYPE_CHECKING:
    from .api import LedgerAPI


def is_private_address(host: str) -> bool:
    """Whether ``host`` is, or resolves to, a loopback, private, link-local or
    reserved address (a name that does not resolve counts as private: refused)."""
    try:
        addresses = {str(info[4][0]) for info in socket.getaddrinfo(host, None)}
    except (OSError, UnicodeError):
        return True
    for text in addresses:
        address = ipaddress.ip_address(text.split("%", 1)[0])
        if not address.is_global or address.is_multicast:
            return True
    return False


def check_destination(api: LedgerAPI, url: str) -> None:
    if api.private_webhooks:
        return
    host = urlsplit(url).hostname or ""
    if is_private_address(host):
        raise WireError.from_validation(
            AgentMeterValidationError.for_field(
                "url", "must not point at a private or loopback address on this server"
            )
        )


def create_endpoint(api: LedgerAPI, who: Principal, body: Any) -> dict[str, Any]:
    request = parse(WebhookEndpointBody, api.scoped(who, body))
    api.require_projects(who, [request.project_id])
    check_destination(api, request.url)
    endpoint = api.ledger.add_endpoint(
        request.project_id, request.url, request.event_types, request.enabled,
        request.description, new_secret(),
    )  # fmt: skip
    return endpoint.to_dict()


def list_endpoints(api: LedgerAPI, who: Principal, params: Mapping[str, Any]) -> list[Any]:
    query = parse(WebhookListQuery, api.scoped(who, params))
    return [endpoint.to_dict() for endpoint in api.ledger.list_endpoints(query.project_id)]


def delete_endpoint(
    api: LedgerAPI, who: Principal, endpoint_id: str, params: Mapping[str, Any]
) -> dict[str, Any]:
    query = parse(WebhookListQuery, api.scoped(who, params))
    api.ledger.delete_endpoint(query.project_id, endpoint_id)
    return {"deleted": True}


def send_test(api: LedgerAPI, who: Principal, endpoint_id: str, body: Any) -> dict[str, Any]:
    query = parse(WebhookListQuery, api.scoped(who, body if body is not None else {}))
    return api.ledger.send_test(query.project_id, endpoint_id).to_dict()


def list_deliveries(api: LedgerAPI, who: Principal, params: Mapping[str, Any]) -> list[Any]:
    query = parse(DeliveryQuery, api.scoped(who, params))
    status = query.status.value if query.status is not None else None
    found = api.ledger.list_deliveries(
        query.project_id, query.endpoint_id, status, query.limit, query.offset
    )
    return [delivery.to_dict() for delivery in found]


def redeliver(api: LedgerAPI, who: Principal, delivery_id: str, body: Any) -> dict[str, Any]:
    query = parse(WebhookListQuery, api.scoped(who, body if body is not None else {}))
    return api.ledger.redeliver(query.project_id, delivery_id).to_dict()


def get_alerts(api: LedgerAPI, who: Principal, params: Mapping[str, Any]) -> dict[str, Any]:
    query = parse(WebhookListQuery, api.scoped(who, params))
    return api.ledger.alert_settings(query.project_id).to_dict()


def set_alerts(api: LedgerAPI, who: Principal, body: Any) -> dict[str, Any]:
    request = parse(AlertSettingsBody, api.scoped(who, body))
    api.require_projects(who, [request.project_id])
    changes = {
        name: getattr(request, name)
        for name in request.model_fields_set
        if name != "project_id"
        and not (name == "threshold_shares" and request.threshold_shares is None)
    }
    return api.ledger.set_alert_settings(request.project_id, changes).to_dict()
