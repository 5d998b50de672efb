"""The events page's export: every event of the current filter, as CSV or JSON.

Streamed a page at a time (``Ledger.event_pages``), so an export of a
million events never sits in memory whole. Cells that a spreadsheet would
read as a formula (a user id of ``=HYPERLINK(...)``) are prefixed with ``'``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

from ...core import jsonio
from ...core.wire import EventQuery
from ...ledger import Ledger

COLUMNS = (
    "id",
    "timestamp",
    "project_id",
    "user_id",
    "agent_id",
    "event_type",
    "payment_type",
    "model",
    "api_calls",
    "unit_price",
    "tokens_in",
    "tokens_out",
    "cached_tokens_in",
    "cache_write_tokens",
    "input_token_price",
    "output_token_price",
    "cached_input_token_price",
    "cache_write_token_price",
    "amount",
    "description",
    "total_cost",
    "metadata",
)
_TEXT_COLUMNS = frozenset({"id", "user_id", "agent_id", "model", "description", "metadata"})
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_rows(ledger: Ledger, query: EventQuery) -> Iterator[str]:
    """The CSV text: a header line, then one line per event."""
    yield _line(COLUMNS)
    for page in ledger.event_pages(query):
        yield "".join(_line(_cells(event)) for event in page)


def json_chunks(ledger: Ledger, query: EventQuery) -> Iterator[str]:
    """A JSON array of events in the wire API's form (``GET /api/meter/events``)."""
    yield "["
    first = True
    for page in ledger.event_pages(query):
        for event in page:
            yield ("\n" if first else ",\n") + jsonio.dumps(event)
            first = False
    yield "\n]\n"


def _cells(event: dict[str, Any]) -> list[str]:
    cells = []
    for column in COLUMNS:
        value = event.get(column)
        if column == "model" and value is None:
            value = (event.get("metadata") or {}).get("model")
        text = _text(value)
        if column in _TEXT_COLUMNS and text.startswith(_FORMULA_STARTS):
            text = "'" + text
        cells.append(text)
    return cells


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return jsonio.dumps(value)
    return str(value)


def _line(cells: Any) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow(cells)
    return buffer.getvalue()
