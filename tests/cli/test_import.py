"""``agentmeter import`` and the CloudEvents export: out and back, exactly.

A source project (the seeded ~2,400 events plus events with token classes,
awkward descriptions and metadata) is exported in each format, imported
into an empty project (and into an empty ledger file), and the ``stats``
and the per-user report must come out identical, to the last digit. A
second import stores nothing; broken records are reported with their place.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from agentmeter import AgentMeterClient
from agentmeter.models import InstantPayEvent, MeterEvent, TokenBasedPayEvent

from .conftest import Backends, Runner, Target, make_events

FORMATS = ("csv", "json", "cloudevents", "cloudevents-jsonl")
MOMENT = datetime(2025, 2, 14, 9, 30, 0, 654321, tzinfo=timezone.utc)
SUFFIX = {"csv": "csv", "json": "json", "cloudevents": "json", "cloudevents-jsonl": "jsonl"}


def awkward_events(project_id: str) -> list[MeterEvent]:
    """What a lossy export would lose: token classes, model, quotes, newlines, Unicode."""
    common: dict[str, Any] = {"project_id": project_id, "agent_id": "a,b", "timestamp": MOMENT}
    return [
        TokenBasedPayEvent(
            id=f"{project_id}-cached",
            user_id="zoë",
            tokens_in=120_000,
            tokens_out=3_000,
            input_token_price="0.0000025",
            output_token_price="0.00001",
            model="gpt-4o",
            cached_tokens_in=100_000,
            cache_write_tokens=5_000,
            cached_input_token_price="0.00000125",
            cache_write_token_price="0.000003125",
            metadata={"team": "R&D", "nested": {"list": [1, "two", True, None]}},
            **common,
        ),
        InstantPayEvent(
            id=f"{project_id}-quoted",
            user_id="bob",
            amount="0.00000001",
            description='line one\nline "two", three',
            metadata={"emoji": "💸"},
            **common,
        ),
    ]


@pytest.fixture(scope="module")
def sources(backends: Backends) -> Iterator[dict[str, Target]]:
    """One source project per backend, made on first use (read only)."""
    made: dict[str, Target] = {}

    def source(mode: str) -> Target:
        if mode not in made:
            target = backends.new_target(mode)
            events = [*make_events(target.project_id), *awkward_events(target.project_id)]
            assert target.client.record_events(events).accepted == len(events)
            made[mode] = target
        return made[mode]

    yield source  # type: ignore[misc]
    for target in made.values():
        target.client.close()


def totals(am: Runner, flags: list[str]) -> dict[str, Any]:
    """``stats`` and the per-user monthly report, without what names the project or the hour."""
    stats = json.loads(am("stats", *flags, "--timeframe", "all", "--format", "json").stdout)
    report = am(
        "report", *flags, "--group-by", "user", "--granularity", "month",
        "--since", "2000-01-01", "--format", "json",
    )  # fmt: skip
    assert report.exit_code == 0, report.output
    for drop in ("generated_at", "project_id"):
        stats.pop(drop)
    return {"stats": stats, "report": json.loads(report.stdout)["rows"]}


def export(am: Runner, source: Target, fmt: str, folder: Path) -> Path:
    path = folder / f"export-{fmt}.{SUFFIX[fmt]}"
    done = am("events", *source.flags, "--all", "--format", fmt, "-o", path)
    assert done.exit_code == 0, done.output
    return path


def summary(output: str) -> dict[str, int]:
    counts = {}
    for line in output.splitlines():
        label, _, value = line.strip().partition(":")
        if label in ("accepted", "duplicates", "rejected"):
            counts[label] = int(value.replace(",", ""))
    return counts


@pytest.mark.parametrize("fmt", FORMATS)
def test_export_then_import_into_an_empty_project_gives_identical_figures(
    am: Runner, sources: Any, target: Target, fmt: str, tmp_path: Path
) -> None:
    source: Target = sources(target.mode)
    path = export(am, source, fmt, tmp_path)
    count = len(make_events(source.project_id)) + 2

    first = am("import", path, *target.flags, "--into-project", target.project_id)
    assert first.exit_code == 0, first.output
    assert summary(first.stdout) == {"accepted": count, "duplicates": 0, "rejected": 0}
    assert f"({fmt})" in first.stdout  # auto found the format
    expected = totals(am, source.flags)
    assert totals(am, target.flags) == expected

    second = am("import", path, *target.flags, "--into-project", target.project_id)
    assert second.exit_code == 0, second.output
    assert summary(second.stdout) == {"accepted": 0, "duplicates": count, "rejected": 0}
    assert totals(am, target.flags) == expected


@pytest.mark.parametrize("fmt", ["csv", "cloudevents-jsonl"])
def test_the_same_events_come_back_field_for_field_into_an_empty_ledger_file(
    am: Runner, sources: Any, fmt: str, tmp_path: Path
) -> None:
    source: Target = sources("embedded")
    path = export(am, source, fmt, tmp_path)
    empty = f"sqlite:///{tmp_path / 'empty.db'}"
    done = am("import", path, "--db", empty, "--format", fmt, "--batch-size", "333")
    assert done.exit_code == 0, done.output
    ids = [event.id for event in awkward_events(source.project_id)]
    window = {"start_date": MOMENT, "end_date": MOMENT + timedelta(seconds=1), "limit": 1000}
    with AgentMeterClient(base_url=empty, project_id=source.project_id) as copy:
        back = {event.id: event for event in copy.get_events(**window) if event.id in ids}
    original = {event.id: event for event in source.client.get_events(**window)}
    assert set(back) == set(ids)
    for event_id in ids:
        assert back[event_id] == original[event_id]


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_rejected_csv_rows_are_reported_with_their_file_line(am: Runner, tmp_path: Path) -> None:
    header = "id,timestamp,project_id,agent_id,user_id,payment_type,api_calls,unit_price,metadata"
    lines = [
        header,
        "ok-1,2025-01-01T00:00:00Z,p,a,u,api_request_pay,2,0.5,{}",
        'bad-calls,2025-01-01T00:00:00Z,p,a,u,api_request_pay,two,0.5,"{}"',
        '"multi',
        'line-id",2025-01-01T00:00:00Z,p,a,u,api_request_pay,1,0.5,{}',  # record of lines 4-5
        "bad-price,2025-01-01T00:00:00Z,p,a,u,api_request_pay,1,-3,{}",
        "bad-kind,2025-01-01T00:00:00Z,p,a,u,refund,1,0.5,{}",
        "ok-2,2025-01-01T00:00:00Z,p,a,u,api_request_pay,1,0.25,{}",
    ]
    path = write(tmp_path / "usage.csv", "\n".join(lines) + "\n")
    db = f"sqlite:///{tmp_path / 'ledger.db'}"
    done = am("import", path, "--db", db)
    assert done.exit_code == 1
    assert summary(done.stdout) == {"accepted": 2, "duplicates": 0, "rejected": 4}
    assert "line 3: api_calls: must be a whole number" in done.stdout
    assert "line 4" in done.stdout  # the multi-line id breaks the id's pattern
    assert "line 6 (id bad-price): unit_price" in done.stdout
    assert "line 7: payment_type" in done.stdout
    again = am("import", path, "--db", db)
    assert summary(again.stdout) == {"accepted": 0, "duplicates": 2, "rejected": 4}


def test_rejected_cloudevents_are_reported_by_index_and_line(am: Runner, tmp_path: Path) -> None:
    good = {
        "specversion": "1.0", "id": "ce-1", "source": "a", "subject": "u", "projectid": "p",
        "type": "agentmeter.instant_pay", "data": {"amount": "1.5"},
    }  # fmt: skip
    bad_type = {**good, "id": "ce-2", "type": "agentmeter.refund"}
    no_source = {key: value for key, value in good.items() if key != "source"}
    array = write(tmp_path / "batch.json", json.dumps([good, bad_type, no_source]))
    db = f"sqlite:///{tmp_path / 'ledger.db'}"
    done = am("import", array, "--db", db)
    assert done.exit_code == 1
    assert "(cloudevents)" in done.stdout
    assert "index 1: type: must be one of" in done.stdout
    assert "index 2: source: required" in done.stdout

    lines = [json.dumps(good), "{not json", "", json.dumps({**good, "id": "ce-3"})]
    jsonl = write(tmp_path / "events.jsonl", "\n".join(lines) + "\n")
    done = am("import", jsonl, "--db", db)
    assert summary(done.stdout) == {"accepted": 1, "duplicates": 1, "rejected": 1}
    assert "line 2: not valid JSON" in done.stdout


def test_a_file_of_another_kind_is_a_usage_error(am: Runner, tmp_path: Path) -> None:
    path = write(tmp_path / "notes.csv", "name,amount\nx,1\n")
    done = am("import", path, "--db", f"sqlite:///{tmp_path / 'ledger.db'}")
    assert done.exit_code == 2
    assert "not an `agentmeter events` CSV export" in done.stderr
