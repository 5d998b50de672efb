"""The alert and webhook routes (``/api/webhooks``, ``/api/alerts``; docs/alerts.md).

No ``from __future__ import annotations`` here: the routes are made inside a
function, and FastAPI reads their annotations (the caller's ``Who``
dependency) as objects.
"""

import functools
from collections.abc import Awaitable, Callable
from enum import Enum
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request, Response

from ..core.webhook_models import AlertSettings, WebhookDelivery, WebhookEndpoint
from ..core.webhook_wire import (
    AlertSettingsBody,
    DeliveryQuery,
    WebhookEndpointBody,
    WebhookListQuery,
)
from ..ledger import webhook_api
from ..ledger.api import LedgerAPI, Principal, query_dict
from .http import read_json
from .openapi import query_parameters, request_body

Responder = Callable[..., Awaitable[Response]]


def install_webhook_routes(
    app: FastAPI,
    api: LedgerAPI,
    answers: tuple[Responder, Responder],
    principal: Callable[..., Any],
    errors: dict[int | str, Any],
) -> None:
    """Add the routes; ``answers`` are the app's (200, 201) responders."""
    ok, created = answers
    call = functools.partial
    Who = Annotated[Principal, Depends(principal)]
    tags: list[str | Enum] = ["alerts and webhooks"]

    @app.post(
        "/api/webhooks", status_code=201, tags=tags, response_model=WebhookEndpoint,
        responses=errors, openapi_extra=request_body("WebhookEndpointBody", WebhookEndpointBody),
    )  # fmt: skip
    async def create_endpoint(request: Request, caller: Who) -> Response:
        body = await read_json(request)
        return await created(call(webhook_api.create_endpoint, api), caller, body)

    @app.get(
        "/api/webhooks", tags=tags, response_model=list[WebhookEndpoint], responses=errors,
        openapi_extra=query_parameters(WebhookListQuery),
    )  # fmt: skip
    async def list_endpoints(request: Request, caller: Who) -> Response:
        return await ok(call(webhook_api.list_endpoints, api), caller, _params(request))

    @app.get(
        "/api/webhooks/deliveries", tags=tags, response_model=list[WebhookDelivery],
        responses=errors, openapi_extra=query_parameters(DeliveryQuery),
    )  # fmt: skip
    async def list_deliveries(request: Request, caller: Who) -> Response:
        return await ok(call(webhook_api.list_deliveries, api), caller, _params(request))

    @app.post(
        "/api/webhooks/deliveries/{delivery_id}/redeliver", tags=tags,
        response_model=WebhookDelivery, responses=errors,
    )  # fmt: skip
    async def redeliver(delivery_id: str, request: Request, caller: Who) -> Response:
        body = await _optional_json(request)
        return await ok(call(webhook_api.redeliver, api), caller, delivery_id, body)

    @app.delete("/api/webhooks/{endpoint_id}", tags=tags, responses=errors)
    async def delete_endpoint(endpoint_id: str, request: Request, caller: Who) -> Response:
        params = _params(request)
        return await ok(call(webhook_api.delete_endpoint, api), caller, endpoint_id, params)

    @app.post(
        "/api/webhooks/{endpoint_id}/test", status_code=201, tags=tags,
        response_model=WebhookDelivery, responses=errors,
    )  # fmt: skip
    async def send_test(endpoint_id: str, request: Request, caller: Who) -> Response:
        body = await _optional_json(request)
        return await created(call(webhook_api.send_test, api), caller, endpoint_id, body)

    @app.get(
        "/api/alerts", tags=tags, response_model=AlertSettings, responses=errors,
        openapi_extra=query_parameters(WebhookListQuery),
    )  # fmt: skip
    async def get_alerts(request: Request, caller: Who) -> Response:
        return await ok(call(webhook_api.get_alerts, api), caller, _params(request))

    @app.put(
        "/api/alerts", tags=tags, response_model=AlertSettings, responses=errors,
        openapi_extra=request_body("AlertSettingsBody", AlertSettingsBody),
    )  # fmt: skip
    async def set_alerts(request: Request, caller: Who) -> Response:
        return await ok(call(webhook_api.set_alerts, api), caller, await read_json(request))


async def _optional_json(request: Request) -> Any:
    """A body that may be left out (the project then comes from the key)."""
    if not int(request.headers.get("content-length") or 0):
        return {}
    return await read_json(request)


def _params(request: Request) -> dict[str, Any]:
    return query_dict(request.query_params.multi_items())
