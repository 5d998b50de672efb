"""The usage summary route (``GET /api/meter/summary``; docs/api.md).

No ``from __future__ import annotations`` here: the route is made inside a
function, and FastAPI reads its annotations (the caller's ``Who``
dependency) as objects.
"""

import functools
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request, Response

from ..core.summary_answers import UsageSummary
from ..core.wire import SummaryQuery
from ..ledger import summary_api
from ..ledger.api import LedgerAPI, Principal, query_dict
from .openapi import query_parameters

Responder = Callable[..., Awaitable[Response]]


def install_summary_routes(
    app: FastAPI,
    api: LedgerAPI,
    ok: Responder,
    principal: Callable[..., Any],
    errors: dict[int | str, Any],
) -> None:
    """Add the summary route; ``principal`` is the app's authenticated-caller dependency."""
    Who = Annotated[Principal, Depends(principal)]

    @app.get(
        "/api/meter/summary",
        tags=["events"],
        response_model=UsageSummary,
        responses=errors,
        openapi_extra=query_parameters(SummaryQuery),
    )
    async def summary(request: Request, caller: Who) -> Response:
        params = query_dict(request.query_params.multi_items())
        return await ok(functools.partial(summary_api.summary, api), caller, params)
