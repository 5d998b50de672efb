"""The prices page: a project's effective price table, per 1,000,000 tokens.

Its own rows first (never marked up), then the catalog's models as that
project is charged for them: the catalog price times ``1 + markup/100``,
or the project's row when one resolves to that model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from ...core.catalog import PER_MILLION, catalog_models
from ...core.price_table import PriceTable
from ...ledger import Ledger
from ...models import ModelPrice
from ...pricing import MONEY_CONTEXT, ZERO

PAGE = 50


@dataclass(frozen=True)
class PriceLine:
    model: str
    provider: str
    source: str  # "project", "catalog" or "catalog + markup"
    input: Decimal
    output: Decimal
    cached_input: Decimal | None
    cache_write: Decimal | None


@dataclass
class PricePage:
    markup_percent: Decimal = ZERO
    own: list[ModelPrice] = field(default_factory=list)
    catalog: list[PriceLine] = field(default_factory=list)
    matching: int = 0  # catalog models matching the search

    @property
    def pages(self) -> int:
        return -(-self.matching // PAGE)


def price_page(ledger: Ledger, project_id: str, search: str, page: int) -> PricePage:
    prices = ledger.project_prices(project_id)
    table = PriceTable.of(prices)
    wanted = search.strip().lower()
    listed = [pair for pair in catalog_models() if wanted in pair[1].lower() or wanted in pair[0]]
    chosen = listed[page * PAGE : (page + 1) * PAGE]
    lines = [line for provider, model in chosen if (line := _line(table, provider, model))]
    return PricePage(prices.markup_percent, list(prices.prices), lines, len(listed))


def _line(table: PriceTable, provider: str, model: str) -> PriceLine | None:
    entry = table.entry(f"{provider}/{model}") or table.entry(model)
    band = entry.bands[0] if entry is not None else None
    if band is None:
        return None
    if band.provider == "project":
        source = "project"
    else:
        source = "catalog + markup" if table.markup_percent else "catalog"
    return PriceLine(
        model=model,
        provider=provider,
        source=source,
        input=_per_million(band.input),
        output=_per_million(band.output),
        cached_input=None if band.cached_input is None else _per_million(band.cached_input),
        cache_write=None if band.cache_write is None else _per_million(band.cache_write),
    )


def _per_million(per_token: Decimal) -> Decimal:
    return MONEY_CONTEXT.multiply(per_token, PER_MILLION).normalize(MONEY_CONTEXT)
