"""Several outboxes on one damaged file: one repair, and no row written to the old file.

Each ``Outbox`` here has its own connection, as two processes would; the
repair lock is a ``flock`` on a file next to the outbox, which holds between
two open files of one process as it does between processes.
"""

from __future__ import annotations

import random
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from agentmeter import Outbox
from agentmeter.delivery import outbox_damage as _outbox_damage

PAD = "p" * 300  # a few rows per page


def rows(prefix: str, count: int) -> list[dict]:
    return [{"id": f"{prefix}{n:03d}", "pad": PAD} for n in range(count)]


@pytest.fixture
def damaged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An outbox of 200 rows with a page in the middle of its table overwritten,
    which only a read of that page finds (the open-time check is off)."""
    path = tmp_path / "outbox.db"
    box = Outbox(path)
    box.put(rows("old", 200))
    box.close()
    with sqlite3.connect(path) as db:
        page_size = db.execute("PRAGMA page_size").fetchone()[0]
    with path.open("r+b") as file:
        file.seek(20 * page_size)
        file.write(random.Random(5).randbytes(page_size))
    monkeypatch.setattr(_outbox_damage, "check_readable", lambda connection: None)
    return path


def claim_all(box: Outbox) -> list[str]:
    claimed = []
    while batch := box.claim(50):
        claimed += [row["id"] for row in batch]
    return claimed


def aside_files(folder: Path) -> list[str]:
    return sorted(
        p.name for p in folder.glob("outbox.db.corrupt-*") if not p.name.endswith(("-wal", "-shm"))
    )


def test_an_outbox_still_open_on_the_old_file_writes_to_the_new_one(damaged):
    """Regression: after one outbox set the damaged file aside, another one that was
    still connected to it went on writing there: its rows were lost in the aside file."""
    repairer, writer = Outbox(damaged), Outbox(damaged)
    writer.put(rows("before", 1))  # connected to the damaged file
    claimed = claim_all(repairer)  # meets the damage: sets the file aside
    assert len(aside_files(damaged.parent)) == 1

    writer.put(rows("after", 3))

    claimed += claim_all(repairer)
    assert {"after000", "after001", "after002"} <= set(claimed)
    assert len(claimed) == len(set(claimed))
    for box in (repairer, writer):
        box.close()


def test_two_outboxes_meeting_the_damage_at_once_repair_it_once(damaged, monkeypatch):
    """Regression: both renamed "the" damaged file aside; the second renamed the
    first one's fresh file (with the rows it had salvaged) aside too."""
    set_aside = _outbox_damage.set_aside

    def slow_set_aside(path: Path):
        time.sleep(0.3)  # both have found the damage before either renames
        return set_aside(path)

    monkeypatch.setattr(_outbox_damage, "set_aside", slow_set_aside)
    boxes = [Outbox(damaged), Outbox(damaged)]
    for box in boxes:
        box.put(rows(f"live{id(box) % 1000}-", 1))  # both connected
    start = threading.Barrier(2)
    claimed: list[list[str]] = [[], []]

    def claim(index: int) -> None:
        start.wait()
        claimed[index] = claim_all(boxes[index])

    threads = [threading.Thread(target=claim, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    everything = claimed[0] + claimed[1]
    assert aside_files(damaged.parent) != []
    assert len(aside_files(damaged.parent)) == 1
    assert len(everything) == len(set(everything))
    assert 100 < len(everything) < 202
    assert boxes[0].pending() == len(everything)  # one file: all of them, claimed once
    for box in boxes:
        box.close()
