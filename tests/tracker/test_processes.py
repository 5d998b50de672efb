"""Processes that die or exit with events undelivered, and the next run that delivers them.

The server must hold every event whose track call returned in the first
process (the child prints each id as soon as the call returns), exactly
once, after a second run on the same outbox.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

from agentmeter import Outbox
from agentmeter.core.build import finalize, instant_event

CHILD = Path(__file__).with_name("_tracking_child.py")
AMOUNT = Decimal("0.01")


def start_child(settings: dict) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(CHILD), json.dumps(settings)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def child_settings(project, url: str, outbox: Path, mode: str, **extra) -> dict:
    settings = {
        "key": project.key,
        "url": url,
        "project_id": project.id,
        "mode": mode,
        "amount": str(AMOUNT),
        "user": "child-user",
        "tracker": {"outbox": str(outbox)},
    }
    settings.update(extra)
    return settings


def deliver_again(project, url: str, outbox: Path) -> None:
    """The second run: a new process, a new tracker, the same outbox."""
    child = start_child(child_settings(project, url, outbox, "deliver"))
    out, err = child.communicate(timeout=120)
    assert child.returncode == 0, err
    answer = json.loads(out.strip().splitlines()[-1])
    assert answer == {"delivered": True, "outbox_pending": 0}, err


def stored_ids(project) -> list[str]:
    """Every stored event's id, page by page (get_events answers 1000 at most)."""
    client = project.direct
    total = client.get_meter_stats(timeframe="all").total_events
    ids: list[str] = []
    while len(ids) < total:
        page = client.get_events(limit=1000, offset=len(ids))
        assert page, "the server reported more events than it lists"
        ids.extend(event.id for event in page)
    return ids


def check_stored(project, returned: list[str], unconfirmed_allowed: int) -> None:
    stored = stored_ids(project)
    assert len(stored) == len(set(stored))  # each id once
    assert set(returned) <= set(stored), "a returned track call's event is missing"
    # Only a call still running at the kill may have stored an id it never returned.
    assert len(set(stored) - set(returned)) <= unconfirmed_allowed
    stats = project.direct.get_meter_stats(timeframe="all")
    assert stats.total_cost == AMOUNT * len(stored)
    assert project.direct.get_user_meter("child-user").current_usage == AMOUNT * len(stored)


def test_sigkill_mid_stream_with_durable_then_the_next_run_delivers(live_server, project, tmp_path):
    outbox = tmp_path / "outbox.db"
    tracker = {
        "outbox": str(outbox),
        "durable": True,
        "batch_size": 1000,  # by size only, so a good part is undelivered at the kill
        "flush_interval": 30,
    }
    child = start_child(
        child_settings(project, live_server.url, outbox, "stream", count=100_000, tracker=tracker)
    )
    returned: list[str] = []
    try:
        while len(returned) < 2500:
            line = child.stdout.readline()
            assert line, child.stderr.read()
            returned.append(line.strip())
    finally:
        child.send_signal(signal.SIGKILL)
        # Read through the same buffered stream as readline: communicate() reads the
        # pipe's descriptor and would drop lines readline had already buffered.
        rest = child.stdout.read()
        child.communicate(timeout=30)  # reaped: its outbox claims are void
    returned += [line for line in rest.splitlines() if len(line) == 36]
    assert child.returncode == -signal.SIGKILL
    left = Outbox(outbox)
    assert left.pending() > 0  # the kill left events behind...
    left.close()

    deliver_again(project, live_server.url, outbox)  # ...and the next run sends them
    check_stored(project, returned, unconfirmed_allowed=1)


def test_exit_while_the_server_is_down_then_the_next_run_delivers(
    live_server, project, proxy_factory, tmp_path
):
    proxy = proxy_factory()
    proxy.down()  # nothing listens at the address the child sends to
    outbox = tmp_path / "outbox.db"
    tracker = {
        "outbox": str(outbox),
        "batch_size": 200,
        "flush_interval": 0.05,
        "shutdown_timeout": 2.0,
    }
    child = start_child(
        child_settings(project, proxy.url, outbox, "exit", count=3000, tracker=tracker)
    )
    out, err = child.communicate(timeout=120)  # bounded: it does not hang at exit
    assert child.returncode == 0, err
    returned = out.split()
    assert len(returned) == 3000
    left = Outbox(outbox)
    assert left.pending() == 3000  # atexit put everything in the outbox
    left.close()
    assert project.direct.get_meter_stats(timeframe="all").total_events == 0

    proxy.up()
    deliver_again(project, proxy.url, outbox)
    check_stored(project, returned, unconfirmed_allowed=0)
    assert sorted(stored_ids(project)) == sorted(returned)


def test_flush_is_false_while_another_live_tracker_holds_outbox_rows(
    live_server, project, make_tracker, kit, tmp_path
):
    """Regression: rows claimed by another live process (waiting out its lease)
    made the claim come back empty, and flush() answered True with them undelivered."""
    path = tmp_path / "outbox.db"
    events = [
        finalize(instant_event(project.id, "other", "dave", "0.25", event_id=f"held-{n}"))
        for n in range(3)
    ]
    other = Outbox(path)  # another tracker's claim: same pid, so alive
    other.put(events)
    assert len(other.claim(10)) == 3
    tracker = make_tracker(kit.fault_client(project, live_server.url), outbox=path)
    tracker.start()

    assert tracker.flush(timeout=1.5) is False
    other.release([event["id"] for event in events])
    other.close()
    assert tracker.flush(timeout=30) is True
    delivered = {event.id for event in project.direct.get_events(limit=100)}
    assert delivered == {"held-0", "held-1", "held-2"}
