"""A damaged outbox file: real garbage in rows, pages overwritten, a truncated file.

Every test writes a real outbox, damages the file on disk, and lets a tracker
open it against the real server. What is intact must reach the server exactly
once; what is not is quarantined (a row) or kept aside for inspection (the
file), logged once, and never stops delivery or makes ``flush()`` lie.
"""

from __future__ import annotations

import contextlib
import logging
import random
import sqlite3
from decimal import Decimal
from pathlib import Path

import pytest

from agentmeter import Outbox
from agentmeter.core.build import finalize, instant_event
from agentmeter.delivery import outbox_damage as _outbox_damage
from agentmeter.errors import AgentMeterConfigurationError
from agentmeter.tracker import AgentMeterTracker

PADDING = "p" * 300  # a few rows per page, so damage hits some rows and spares others


def spooled(project, path: Path, count: int, prefix: str) -> dict[str, str]:
    """``count`` finalized events in a fresh outbox at ``path``; their id -> payload text."""
    events = []
    for n in range(count):
        event = instant_event(project.id, "spool", "carol", "0.25", metadata={"pad": PADDING})
        event["id"] = f"{prefix}-{n:04d}"
        events.append(finalize(event))
    box = Outbox(path)
    assert box.put(events) == count
    box.close()  # the last connection: the WAL is checkpointed into the file
    with sqlite3.connect(path) as db:
        return dict(db.execute("SELECT id, payload FROM outbox").fetchall())


def delivered_ids(project) -> list[str]:
    return [event.id for event in project.direct.get_events(limit=1000)]


def damage_logs(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno >= logging.WARNING and "damaged" in r.message]


def deliver_from(make_tracker, kit, project, live_server, path: Path):
    tracker = make_tracker(kit.fault_client(project, live_server.url), outbox=path)
    tracker.start()
    assert tracker.flush(timeout=60), tracker.stats()
    return tracker


def test_garbage_rows_are_quarantined_and_every_intact_row_delivered(
    live_server, project, make_tracker, kit, tmp_path, caplog
):
    """Regression: claim() raised on the first garbage row after claiming its whole
    batch, so the intact rows claimed with it sat out their lease (75 of 100 lost
    across restarts) while flush() answered True with rows pending."""
    path = tmp_path / "outbox.db"
    payloads = spooled(project, path, 100, "rows")
    garbage = [
        b"\xff\xfe\x00garbage",  # not UTF-8
        "not json at all",
        "[1, 2, 3]",
        '{"id": "someone-else"}',
        '{"id": "rows-00',  # cut short
        "[" * 5000 + "]" * 5000,  # nested deeper than the decoder goes
        "",
    ]
    rng = random.Random(11)
    broken = sorted(rng.sample(sorted(payloads), 25))
    with sqlite3.connect(path) as db:
        for n, event_id in enumerate(broken):
            db.execute(
                "UPDATE outbox SET payload = ? WHERE id = ?", (garbage[n % len(garbage)], event_id)
            )
    with caplog.at_level(logging.WARNING, logger="agentmeter"):
        tracker = make_tracker(
            kit.fault_client(project, live_server.url), outbox=path, batch_size=10
        )
        tracker.start()
        assert tracker.flush(timeout=60), tracker.stats()
    intact = set(payloads) - set(broken)
    ids = delivered_ids(project)
    assert sorted(ids) == sorted(intact)  # each intact row once, no garbage
    stats = project.direct.get_meter_stats(timeframe="all")
    assert stats.total_cost == Decimal("0.25") * len(intact)
    assert tracker.outbox.pending() == 0
    assert sorted(row.id for row in tracker.outbox.quarantined()) == broken
    assert tracker.stats().outbox_quarantined == 25
    assert not [r for r in caplog.records if "delivery failed" in r.message]
    quarantine_logs = [r for r in caplog.records if "quarantine" in r.message]
    assert 1 <= len(quarantine_logs) <= 10  # once per claim that met garbage, not per retry


