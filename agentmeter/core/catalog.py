"""What one token of a model costs: the genai-prices catalog behind one small interface.

`genai-prices` (Pydantic's maintained price data) knows the list prices of
dozens of providers in ``Decimal``, dated snapshots, cached-read and
cache-write rates and tiered prices. Its bundled snapshot is used as is:
nothing here ever fetches price updates from the network. No other module
imports the library; a project's own price table can sit in front of this.

Names our users send that the library does not resolve itself are mapped
here first: router prefixes (``openai/gpt-4o``), Bedrock ids
(``us.anthropic.claude-3-5-sonnet-20240620-v1:0``), Gemini's ``models/``
prefix, Vertex's ``@`` dates. A longer name never silently takes a shorter
model's price: ``gemini-1.5-flash-8b`` is not ``gemini-1.5-flash``; only a
date, version or ``-latest`` may follow the catalog's id.

>>> model_prices("gpt-4").input  # per token: $30 per million
Decimal('0.00003')
>>> model_prices("gpt-4o-custom") is None
True
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from functools import lru_cache
from typing import Any

PER_MILLION = Decimal(1_000_000)
# What may follow the catalog's id in a name that still means that model:
# dates (-2024-08-06, -20241022, -0613), versions (-001), -latest, -preview.
_SNAPSHOT_SUFFIX = re.compile(r"(-\d{4}-\d{2}-\d{2}|-\d{8}|-\d{4}|-\d{3}|-latest|-preview)*")
# Bedrock model ids: an optional region, the vendor, the model, a version.
_BEDROCK = re.compile(
    r"^(?:(?:us|eu|apac|us-gov|global)\.)?"
    r"(anthropic|meta|mistral|amazon|cohere|ai21|deepseek)\.(.+?)(?:-v\d+(?::\d+)?)?$"
)
_ROUTER_PROVIDERS = {
    "openai": "openai",
    "anthropic": "anthropic",
    "google": "google",
    "gemini": "google",
    "vertex_ai": "google",
    "mistral": "mistral",
    "mistralai": "mistral",
    "groq": "groq",
    "deepseek": "deepseek",
    "x-ai": "x-ai",
    "xai": "x-ai",
    "cohere": "cohere",
}


@dataclass(frozen=True)
class ModelPrices:
    """What one token of each class costs (USD) for one model and prompt size.

    ``cached_input`` (a cache read) and ``cache_write`` are None when the
    catalog has no separate rate: such tokens are billed as input.
    """

    model: str  # the catalog's id
    provider: str
    input: Decimal
    output: Decimal
    cached_input: Decimal | None = None
    cache_write: Decimal | None = None


@dataclass(frozen=True)
class CatalogEntry:
    """One model's prices, made once: one ``ModelPrices`` per prompt-size band."""

    thresholds: tuple[int, ...]  # tier starts, ascending; empty for flat prices
    bands: tuple[ModelPrices | None, ...]  # len(thresholds) + 1

    def at(self, prompt_tokens: int) -> ModelPrices | None:
        if not self.thresholds:
            return self.bands[0]
        return self.bands[sum(1 for start in self.thresholds if prompt_tokens > start)]


def _entry_of(model: str, provider: str, rates: dict[str, Any]) -> CatalogEntry:
    starts = sorted({tier.start for rate in rates.values() for tier in getattr(rate, "tiers", [])})
    bands = [_prices_at(model, provider, rates, 0)]
    bands += [_prices_at(model, provider, rates, start + 1) for start in starts]
    return CatalogEntry(tuple(starts), tuple(bands))


def _prices_at(
    model: str, provider: str, rates: dict[str, Any], prompt_tokens: int
) -> ModelPrices | None:
    input_rate = _per_token(rates.get("input_mtok"), prompt_tokens)
    output_rate = _per_token(rates.get("output_mtok"), prompt_tokens)
    if input_rate is None:
        return None  # priced per image, second or request: not a token model
    if output_rate is None:  # an embedding model: input only, it produces no tokens
        if any(key.startswith("output") for key in rates):
            return None  # output priced per image or audio second: not ours to guess
        output_rate = Decimal(0)
    return ModelPrices(
        model=model,
        provider=provider,
        input=input_rate,
        output=output_rate,
        cached_input=_per_token(rates.get("cache_read_mtok"), prompt_tokens),
        cache_write=_per_token(rates.get("cache_write_mtok"), prompt_tokens),
    )


