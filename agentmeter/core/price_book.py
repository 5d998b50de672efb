"""Each project's price table, read from the ledger at most once per TTL.

One book per client (``client.price_book``). A direct call
(``record_token_based_pay``) asks :meth:`PriceBook.current`, which reads the
table when the cached one is older than the TTL. The tracker's hot path only
:meth:`peeks <PriceBook.peek>` (no I/O): an event priced with a table that
was missing or stale is marked, and its prices are settled when the event
is finalized (the delivery thread, or the caller's when the event goes
straight to the outbox), with a table read then (:meth:`PriceBook.reprice`).

A server without the price endpoints (404) has an empty table: catalog
prices, no markup. A table that cannot be read is asked for again after the
TTL; until then the last one read (or the catalog) is used, and a warning
is logged. ``strict`` (direct calls) raises the read error instead.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from ..errors import AgentMeterError, NotFoundError
from ..models import ProjectPrices
from .price_table import PriceTable

logger = logging.getLogger("agentmeter")
REPRICE = "_reprice"  # key of a queued event whose prices wait for a fresh table
_NEVER = float("-inf")


class PriceReader(Protocol):
    """Where a book reads a project's prices: the client's price endpoints."""

    def get_prices(self, project_id: str | None = None) -> ProjectPrices: ...


class PriceBook:
    """Thread-safe. ``ttl`` seconds between reads of one project's table."""

    def __init__(self, reader: PriceReader, ttl: float = 60.0) -> None:
        self.reader = reader
        self.ttl = ttl
        # project -> (table, when it goes stale): read without a lock on the hot path
        self.tables: dict[str, tuple[PriceTable, float]] = {}
        self._failed_at: dict[str, float] = {}
        self._lock = threading.Lock()
        self._reading: dict[str, threading.Lock] = {}

    def __repr__(self) -> str:
        return f"PriceBook(ttl={self.ttl}, projects={sorted(self.tables)})"

    def peek(self, project_id: str) -> tuple[PriceTable | None, bool]:
        """(the cached table or None, whether it is fresh): no I/O, for the hot path."""
        held = self.tables.get(project_id)
        if held is None:
            return None, False
        return held[0], time.monotonic() < held[1]

    def current(self, project_id: str, *, strict: bool = False) -> PriceTable | None:
        """The project's table, read now if the cached one is stale.

        None only when no table could ever be read (and not ``strict``)."""
        table, fresh = self.peek(project_id)
        if fresh:
            return table
        with self._reading_lock(project_id):
            table, fresh = self.peek(project_id)  # another thread may have read it
            if fresh:
                return table
            failed_at = self._failed_at.get(project_id, _NEVER)
            if not strict and time.monotonic() - failed_at < self.ttl:
                return table
            return self._read(project_id, table, strict)

    def _read(self, project_id: str, stale: PriceTable | None, strict: bool) -> PriceTable | None:
        try:
            table = PriceTable.of(self.reader.get_prices(project_id=project_id))
        except NotFoundError:
            logger.info("agentmeter: the server has no price table; using the catalog's prices")
            table = PriceTable()
        except AgentMeterError as exc:
            if strict:
                raise
            self._failed_at[project_id] = time.monotonic()
            logger.warning(
                "agentmeter: could not read the prices of project %r (%s); using %s",
                project_id,
                exc,
                "the last ones read" if stale is not None else "the catalog's",
            )
            return stale
        self.tables[project_id] = (table, time.monotonic() + self.ttl)
        self._failed_at.pop(project_id, None)
        return table

    def _reading_lock(self, project_id: str) -> threading.Lock:
        with self._lock:
            return self._reading.setdefault(project_id, threading.Lock())

    def forget(self, project_id: str) -> None:
        """Drop the cached table (its prices or markup were just changed)."""
        self.tables.pop(project_id, None)
        self._failed_at.pop(project_id, None)

    def refresher(self, project_id: str) -> Callable[[], PriceTable | None]:
        """A function reading the project's table now (the hot path's rare fallback)."""
        return lambda: self.current(project_id)

    def reprice(self, event: dict[str, Any], given: tuple[Any, ...], model: str) -> None:
        """Settle a marked event's prices with a fresh table (at finalize).

        ``given`` are the prices passed with the charge (None: not given),
        input, output, cached input, cache write: those stay as they are.
        Never raises: an event keeps the prices it got on the hot path if
        no fresher ones can be had."""
        try:
            table = self.current(event["project_id"])
            entry = None if table is None else table.entry(model)
            prices = None if entry is None else entry.at(event["tokens_in"])
        except Exception:  # the event must still be delivered
            logger.exception("agentmeter: could not settle the prices of event %s", event["id"])
            return
        if prices is None:
            return
        _set(event, "input_token_price", given[0], prices.input)
        _set(event, "output_token_price", given[1], prices.output)
        if event.get("cached_tokens_in"):
            _set(event, "cached_input_token_price", given[2], prices.cached_input)
        if event.get("cache_write_tokens"):
            _set(event, "cache_write_token_price", given[3], prices.cache_write)
        metadata = event["metadata"]
        if metadata.get("unpriced") is True:  # priced now: a project row names it
            event["metadata"] = {key: value for key, value in metadata.items() if key != "unpriced"}


def _set(event: dict[str, Any], field: str, given: Any, listed: Any) -> None:
    if given is not None:
        return
    if listed is not None:
        event[field] = listed
    else:  # no separate rate: such tokens are billed at the input price
        event.pop(field, None)