def _pages_with(path: Path, marker: bytes) -> list[int]:
    with sqlite3.connect(path) as db:
        page_size = db.execute("PRAGMA page_size").fetchone()[0]
        roots = {row[0] for row in db.execute("SELECT rootpage FROM sqlite_master")}
    data = path.read_bytes()
    pages = range(2, len(data) // page_size + 1)  # 1-based; page 1 is the header
    return [
        page
        for page in pages
        if page not in roots and marker in data[(page - 1) * page_size : page * page_size]
    ]


def _still_on_disk(path: Path, payloads: dict[str, str]) -> set[str]:
    data = path.read_bytes()
    return {event_id for event_id, text in payloads.items() if text.encode() in data}


def test_overwritten_pages_set_the_file_aside_and_the_readable_rows_are_delivered(
    live_server, project, make_tracker, kit, tmp_path, caplog
):
    """Regression: a page of random bytes made every claim raise "database disk image
    is malformed": a traceback a second, and nothing delivered, for good."""
    path = tmp_path / "outbox.db"
    payloads = spooled(project, path, 300, "pages")
    with sqlite3.connect(path) as db:
        page_size = db.execute("PRAGMA page_size").fetchone()[0]
    rng = random.Random(7)
    victims = rng.sample(_pages_with(path, PADDING.encode()), 3)
    with path.open("r+b") as file:
        for page in victims:
            file.seek((page - 1) * page_size)
            file.write(rng.randbytes(page_size))
    readable = _still_on_disk(path, payloads)
    assert 0 < len(readable) < len(payloads)
    with caplog.at_level(logging.WARNING, logger="agentmeter"):
        tracker = deliver_from(make_tracker, kit, project, live_server, path)
    assert sorted(delivered_ids(project)) == sorted(readable)
    assert tracker.stats().duplicates == 0
    assert tracker.outbox.pending() == 0
    assert len(damage_logs(caplog)) == 1
    assert not [r for r in caplog.records if "delivery failed" in r.message]
    aside = list(tmp_path.glob("outbox.db.corrupt-*"))
    assert [p.name for p in aside if not p.name.endswith(("-wal", "-shm"))], aside
    later = tracker.track_instant_pay("0.25", user_id="after")  # the fresh outbox works
    assert tracker.flush(timeout=30)
    assert later in delivered_ids(project)


@pytest.mark.parametrize("keep", [0.5, 40])
def test_a_truncated_file_is_set_aside_and_a_fresh_outbox_used(
    live_server, project, make_tracker, kit, tmp_path, caplog, keep
):
    """Regression: a truncated file made the tracker warn and go on without an
    outbox for the rest of its life (a full queue then blocks the app)."""
    path = tmp_path / "outbox.db"
    payloads = spooled(project, path, 200, f"cut{int(keep)}")
    size = path.stat().st_size
    with path.open("r+b") as file:
        file.truncate(int(size * keep) if keep < 1 else int(keep))
    readable = _still_on_disk(path, payloads)
    with caplog.at_level(logging.WARNING, logger="agentmeter"):
        tracker = deliver_from(make_tracker, kit, project, live_server, path)
    assert tracker.outbox is not None
    assert sorted(delivered_ids(project)) == sorted(readable)
    assert len(damage_logs(caplog)) == 1
    assert list(tmp_path.glob("outbox.db.corrupt-*"))
    assert tracker.outbox.pending() == 0
    tracker.track_instant_pay("0.25", user_id="after", event_id=f"after-{int(keep)}")
    tracker.close(timeout=5)
    assert f"after-{int(keep)}" in delivered_ids(project)


def test_a_tracker_refuses_a_ledger_as_its_outbox(live_server, project, kit, tmp_path):
    """Another database named as the outbox is a configuration error, never repaired
    (renamed aside) and never written to."""
    ledger = tmp_path / "ledger.db"
    with sqlite3.connect(ledger) as db:
        db.execute("CREATE TABLE events (id TEXT PRIMARY KEY)")
    before = ledger.read_bytes()
    client = kit.fault_client(project, live_server.url)
    with pytest.raises(AgentMeterConfigurationError, match="not an outbox"):
        AgentMeterTracker(client, outbox=ledger)
    client.close()
    assert ledger.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ledger.db"]


def test_a_long_used_outbox_with_a_damaged_first_page_still_salvages_its_rows(project, tmp_path):
    """Regression: the salvage stepped one key at a time from seq 1 and gave up
    after 100,000 unreadable keys, so an outbox whose live rows start past that
    (any outbox used for a while) with its first leaf damaged salvaged nothing."""
    path = tmp_path / "outbox.db"
    box = Outbox(path)
    assert box.pending() == 0  # creates the file
    box.close()
    with contextlib.closing(sqlite3.connect(path)) as db, db:  # 300,000 events delivered
        db.execute(
            "INSERT INTO outbox (seq, id, payload, created_at) VALUES (300000, 'acked', '{}', 0)"
        )
        db.execute("DELETE FROM outbox")
    events = []
    for n in range(200):
        event = instant_event(project.id, "spool", "carol", "0.25", metadata={"pad": PADDING})
        event["id"] = f"old-{n:04d}"
        events.append(finalize(event))
    box = Outbox(path)
    assert box.put(events) == 200
    box.close()
    with contextlib.closing(sqlite3.connect(path)) as db:
        payloads = dict(db.execute("SELECT id, payload FROM outbox").fetchall())
        page_size = db.execute("PRAGMA page_size").fetchone()[0]
        assert db.execute("SELECT MIN(seq) FROM outbox").fetchone()[0] == 300001
    first_leaf = _pages_with(path, payloads["old-0000"].encode())
    with path.open("r+b") as file:
        for page in first_leaf:
            file.seek((page - 1) * page_size)
            file.write(b"\xa5" * page_size)
    readable = _still_on_disk(path, payloads)
    assert 100 < len(readable) < len(payloads)
    aside, rows = _outbox_damage.set_aside(path)
    assert aside.exists()
    assert not path.exists()
    assert sorted(row[0] for row in rows) == sorted(readable)
