"""Which prices a token charge uses: the ones given, else its model's, else the defaults.

The rules, the same on every surface (client, tracker, decorators, blocks,
LangChain):

1. Prices passed with the charge win (each side on its own).
2. Else the model's list prices (:mod:`agentmeter.core.catalog`), the model
   being ``model=`` or, without it, ``metadata["model"]``.
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
from collections.abc import Mapping
from typing import Any, Literal

from ..errors import AgentMeterValidationError
from ..pricing import ZERO
from .catalog import catalog_entry

logger = logging.getLogger("agentmeter")
OnUnknownModel = Literal["raise", "record"]
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


def listed_prices(model: str, tokens_in: Any) -> tuple[Any, Any] | None:
    """The catalog's (input, output) prices of ``model`` at this prompt size, or None."""
    entry = catalog_entry(model)
    if entry is None:
        return None
    if entry.thresholds:
        prompt = tokens_in if type(tokens_in) is int else 0
        listed = entry.at(prompt)
    else:
        listed = entry.bands[0]
    return None if listed is None else (listed.input, listed.output)


def unknown_model(model: str) -> AgentMeterValidationError:
    return AgentMeterValidationError.for_field(
        "model",
        f"no price is known for model {model!r}: pass input_token_price= and "
        "output_token_price=, or configure default token prices (see docs/pricing.md)",
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
    given: tuple[Any, Any],
    defaults: tuple[Any, Any],
    defaults_configured: bool,
    on_unknown_model: OnUnknownModel,
) -> tuple[Any, Any, Any]:
    """(input price, output price, metadata) of a token charge, by the rules above.

    ``model=`` is written into the metadata (unless it names one already), so
    every stored event shows which model it was priced as. This runs on the
    tracker's hot path: the common cases cost a few checks and one cached lookup."""
    price_in, price_out = given
    if model is None:
        named = metadata.get("model") if type(metadata) is dict else model_named(None, metadata)
        if type(named) is not str or not named:  # no model: the defaults (0.2's behaviour)
            price_in = defaults[0] if price_in is None else price_in
            return price_in, defaults[1] if price_out is None else price_out, metadata
    else:
        named = model_named(model, None)
        if named is None:
            raise AgentMeterValidationError.for_field("model", "must be a non-empty model name")
        if metadata is None:
            metadata = {"model": named}
        elif isinstance(metadata, Mapping) and "model" not in metadata:
            metadata = {**metadata, "model": named}
    if price_in is not None and price_out is not None:
        return price_in, price_out, metadata
    listed = listed_prices(named, tokens_in)
    if listed is None and defaults_configured:
        listed = defaults
    if listed is not None:
        price_in = listed[0] if price_in is None else price_in
        return price_in, listed[1] if price_out is None else price_out, metadata
    if on_unknown_model == "raise":
        raise unknown_model(named)
    return ZERO, ZERO, unpriced_metadata(named, metadata)
