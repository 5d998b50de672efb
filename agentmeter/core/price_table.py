"""A project's prices as the SDK applies them: its own rows, else the catalog's plus its markup.

The ledger keeps, per project, a markup (percent) and rows of its own prices
per 1,000,000 tokens (``GET /api/prices``). A charge for a model is priced:

1. at the project's row for that name, or for the catalog model the name
   resolves to (a row for ``gpt-4o`` prices ``gpt-4o-2024-08-06`` too);
2. else at the catalog's price times ``1 + markup/100``;
3. else not at all (None: the caller decides, see :mod:`.token_prices`).

Rows are never marked up: they are what the team chose to charge.

>>> from decimal import Decimal
>>> table = PriceTable(Decimal(20))
>>> table.entry("gpt-4").bands[0].input  # $30 per million, plus 20 %
Decimal('0.0000360')
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from ..pricing import MONEY_CONTEXT, ZERO
from .catalog import PER_MILLION, CatalogEntry, ModelPrices, catalog_entry

_HUNDRED = Decimal(100)
_CACHE_LIMIT = 4096
_MISSING: Any = object()


class PriceTable:
    """One project's effective prices. Immutable once made; lookups are cached."""

    def __init__(self, markup_percent: Decimal = ZERO, rows: Iterable[Any] = ()) -> None:
        self.markup_percent = markup_percent
        self._factor = MONEY_CONTEXT.add(1, MONEY_CONTEXT.divide(markup_percent, _HUNDRED))
        self._rows = {str(row.model).strip().lower(): _row_entry(row) for row in rows}
        self._resolved: dict[str, CatalogEntry | None] = {}

    @classmethod
    def of(cls, project_prices: Any) -> PriceTable:
        """The table of a :class:`~agentmeter.models.ProjectPrices` answer."""
        return cls(project_prices.markup_percent, project_prices.prices)

    def __repr__(self) -> str:
        return f"PriceTable(markup_percent={self.markup_percent}, rows={sorted(self._rows)})"

    @property
    def rows(self) -> int:
        return len(self._rows)

    def entry(self, model: str) -> CatalogEntry | None:
        """The prices of ``model`` for this project (None: neither a row nor the catalog)."""
        found = self._resolved.get(model, _MISSING)
        if found is _MISSING:
            found = self._resolve(model)
            if len(self._resolved) >= _CACHE_LIMIT:
                self._resolved.clear()
            self._resolved[model] = found
        return found  # type: ignore[no-any-return]

    def _resolve(self, model: str) -> CatalogEntry | None:
        row = self._rows.get(model.strip().lower())
        if row is not None:
            return row
        listed = catalog_entry(model)
        if listed is None:
            return None
        catalog_id = next((band.model for band in listed.bands if band is not None), None)
        row = self._rows.get(catalog_id.lower()) if catalog_id else None
        if row is not None:
            return row
        if self._factor == 1:
            return listed
        return CatalogEntry(listed.thresholds, tuple(self._mark_up(band) for band in listed.bands))

    def _mark_up(self, band: ModelPrices | None) -> ModelPrices | None:
        if band is None:
            return None
        return ModelPrices(
            model=band.model,
            provider=band.provider,
            input=self._times(band.input),
            output=self._times(band.output),
            cached_input=None if band.cached_input is None else self._times(band.cached_input),
            cache_write=None if band.cache_write is None else self._times(band.cache_write),
        )

    def _times(self, price: Decimal) -> Decimal:
        return MONEY_CONTEXT.multiply(price, self._factor)


def _row_entry(row: Any) -> CatalogEntry:
    """A project row (per 1M tokens) as a one-band entry of per-token prices."""
    prices = ModelPrices(
        model=str(row.model),
        provider="project",
        input=_per_token(row.input),
        output=_per_token(row.output),
        cached_input=None if row.cached_input is None else _per_token(row.cached_input),
        cache_write=None if row.cache_write is None else _per_token(row.cache_write),
    )
    return CatalogEntry((), (prices,))


def _per_token(per_million: Decimal) -> Decimal:
    return MONEY_CONTEXT.divide(per_million, PER_MILLION)  # exact: a shift of the exponent