def model_prices(model: str, *, prompt_tokens: int = 0) -> ModelPrices | None:
    """The catalog's prices for ``model`` (None if it does not know it).

    ``prompt_tokens`` picks the tier where the price depends on the prompt's
    size (Gemini 1.5 above 128k tokens): the whole call is priced at its tier.
    """
    entry = catalog_entry(model)
    return entry.at(prompt_tokens) if entry is not None else None


def warm() -> None:
    """Load the library and its price data now (off the hot path: the worker
    thread calls this when it starts), so a first lookup reads no files."""
    from genai_prices.data_snapshot import get_snapshot

    get_snapshot()


def catalog_version() -> str:
    """When the bundled price data was made (for docs and ``prices list``)."""
    from genai_prices import __version__ as library_version

    return f"genai-prices {library_version}"


@lru_cache(maxsize=4096)
def catalog_entry(model: str) -> CatalogEntry | None:
    """A model's prices by prompt-size band, looked up once per name (None: unknown)."""
    if not isinstance(model, str) or not model.strip():
        return None
    for reference, provider_id in _candidates(model.strip().lower()):
        found = _lookup(reference, provider_id)
        if found is not None:
            return found
    return None


def _candidates(name: str) -> list[tuple[str, str | None]]:
    """(model reference, provider id or None) to try, most specific first."""
    name = name.removeprefix("models/").replace("@", "-")
    provider = None
    prefix, slash, rest = name.partition("/")
    if slash and rest:  # a router's "provider/model"
        name, provider = rest, _ROUTER_PROVIDERS.get(prefix)
    bedrock = _BEDROCK.match(name)
    if bedrock is not None:
        name, provider = bedrock.group(2), bedrock.group(1)
    return [(name, provider), (name, None)] if provider else [(name, None)]


def _lookup(reference: str, provider_id: str | None) -> CatalogEntry | None:
    # Imported on the first lookup: the library and its data take ~100 ms to load.
    from genai_prices.data_snapshot import get_snapshot

    try:
        provider, info = get_snapshot().find_provider_model(reference, None, provider_id, None)
    except LookupError:
        return None
    if not _same_model(reference, info.id):
        return None
    prices = info.get_prices(datetime.now(timezone.utc))
    rates = {key: value for key, value in vars(prices).items() if value is not None}
    return _entry_of(info.id, provider.id, rates)


def _same_model(reference: str, catalog_id: str) -> bool:
    """Whether ``reference`` names the catalog's model, not a longer, other one."""
    if not reference.startswith(catalog_id):
        return True  # matched by the catalog's own alias rules
    return _SNAPSHOT_SUFFIX.fullmatch(reference[len(catalog_id) :]) is not None


def _per_token(rate: Any, prompt_tokens: int) -> Decimal | None:
    """A per-million rate (flat or tiered) as the exact price of one token."""
    if rate is None:
        return None
    if isinstance(rate, Decimal):
        return rate / PER_MILLION
    base = getattr(rate, "base", None)
    if not isinstance(base, Decimal):
        return None
    chosen = base
    for tier in sorted(getattr(rate, "tiers", []), key=lambda tier: tier.start):
        if prompt_tokens > tier.start:  # past a tier's start, the whole call pays its rate
            chosen = tier.price
    return chosen / PER_MILLION


@lru_cache(maxsize=1)
def catalog_models() -> tuple[tuple[str, str], ...]:
    """Every (provider, model id) the catalog prices per token, sorted: for
    listings such as the dashboard's price table (lookups use :func:`catalog_entry`)."""
    from genai_prices.data_snapshot import get_snapshot

    listed = {
        (provider.id, info.id) for provider in get_snapshot().providers for info in provider.models
    }
    return tuple(sorted(listed, key=lambda pair: (pair[1], pair[0])))
