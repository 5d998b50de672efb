"""The export's rows read back as the same events: every field, every cost, exactly.

Hypothesis makes events of all three payment types, with token classes,
8-place prices, any text (commas, quotes, newlines, Unicode) and nested
metadata; each is written the way ``agentmeter events`` writes it (CSV,
JSON, CloudEvents, CloudEvents lines) and read by ``agentmeter import``'s
reader. The event parsed from what was read must equal the original.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentmeter.cli.cloudevent_export import write_cloudevents, write_cloudevents_jsonl
from agentmeter.cli.events import _write_csv, _write_json
from agentmeter.cli.import_reader import detect_format, read_items
from agentmeter.models import MeterEvent, parse_event

IDS = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.:\-]{0,20}", fullmatch=True)
NAMES = st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=20)
TEXT = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=40)
PRICES = st.decimals("0", "1000", places=8).map(str)
COUNTS = st.integers(0, 10**9)
TIMES = st.datetimes().map(lambda moment: moment.isoformat() + "Z")
LEAVES = st.none() | st.booleans() | st.integers(-(10**12), 10**12) | TEXT
METADATA = st.dictionaries(
    NAMES, st.recursive(LEAVES, lambda inner: st.lists(inner, max_size=3), max_leaves=5),
    max_size=4,
)  # fmt: skip


@st.composite
def events(draw: st.DrawFn) -> MeterEvent:
    common = {
        "id": draw(IDS),
        "project_id": draw(NAMES),
        "agent_id": draw(NAMES),
        "user_id": draw(NAMES),
        "timestamp": draw(TIMES),
        "metadata": draw(METADATA),
    }
    kind = draw(st.sampled_from(["api_request_pay", "token_based_pay", "instant_pay"]))
    if kind == "api_request_pay":
        own: dict[str, Any] = {"api_calls": draw(COUNTS), "unit_price": draw(PRICES)}
    elif kind == "instant_pay":
        own = {"amount": draw(PRICES), "description": draw(TEXT)}
    else:
        tokens_in = draw(COUNTS)
        own = {
            "tokens_in": tokens_in,
            "tokens_out": draw(COUNTS),
            "input_token_price": draw(PRICES),
            "output_token_price": draw(PRICES),
            "model": draw(st.none() | NAMES),
            "cached_tokens_in": draw(st.integers(0, tokens_in)),
            "cache_write_tokens": draw(COUNTS),
            "cached_input_token_price": draw(st.none() | PRICES),
            "cache_write_token_price": draw(st.none() | PRICES),
        }
    return parse_event({**common, "payment_type": kind, **own})


def exported(fmt: str, found: list[MeterEvent]) -> str:
    out = io.StringIO()
    if fmt == "csv":
        _write_csv(out, iter(found), {})
    else:
        writers = {
            "json": _write_json,
            "cloudevents": write_cloudevents,
            "cloudevents-jsonl": write_cloudevents_jsonl,
        }
        writers[fmt](out, iter(found), {})
    return out.getvalue()


@pytest.mark.parametrize("fmt", ["csv", "json", "cloudevents", "cloudevents-jsonl"])
@settings(max_examples=60, deadline=None)
@given(found=st.lists(events(), min_size=1, max_size=4))
def test_an_exported_event_is_read_back_unchanged(
    tmp_path_factory: pytest.TempPathFactory, fmt: str, found: list[MeterEvent]
) -> None:
    suffix = {"csv": ".csv", "cloudevents-jsonl": ".jsonl"}.get(fmt, ".json")
    path = tmp_path_factory.mktemp("export") / f"events{suffix}"
    path.write_text(exported(fmt, found), encoding="utf-8", newline="")
    assert detect_format(path) == fmt
    items = list(read_items(path, fmt))
    assert [item.error for item in items] == [None] * len(found)
    back = [parse_event(item.event or {}) for item in items]
    assert back == found
    assert [event.total_cost for event in back] == [event.total_cost for event in found]


def test_csv_positions_are_file_lines_even_across_quoted_newlines(tmp_path: Path) -> None:
    event = parse_event({
        "id": "e1", "project_id": "p", "agent_id": "a", "payment_type": "instant_pay",
        "amount": "1", "description": "two\nlines",
    })  # fmt: skip
    text = exported("csv", [event, event.model_copy(update={"id": "e2"})])
    path = tmp_path / "events.csv"
    path.write_text(text, encoding="utf-8", newline="")
    assert [item.position for item in read_items(path, "csv")] == [2, 4]


def test_json_positions_are_array_indexes(tmp_path: Path) -> None:
    path = tmp_path / "events.json"
    path.write_text(json.dumps({"events": [{"id": "x"}, 3]}), encoding="utf-8")
    items = list(read_items(path, "json"))
    assert [item.position for item in items] == [0, 1]
    assert items[1].error == "event: must be a JSON object"
