"""Which prices a token charge uses: the ones given, else its model's, else the defaults.

The rules, the same on every surface (client, tracker, decorators, blocks,
LangChain):

1. Prices passed with the charge win (each one on its own). When input and
   output are both passed, a token class without its own price (cached
   input, cache write) is billed at the input price.
2. Else the model's prices, the model being ``model=`` or, without it,
   ``metadata["model"]``: the project's own row for it, else the catalog's
   list price (:mod:`agentmeter.core.catalog`) plus the project's markup
   (:mod:`agentmeter.core.price_table`).
3. A charge that names no model uses the default prices (0.2's behaviour).
4. A model no price is known for uses the default prices only if the user
   configured some. Else it is *unpriced*: a direct call raises
   :class:`AgentMeterValidationError` naming the model; background capture
   records the tokens at 0 with ``metadata["unpriced"] = True`` and warns
   once per model per process.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Literal

from ..errors import AgentMeterValidationError
from ..pricing import ZERO
from .catalog import ModelPrices, catalog_entry
from .price_book import PriceBook
from .price_table import PriceTable

logger = logging.getLogger("agentmeter")
OnUnknownModel = Literal["raise", "record"]
# Prices passed with a charge (None: not passed): input, output, cached input, cache write.
Given = tuple[Any, Any, Any, Any]
Priced = tuple[Any, Any, Any, Any, Any, "str | None"]
Queued = tuple[Any, Any, Any, Any, Any, "str | None", bool]  # Priced, then "settle later"
_warned: set[str] = set()
_warned_lock = threading.Lock()


def model_named(model: Any, metadata: Any) -> str | None:
    """The model a charge names: ``model=``, else ``metadata["model"]``."""
    if isinstance(model, str) and model:
        return model
    if isinstance(metadata, Mapping):
        named = metadata.get("model")
        if isinstance(named, str) and named:
            return named
    return None


def listed_prices(
    model: str, tokens_in: Any, table: PriceTable | None = None
) -> ModelPrices | None:
    """The prices of ``model`` at this prompt size: the project's table, else the catalog's."""
    entry = catalog_entry(model) if table is None else table.entry(model)
    if entry is None:
        return None
    if entry.thresholds:
        return entry.at(tokens_in if type(tokens_in) is int else 0)
    return entry.bands[0]


def unknown_model(model: str) -> AgentMeterValidationError:
    return AgentMeterValidationError.for_field(
        "model",
        f"no price is known for model {model!r}: give it a price "
        f"(`agentmeter prices set {model} --input X --output Y`, per 1M tokens), "
        "pass input_token_price= and output_token_price=, or configure default token "
        "prices (see docs/pricing.md)",
    )


def unpriced_metadata(model: str, metadata: Any) -> dict[str, Any]:
    """The metadata of an unpriced event (recorded at 0), warning once per model."""
    with _warned_lock:
        first = model not in _warned
        _warned.add(model)
    if first:
        logger.warning(
            "agentmeter: no price is known for model %r; its tokens are recorded at 0 "
            "with metadata unpriced=true until you give it a price (see docs/pricing.md)",
            model,
        )
    marked = dict(metadata) if isinstance(metadata, Mapping) else {}
    marked.setdefault("model", model)
    marked["unpriced"] = True
    return marked


def price_charge(
    model: Any,
    metadata: Any,
    tokens_in: Any,
    given: Given,
    defaults: tuple[Any, Any],
    defaults_configured: bool,
    on_unknown_model: OnUnknownModel,
    table: PriceTable | None = None,
    refresh: Callable[[], PriceTable | None] | None = None,
) -> Priced:
    """(input, output, cached input, cache write prices, metadata, model) of a token charge.

    ``given`` holds the prices passed with the charge (None: not passed); a
    class price left None is billed at the input price. ``model=`` is
    written into the metadata (unless it names one already), so every
    stored event shows which model it was priced as. ``table`` is the
    project's (None: the catalog alone); ``refresh`` reads a fresher one for
    a model neither knows. This runs on the tracker's hot path: the common
    cases cost a few checks and one cached lookup."""
    price_in, price_out, price_cached, price_write = given
    if model is None:
        named = metadata.get("model") if type(metadata) is dict else model_named(None, metadata)
        if type(named) is not str or not named:  # no model: the defaults (0.2's behaviour)
            price_in = defaults[0] if price_in is None else price_in
            price_out = defaults[1] if price_out is None else price_out
            return price_in, price_out, price_cached, price_write, metadata, None
    else:
        named = model if type(model) is str and model else model_named(model, None)
        if named is None:
            raise AgentMeterValidationError.for_field("model", "must be a non-empty model name")
        if metadata is None:
            metadata = {"model": named}
        elif isinstance(metadata, Mapping) and "model" not in metadata:
            metadata = {**metadata, "model": named}
    if price_in is not None and price_out is not None:
        return price_in, price_out, price_cached, price_write, metadata, named
    entry = catalog_entry(named) if table is None else table.entry(named)
    if entry is None:
        listed = None
    else:  # listed_prices(), inlined: this is the hot path's one lookup
        listed = (
            entry.at(tokens_in if type(tokens_in) is int else 0)
            if entry.thresholds
            else entry.bands[0]
        )
    if listed is None and refresh is not None:
        fresher = refresh()
        listed = None if fresher is None else listed_prices(named, tokens_in, fresher)
    if listed is not None:
        return (
            listed.input if price_in is None else price_in,
            listed.output if price_out is None else price_out,
            listed.cached_input if price_cached is None else price_cached,
            listed.cache_write if price_write is None else price_write,
            metadata,
            named,
        )
    if defaults_configured:
        price_in = defaults[0] if price_in is None else price_in
        price_out = defaults[1] if price_out is None else price_out
        return price_in, price_out, price_cached, price_write, metadata, named
    if on_unknown_model == "raise":
        raise unknown_model(named)
    return ZERO, ZERO, ZERO, ZERO, unpriced_metadata(named, metadata), named


class TokenPricer:
    """Prices the token charges of one client or tracker: its default prices
    and its book of project price tables (None: the catalog alone)."""

    def __init__(
        self, defaults: tuple[Any, Any], defaults_configured: bool, book: PriceBook | None
    ) -> None:
        self.defaults = defaults
        self.defaults_configured = defaults_configured
        self.book = book

    def price_now(
        self, model: Any, metadata: Any, tokens_in: Any, given: Given, project_id: str
    ) -> Priced:
        """A direct call's prices: the project's table read now if stale; an
        unknown model raises."""
        table = None
        if self.book is not None and self.needs_table(model, metadata, given):
            table = self.book.current(project_id, strict=True)
        return self.price_with(model, metadata, tokens_in, given, table)

    def needs_table(self, model: Any, metadata: Any, given: Given) -> bool:
        """Whether a direct call must read the project's table first (a
        model is named and a price is missing): the read that may block."""
        wanted = given[0] is None or given[1] is None
        return self.book is not None and wanted and model_named(model, metadata) is not None

    def price_with(
        self, model: Any, metadata: Any, tokens_in: Any, given: Given, table: PriceTable | None
    ) -> Priced:
        """A direct call's prices with the project's table already read; an
        unknown model raises."""
        return price_charge(
            model,
            metadata,
            tokens_in,
            given,
            self.defaults,
            self.defaults_configured,
            "raise",
            table,
        )

    def price_queued(
        self,
        model: Any,
        metadata: Any,
        tokens_in: Any,
        given: Given,
        project_id: str,
        on_unknown_model: OnUnknownModel,
    ) -> Queued:
        """The hot path's prices from the cached table (no I/O, except to read
        the table once for a model no cached price knows), plus whether they
        must be settled again at finalize (the table was missing or stale)."""
        book = self.book
        held = None if book is None else book.tables.get(project_id)  # book.peek(), inlined
        if held is None:
            table, fresh = None, book is None
        else:
            table, fresh = held[0], time.monotonic() < held[1]
        priced = price_charge(
            model,
            metadata,
            tokens_in,
            given,
            self.defaults,
            self.defaults_configured,
            on_unknown_model,
            table,
            None if fresh or book is None else book.refresher(project_id),
        )
        wanted = given[0] is None or given[1] is None
        return (*priced, not fresh and wanted and priced[5] is not None)
