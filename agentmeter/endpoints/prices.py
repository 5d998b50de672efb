"""The client's price endpoints: a project's own model prices and its markup.

Prices here are per 1,000,000 tokens (as providers list them). A project's
price of a model overrides the catalog's; the markup (percent) applies to
catalog prices only. Each method is a plan (:mod:`agentmeter.endpoints.plan`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import quote

from ..core.wire import MarkupBody, MissingPricesQuery, PriceBody, PriceKey, PricesQuery
from ..models import MissingPrices, ModelPrice, ProjectPrices, UnpricedModel
from .connection import Connection
from .inputs import MoneyInput
from .plan import Call, Plan, endpoint


class PriceEndpoints:
    """A project's price table: its own rows, and its markup on the catalog."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    @endpoint
    def get_prices(self, project_id: str | None = None) -> Plan[ProjectPrices]:
        """The project's markup and its own price rows (not the catalog's)."""
        query = PricesQuery(project_id=self._connection.resolve_project(project_id))
        answer = yield Call("GET", "/api/prices", params=query.to_params())
        return ProjectPrices.model_validate(answer)

    @endpoint
    def set_price(
        self,
        model: str,
        input: MoneyInput,  # per 1M input tokens: the wire's name
        output: MoneyInput,
        cached_input: MoneyInput | None = None,
        cache_write: MoneyInput | None = None,
        project_id: str | None = None,
    ) -> Plan[ModelPrice]:
        """Price ``model`` for this project, per 1,000,000 tokens of each class."""
        body = PriceBody(
            project_id=self._connection.resolve_project(project_id),
            model=model,
            input=input,
            output=output,
            cached_input=cached_input,
            cache_write=cache_write,
        )
        payload: dict[str, Any] = body.to_dict()
        del payload["model"]  # it is in the path
        answer = yield Call("PUT", _path(body.model), body=payload)
        self._changed(body.project_id)
        return ModelPrice.model_validate(answer)

    @endpoint
    def delete_price(self, model: str, project_id: str | None = None) -> Plan[dict[str, Any]]:
        """Remove the project's own price of ``model`` (the catalog's applies again)."""
        key = PriceKey(project_id=self._connection.resolve_project(project_id), model=model)
        answer = yield Call("DELETE", _path(key.model), params={"project_id": key.project_id})
        self._changed(key.project_id)
        return dict(answer)

    @endpoint
    def set_markup(
        self, markup_percent: MoneyInput, project_id: str | None = None
    ) -> Plan[ProjectPrices]:
        """Charge catalog prices plus ``markup_percent`` % (0 to 10,000)."""
        body = MarkupBody(
            project_id=self._connection.resolve_project(project_id), markup_percent=markup_percent
        )
        answer = yield Call("PUT", "/api/prices", body=body.to_dict())
        self._changed(body.project_id)
        return ProjectPrices.model_validate(answer)

    @endpoint
    def get_missing_prices(
        self,
        project_id: str | None = None,
        start_date: datetime | str | None = None,
        end_date: datetime | str | None = None,
    ) -> Plan[list[UnpricedModel]]:
        """The models whose events were recorded at 0 for want of a price
        (``metadata["unpriced"]``), with their events and tokens, by name;
        ``start_date <= time < end_date`` when given."""
        query = MissingPricesQuery(
            project_id=self._connection.resolve_project(project_id),
            start_date=start_date,
            end_date=end_date,
        )
        answer = yield Call("GET", "/api/prices/missing", params=query.to_params())
        return MissingPrices.model_validate(answer).models

    def _changed(self, project_id: str) -> None:
        """This client's cached table of the project is out of date now."""
        if self._connection.price_book is not None:
            self._connection.price_book.forget(project_id)


def _path(model: str) -> str:
    return "/api/prices/" + quote(model, safe="")
