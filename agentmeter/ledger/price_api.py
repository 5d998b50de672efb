"""The wire API's price endpoints (``/api/prices``): a project's own rows and markup,
and the models its unpriced events name (``/api/prices/missing``).

Functions of a :class:`~agentmeter.ledger.api.LedgerAPI`, which checks the
caller's access and parses bodies the same way for every endpoint.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..core.wire import MarkupBody, MissingPricesQuery, PriceBody, PriceKey, PricesQuery
from ..models import MissingPrices, ModelPrice
from .api import Principal, parse
from .errors import not_found

if TYPE_CHECKING:
    from .api import LedgerAPI


def get_prices(api: LedgerAPI, who: Principal, params: Mapping[str, Any]) -> dict[str, Any]:
    query = parse(PricesQuery, api.scoped(who, params))
    return api.ledger.project_prices(query.project_id).to_dict()


def set_price(api: LedgerAPI, who: Principal, model: str, body: Any) -> dict[str, Any]:
    fields = dict(body) if isinstance(body, Mapping) else body
    if isinstance(fields, dict):
        fields["model"] = model
    request = parse(PriceBody, api.scoped(who, fields))
    api.require_projects(who, [request.project_id])
    price = ModelPrice(
        model=request.model,
        input=request.input,
        output=request.output,
        cached_input=request.cached_input,
        cache_write=request.cache_write,
    )
    return api.ledger.set_price(request.project_id, price).to_dict()


def delete_price(
    api: LedgerAPI, who: Principal, model: str, params: Mapping[str, Any]
) -> dict[str, Any]:
    key = parse(PriceKey, api.scoped(who, {**params, "model": model}))
    if not api.ledger.delete_price(key.project_id, key.model):
        raise not_found(f"price of model {key.model!r} (the project has none of its own)")
    return {"deleted": True}


def set_markup(api: LedgerAPI, who: Principal, body: Any) -> dict[str, Any]:
    request = parse(MarkupBody, api.scoped(who, body))
    api.require_projects(who, [request.project_id])
    return api.ledger.set_markup(request.project_id, request.markup_percent).to_dict()


def get_missing_prices(api: LedgerAPI, who: Principal, params: Mapping[str, Any]) -> dict[str, Any]:
    """The project's events recorded at 0 for want of a price, by model."""
    query = parse(MissingPricesQuery, api.scoped(who, params))
    models = api.ledger.unpriced_models(query.project_id, query.start_date, query.end_date)
    return MissingPrices(models=models).to_dict()
