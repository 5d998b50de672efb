"""The tracker's settings, checked once, and its outbox, opened once, at construction."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path
from typing import Any

from ..core.price_book import PriceBook
from ..core.token_prices import TokenPricer
from ..errors import AgentMeterConfigurationError
from ..pricing import to_money
from .outbox import Outbox

logger = logging.getLogger("agentmeter")
ON_FULL_CHOICES = ("spill", "block", "drop_oldest", "raise")


def check_settings(
    flush_interval: float, batch_size: int, max_queue_size: int, on_full: str
) -> None:
    if flush_interval <= 0:
        raise AgentMeterConfigurationError("flush_interval must be positive")
    if not 1 <= batch_size <= 1000:
        raise AgentMeterConfigurationError("batch_size must be between 1 and 1000")
    if max_queue_size < batch_size:
        raise AgentMeterConfigurationError("max_queue_size must be at least batch_size")
    if on_full not in ON_FULL_CHOICES:
        raise AgentMeterConfigurationError(
            "on_full must be 'spill', 'block', 'drop_oldest' or 'raise'"
        )


def price(value: Any, default: Any, field: str) -> Any:
    """A default price of the tracker: the one given, else the client's."""
    return to_money(default if value is None else value, field)


def token_pricer(client: Any, default_input: Any, default_output: Any) -> TokenPricer:
    """The tracker's token pricer: its default prices (given, else the client's),
    whether anyone chose them, and the client's price book if it has one."""
    config = client.config
    defaults = (
        price(default_input, config.input_token_price, "default_input_token_price"),
        price(default_output, config.output_token_price, "default_output_token_price"),
    )
    # Defaults stand in for an unknown model's prices only if someone chose them.
    configured = (default_input, default_output) != (None, None) or bool(
        {"input_token_price", "output_token_price"} & config.model_fields_set
    )
    book = getattr(client, "price_book", None)  # absent on a bare TrackerClient
    return TokenPricer(defaults, configured, book if isinstance(book, PriceBook) else None)


def as_outbox(outbox: str | Path | Outbox | None) -> Outbox | None:
    if outbox is None or isinstance(outbox, Outbox):
        return outbox
    return Outbox(outbox)


def usable(outbox: Outbox | None, durable: bool) -> Outbox | None:
    """Open the outbox now, so that an unwritable one (a read-only home in a
    container or a serverless function) is found here, not by raising out of a
    track call later; without durable=True the tracker then goes on without one."""
    if outbox is None:
        return None
    try:
        outbox.pending()
    except (OSError, sqlite3.Error) as exc:
        if durable:
            raise AgentMeterConfigurationError(
                f"durable=True needs a writable outbox; {outbox} cannot be used: {exc}"
            ) from None
        logger.warning(
            "agentmeter: %s cannot be used (%s); going on without an outbox "
            "(a full queue makes callers wait up to block_timeout)",
            outbox,
            exc,
        )
        return None
    return outbox
