"""What ``agentmeter import`` reads: exports of ``agentmeter events`` and CloudEvents files.

Every format becomes a stream of :class:`Item`: an event in its wire form
(a plain dict, as ``POST /api/meter/events/batch`` takes it), or the reason
a record could not become one, each with its place in the file: the line
(CSV, JSON Lines) or the array index (JSON). No event model is built here:
the server (or the embedded ledger) validates every event anyway, and
building 100,000 models on the client would halve the import's speed.

Formats: ``csv`` (``events --format csv``), ``json`` (``events --format
json``: its ``events`` array; a bare array of events too), ``jsonl`` (one
event per line), ``cloudevents`` (a JSON array of envelopes) and
``cloudevents-jsonl`` (one envelope per line). ``auto`` goes by the file's
extension and, for JSON, by its first record. CSV and JSON Lines are
streamed; a JSON array is read whole.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator, Mapping
from decimal import Decimal
from pathlib import Path
from typing import IO, Any, NamedTuple

from ..core.cloudevent_map import event_of
from ..errors import AgentMeterValidationError

FORMATS = ("auto", "csv", "json", "jsonl", "cloudevents", "cloudevents-jsonl")
# Columns of the CSV export that are answers, not inputs.
DERIVED = frozenset({"event_type", "total_cost", "cost"})
COUNTS = frozenset(
    {"api_calls", "tokens_in", "tokens_out", "cached_tokens_in", "cache_write_tokens"}
)
# Each payment type's own columns; the others are empty in its rows.
OWN_COLUMNS = {
    "api_request_pay": ("api_calls", "unit_price"),
    "token_based_pay": (
        "tokens_in",
        "tokens_out",
        "input_token_price",
        "output_token_price",
        "model",
        "cached_tokens_in",
        "cache_write_tokens",
        "cached_input_token_price",
        "cache_write_token_price",
    ),
    "instant_pay": ("amount", "description"),
}
_DECODER = json.JSONDecoder(parse_float=Decimal)
COMMON_COLUMNS = ("id", "timestamp", "project_id", "agent_id", "user_id", "payment_type")


class Item(NamedTuple):
    """One record of the file: ``event`` (wire form), or ``error`` saying why not."""

    position: int  # the file line (CSV, JSON Lines) or the array index (JSON)
    event: dict[str, Any] | None = None
    error: str | None = None


class ImportFileError(ValueError):
    """The file as a whole cannot be read in the format asked for."""


def where(fmt: str, position: int) -> str:
    """``line 17`` or ``index 16``: how a format counts its records."""
    return f"index {position}" if fmt in ("json", "cloudevents") else f"line {position}"


def detect_format(path: Path) -> str:
    """The format of ``path``, from its extension and, for JSON, its first record."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return "csv"
    with path.open(encoding="utf-8") as stream:
        head = stream.read(64 * 1024)
    text = head.lstrip()
    if suffix in (".jsonl", ".ndjson") or (text[:1] == "{" and "\n{" in text.strip()):
        first = text.split("\n", 1)[0]
        return "cloudevents-jsonl" if '"specversion"' in first else "jsonl"
    if text[:1] == "[":
        return "cloudevents" if '"specversion"' in text[:4096] else "json"
    if text[:1] == "{":
        return "json"
    raise ImportFileError(
        f"cannot tell the format of {path.name}: give --format (csv, json, jsonl, "
        "cloudevents or cloudevents-jsonl)"
    )


def count_records(path: Path, fmt: str) -> int | None:
    """How many records a line-based file holds (for the progress bar), else None."""
    if fmt not in ("csv", "jsonl", "cloudevents-jsonl"):
        return None
    lines = 0
    with path.open("rb") as stream:
        while chunk := stream.read(1 << 20):
            lines += chunk.count(b"\n")
    return max(0, lines - 1) if fmt == "csv" else lines


def read_items(path: Path, fmt: str) -> Iterator[Item]:
    """Every record of ``path`` read as ``fmt`` (never ``auto``)."""
    readers = {
        "csv": _csv_items,
        "json": _json_items,
        "jsonl": _jsonl_items,
        "cloudevents": _json_items,
        "cloudevents-jsonl": _jsonl_items,
    }
    cloud = fmt.startswith("cloudevents")
    with path.open(encoding="utf-8", newline="" if fmt == "csv" else None) as stream:
        yield from readers[fmt](stream, cloud)


def _csv_items(stream: IO[str], cloud: bool) -> Iterator[Item]:
    reader = csv.reader(stream)
    header = next(reader, None)
    if header is None:
        return
    missing = [name for name in COMMON_COLUMNS if name not in header]
    if missing:
        raise ImportFileError(
            f"line 1: the header lacks {', '.join(missing)}: not an `agentmeter events` CSV export"
        )
    line = reader.line_num + 1
    for row in reader:
        try:
            yield Item(line, event=_csv_event(dict(zip(header, row, strict=False))))
        except (ValueError, AgentMeterValidationError) as exc:
            yield Item(line, error=str(exc))
        line = reader.line_num + 1


def _csv_event(record: Mapping[str, str]) -> dict[str, Any]:
    kind = record.get("payment_type", "")
    own = OWN_COLUMNS.get(kind)
    if own is None:
        raise ValueError(f"payment_type: must be one of {', '.join(OWN_COLUMNS)}, got {kind!r}")
    event: dict[str, Any] = {name: record[name] for name in COMMON_COLUMNS if record.get(name)}
    for name in own:
        text = record.get(name, "")
        if text != "" or name == "description":
            event[name] = _count(name, text) if name in COUNTS else text
    metadata = record.get("metadata")
    if metadata:
        event["metadata"] = _json_object(metadata)
    return event


def _json_object(text: str) -> Any:
    """The metadata cell's JSON (one decoder for every row: a third faster than json.loads)."""
    try:
        value, end = _DECODER.raw_decode(text)
    except ValueError:
        end = -1
    if end != len(text):
        raise ValueError(f"metadata: not a JSON object: {text[:40]!r}")
    return value


def _count(name: str, text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"{name}: must be a whole number, got {text[:40]!r}") from None


def _json_items(stream: IO[str], cloud: bool) -> Iterator[Item]:
    try:
        document = json.load(stream, parse_float=Decimal)
    except ValueError as exc:
        raise ImportFileError(f"not valid JSON: {exc}") from None
    records = document.get("events") if isinstance(document, dict) and not cloud else document
    if not isinstance(records, list):
        expected = "a JSON array of CloudEvents" if cloud else 'an "events" array'
        raise ImportFileError(f"expected {expected}")
    for index, record in enumerate(records):
        yield _item(index, record, cloud)


def _jsonl_items(stream: IO[str], cloud: bool) -> Iterator[Item]:
    for line, text in enumerate(stream, start=1):
        if not text.strip():
            continue
        try:
            record = json.loads(text, parse_float=Decimal)
        except ValueError as exc:
            yield Item(line, error=f"not valid JSON: {exc}")
            continue
        yield _item(line, record, cloud)


def _item(position: int, record: Any, cloud: bool) -> Item:
    try:
        event = event_of(record) if cloud else _plain_event(record)
    except AgentMeterValidationError as exc:
        return Item(position, error=exc.message)
    return Item(position, event=event)


def _plain_event(record: Any) -> dict[str, Any]:
    if not isinstance(record, Mapping):
        raise AgentMeterValidationError.for_field("event", "must be a JSON object")
    return {key: value for key, value in record.items() if key not in DERIVED}
