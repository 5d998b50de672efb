"""Routes answered by their endpoint directly, without FastAPI's request handler.

For every request FastAPI's handler solves the endpoint's dependencies
(here only the key check), opens two exit stacks, and wraps the call in
Starlette's exception handling, which the app's exception middleware does
again outside it: on a 2-vCPU VM about 60 µs of CPU, a fifth of what a bare
FastAPI request costs (``docs/benchmarks.md``, issue 21). The routes every
client calls (an event, a meter read, health) and the dashboard's and CLI's
small reads (stats, the event list) are still declared as usual,
so the OpenAPI document is unchanged, but their requests go to the endpoint
straight from the router: the key checked first, as the dependency did;
errors raised to the app's exception middleware, which answers them as
before.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response
from fastapi.routing import APIRoute
from starlette.types import Receive, Scope, Send

from .http import KeyChecker

Endpoint = Callable[..., Awaitable[Response]]


def serve_directly(app: FastAPI, endpoint: Endpoint, checker: KeyChecker) -> None:
    """Answer ``endpoint``'s route by calling it: ``endpoint(request, who)`` with the
    key's principal when it takes ``who``, else ``endpoint()`` or ``endpoint(request)``."""
    route = _route_of(app, endpoint)
    parameters = list(inspect.signature(endpoint).parameters)
    if parameters == ["request", "who"]:
        route.app = _keyed(endpoint, checker)
    elif parameters in ([], ["request"]):
        route.app = _open(endpoint, bool(parameters))
    else:
        raise TypeError(f"{endpoint.__name__}: parameters {parameters} cannot be served directly")


def _route_of(app: FastAPI, endpoint: Endpoint) -> APIRoute:
    for route in app.router.routes:
        if isinstance(route, APIRoute) and route.endpoint is endpoint:
            return route
    raise LookupError(f"no route has the endpoint {endpoint.__name__}")


def _keyed(endpoint: Endpoint, checker: KeyChecker) -> Callable[..., Awaitable[None]]:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive, send)
        response = await endpoint(request, await checker(request))
        await response(scope, receive, send)

    return app


def _open(endpoint: Endpoint, takes_request: bool) -> Callable[..., Awaitable[None]]:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        arguments: tuple[Any, ...] = (Request(scope, receive, send),) if takes_request else ()
        response = await endpoint(*arguments)
        await response(scope, receive, send)

    return app


__all__ = ["serve_directly"]
