"""``agentmeter outbox status|replay``, and progress bars: on a terminal only."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import threading
from datetime import datetime, timezone

import pytest

from agentmeter import AgentMeterClient
from agentmeter.delivery.outbox import Outbox, outbox_for
from agentmeter.models import APIRequestPayEvent, InstantPayEvent


def wire_events(project_id, count, prefix="ob"):
    moment = datetime(2025, 5, 1, tzinfo=timezone.utc)
    return [
        APIRequestPayEvent(
            id=f"{prefix}-{project_id}-{index}",
            project_id=project_id,
            agent_id="replayer",
            user_id="frank",
            api_calls=1,
            unit_price="0.25",
            timestamp=moment,
        ).to_dict()
        for index in range(count)
    ]


@pytest.fixture
def spool(tmp_path):
    def make(events):
        path = tmp_path / "outbox.db"
        box = Outbox(path)
        box.put(events)
        box.close()
        return path

    return make


def pending(path):
    box = Outbox(path)
    try:
        return box.pending()
    finally:
        box.close()


def test_status_counts_what_waits(am, target, spool):
    path = spool(wire_events(target.project_id, 7))
    text = am("outbox", "status", "--outbox", path)
    assert text.exit_code == 0, text.stderr
    assert text.stdout.splitlines() == [
        f"outbox: {path}",
        "pending events: 7",
        "quarantined events: 0",
    ]
    document = json.loads(am("outbox", "status", "--outbox", path, "--format", "json").stdout)
    assert document == {"outbox": str(path), "exists": True, "pending": 7, "quarantined": 0}


def test_status_of_a_missing_outbox_creates_nothing(am, tmp_path):
    path = tmp_path / "none.db"
    done = am("outbox", "status", "--outbox", path)
    assert done.exit_code == 0
    assert "(no file yet)" in done.stdout
    assert "pending events: 0" in done.stdout
    assert not path.exists()


def test_status_defaults_to_the_outbox_of_the_connection(am, tmp_path):
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    with AgentMeterClient(base_url=url) as client:
        expected = outbox_for(client).path
    done = am("outbox", "status", "--db", url, "--format", "json")
    assert json.loads(done.stdout)["outbox"] == str(expected)


def test_replay_delivers_then_forgets(am, target, spool):
    events = wire_events(target.project_id, 1200)  # more than one batch
    path = spool(events)
    done = am("outbox", "replay", "--outbox", path, *target.flags, "--batch-size", "500")
    assert done.exit_code == 0, done.stderr
    assert done.stdout.strip() == (
        f"replayed 1,200 events from {path}: 1,200 new, 0 already stored, 0 rejected; 0 left"
    )
    assert pending(path) == 0
    stats = target.client.get_meter_stats(timeframe="all")
    assert stats.total_events == 1200
    assert stats.total_cost == 300

    # The same events again (say a crashed replay ran twice): stored once.
    spool(events[:10])
    again = am("outbox", "replay", "--outbox", path, *target.flags)
    assert "0 new, 10 already stored" in again.stdout
    assert target.client.get_meter_stats(timeframe="all").total_events == 1200


def test_replay_reports_and_drops_rejected_events(am, target, spool):
    good = wire_events(target.project_id, 3)
    bad = InstantPayEvent(
        id="bad-one", project_id=target.project_id, agent_id="a", amount="1"
    ).to_dict()
    bad["amount"] = "-5"  # the server refuses it, now and forever
    path = spool([*good, bad])
    done = am("outbox", "replay", "--outbox", path, *target.flags)
    assert done.exit_code == 0, done.stderr
    assert "3 new, 0 already stored, 1 rejected; 0 left" in done.stdout
    assert done.stderr.startswith("rejected bad-one: ")
    assert pending(path) == 0


def test_replay_to_a_dead_server_keeps_everything(am, spool, error_line):
    path = spool(wire_events("proj_x", 5))
    done = am(
        "outbox", "replay", "--outbox", path, "--base-url", "http://127.0.0.1:9",
        "--api-key", "am_proj_dead", "--project-id", "proj_x",
        env={"AGENTMETER_RETRY_ATTEMPTS": "0"},
    )  # fmt: skip
    assert done.exit_code == 1
    assert "the rest stay in the outbox" in error_line(done)
    assert "am_proj_dead" not in done.stderr
    assert pending(path) == 5
    box = Outbox(path)  # released, so a later replay (or tracker) can claim them
    try:
        assert len(box.claim(10)) == 5
    finally:
        box.close()


def test_a_file_that_is_not_an_outbox(am, tmp_path, error_line):
    path = tmp_path / "notes.txt"
    path.write_text("not a database, just some notes " * 100)
    done = am("outbox", "status", "--outbox", path)
    assert done.exit_code == 2
    assert "cannot read the outbox" in error_line(done)


def test_quarantined_events_are_shown_requeued_and_dropped(am, tmp_path):
    path = tmp_path / "outbox.db"
    box = Outbox(path)
    good = {"id": "fine-1", "amount": "1"}
    assert box.put([good, {"id": "inf-1", "x": float("inf")}, {"id": "inf-2", "y": "\ud800"}]) == 1
    box.put([{"id": "bad-json", "amount": "1"}])
    box.close()
    with sqlite3.connect(path) as db:
        db.execute("UPDATE outbox SET payload = '{[oops' WHERE id = 'bad-json'")
    box = Outbox(path)
    assert [row["id"] for row in box.claim(10)] == ["fine-1"]  # the garbage row moves aside
    box.release(["fine-1"])
    box.close()

    status = am("outbox", "status", "--outbox", path)
    assert status.exit_code == 0, status.stderr
    assert status.stdout.splitlines()[1:] == ["pending events: 1", "quarantined events: 3"]
    listed = am("outbox", "list", "--outbox", path)
    assert listed.exit_code == 0, listed.stderr
    for event_id in ("inf-1", "inf-2", "bad-json"):
        assert event_id in listed.stdout
    assert "payload is not JSON" in listed.stdout
    assert "{[oops" in listed.stdout  # kept as it was found
    rows = json.loads(am("outbox", "list", "--outbox", path, "--format", "json").stdout)
    assert sorted(row["id"] for row in rows) == ["bad-json", "inf-1", "inf-2"]
    assert all(row["reason"] and row["quarantined_at"] for row in rows)

    bare = am("outbox", "requeue", "--outbox", path)
    assert bare.exit_code == 2  # ids or --all, never everything by accident
    requeued = am("outbox", "requeue", "--outbox", path, "bad-json")
    assert requeued.exit_code == 0, requeued.stderr
    assert "requeued 1 event in" in requeued.stdout
    assert pending(path) == 2
    dropped = am("outbox", "drop", "--outbox", path, "--all")
    assert dropped.exit_code == 0, dropped.stderr
    assert "dropped 2 quarantined events" in dropped.stdout
    assert "quarantined events: 0" in am("outbox", "status", "--outbox", path).stdout


def test_reading_commands_create_no_outbox(am, tmp_path):
    for command in ("status", "list"):
        path = tmp_path / f"{command}.db"
        done = am("outbox", command, "--outbox", path)
        assert done.exit_code == 0, done.stderr
        assert not path.exists()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", ["status", "list", "replay", "requeue"])
def test_a_ledger_named_as_the_outbox_is_refused_and_left_untouched(
    am, tmp_path, error_line, command
):
    """Regression: `outbox status --outbox ledger.db` added an outbox table to the ledger."""
    ledger = tmp_path / "ledger.db"
    url = f"sqlite:///{ledger}"
    with AgentMeterClient(base_url=url) as client:
        client.send_batch(wire_events("default", 3))
    before = ledger.read_bytes()
    extra = {"requeue": ["--all"], "replay": ["--db", url]}.get(command, [])
    done = am("outbox", command, "--outbox", ledger, *extra)
    assert done.exit_code == 2, done.stdout
    assert "is not an outbox" in error_line(done)
    assert ledger.read_bytes() == before
    with sqlite3.connect(ledger) as db:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
    assert "outbox" not in tables
    assert "quarantine" not in tables


# ---------------------------------------------------------------- progress


def run_with_terminal_stderr(args, env):
    """Run agentmeter with stderr on a pseudo-terminal; return (code, stdout, terminal text)."""
    main, secondary = os.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "agentmeter.cli", *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=secondary,
        env=env,
    )
    os.close(secondary)
    chunks = []

    def read():
        while True:
            try:
                data = os.read(main, 65536)
            except OSError:
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    out, _ = process.communicate(timeout=120)
    reader.join(10)
    os.close(main)
    return process.returncode, out.decode(), b"".join(chunks).decode(errors="replace")


@pytest.fixture
def clean_env():
    drop = ("AGENTMETER_", "FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "NO_COLOR")
    return {k: v for k, v in os.environ.items() if not k.startswith(drop)}


def test_progress_bar_on_a_terminal_only(tmp_path, spool, clean_env):
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    path = spool(wire_events("default", 3000))
    args = ["outbox", "replay", "--outbox", path, "--db", url, "--batch-size", "100"]

    code, out, terminal = run_with_terminal_stderr(args, clean_env)
    assert code == 0, terminal
    assert "replaying outbox" in terminal  # drawn on the terminal
    assert "\x1b[" in terminal
    assert "replaying outbox" not in out  # never mixed into the result
    assert "3,000 new" in out

    spool(wire_events("default", 3000, prefix="again"))
    piped = subprocess.run(
        [sys.executable, "-m", "agentmeter.cli", *map(str, args)],
        capture_output=True, text=True, env=clean_env, timeout=120, check=False,
    )  # fmt: skip
    assert piped.returncode == 0, piped.stderr
    assert piped.stderr == ""  # no bar, no escape codes when piped
    assert "\x1b[" not in piped.stdout


def test_export_progress_bar_on_a_terminal(tmp_path, spool, clean_env):
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    with AgentMeterClient(base_url=url) as client:
        client.send_batch(wire_events("default", 2500))
    args = ["events", "--db", url, "--all", "--format", "csv", "-o", tmp_path / "all.csv"]
    code, _, terminal = run_with_terminal_stderr(args, clean_env)
    assert code == 0, terminal
    assert "fetching events" in terminal
    assert "2,500 events written" in terminal
    assert len((tmp_path / "all.csv").read_text().splitlines()) == 2501
