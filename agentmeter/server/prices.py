"""The price routes (``/api/prices``): a project's own model prices and markup.

No ``from __future__ import annotations`` here: the routes are made inside a
function, and FastAPI reads their annotations (the caller's ``Who``
dependency) as objects.
"""

import functools
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request, Response

from ..core.wire import MarkupBody, MissingPricesQuery, PriceBody, PricesQuery
from ..ledger import price_api
from ..ledger.api import LedgerAPI, Principal, query_dict
from ..models import MissingPrices, ModelPrice, ProjectPrices
from .http import read_json
from .openapi import query_parameters, request_body

Responder = Callable[..., Awaitable[Response]]


def install_price_routes(
    app: FastAPI,
    api: LedgerAPI,
    ok: Responder,
    principal: Callable[..., Any],
    errors: dict[int | str, Any],
) -> None:
    """Add the price routes; ``principal`` is the app's authenticated-caller dependency.

    ``GET /api/prices/missing`` is added before the ``/api/prices/{model:path}``
    routes: routes match in the order they are added, so a ``GET`` of one
    model's price added later cannot swallow it. (``PUT`` and ``DELETE`` of a
    model named "missing" still reach the model routes: the method differs.)
    """
    prices = functools.partial
    Who = Annotated[Principal, Depends(principal)]

    @app.get(
        "/api/prices",
        tags=["prices"],
        response_model=ProjectPrices,
        responses=errors,
        openapi_extra=query_parameters(PricesQuery),
    )
    async def get_prices(request: Request, caller: Who) -> Response:
        return await ok(prices(price_api.get_prices, api), caller, _params(request))

    @app.put(
        "/api/prices",
        tags=["prices"],
        response_model=ProjectPrices,
        responses=errors,
        openapi_extra=request_body("MarkupBody", MarkupBody),
    )
    async def set_markup(request: Request, caller: Who) -> Response:
        return await ok(prices(price_api.set_markup, api), caller, await read_json(request))

    @app.get(
        "/api/prices/missing",
        tags=["prices"],
        response_model=MissingPrices,
        responses=errors,
        openapi_extra=query_parameters(MissingPricesQuery),
    )
    async def get_missing_prices(request: Request, caller: Who) -> Response:
        return await ok(prices(price_api.get_missing_prices, api), caller, _params(request))

    @app.put(
        "/api/prices/{model:path}",
        tags=["prices"],
        response_model=ModelPrice,
        responses=errors,
        openapi_extra=request_body("PriceBody", PriceBody),
    )
    async def set_price(model: str, request: Request, caller: Who) -> Response:
        body = await read_json(request)
        return await ok(prices(price_api.set_price, api), caller, model, body)

    @app.delete("/api/prices/{model:path}", tags=["prices"], responses=errors)
    async def delete_price(model: str, request: Request, caller: Who) -> Response:
        return await ok(prices(price_api.delete_price, api), caller, model, _params(request))


def _params(request: Request) -> dict[str, Any]:
    return query_dict(request.query_params.multi_items())
