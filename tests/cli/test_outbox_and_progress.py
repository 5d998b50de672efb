"""``agentmeter outbox status|replay``, and progress bars: on a terminal only."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from datetime import datetime, timezone

import pytest

from agentmeter import AgentMeterClient
from agentmeter.models import APIRequestPayEvent, InstantPayEvent
from agentmeter.outbox import Outbox, outbox_for


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
    assert text.stdout.splitlines() == [f"outbox: {path}", "pending events: 7"]
    document = json.loads(am("outbox", "status", "--outbox", path, "--format", "json").stdout)
    assert document == {"outbox": str(path), "exists": True, "pending": 7}


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
