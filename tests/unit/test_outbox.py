"""The outbox: a SQLite spool shared by threads, trackers and processes."""

from __future__ import annotations

import logging
import random
import sqlite3
import subprocess
import sys
import threading
import time
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

import pytest

from agentmeter import Outbox
from agentmeter.delivery.outbox import outbox_for
from agentmeter.errors import AgentMeterConfigurationError


def event(n: int) -> dict:
    return {"id": f"ev-{n:04d}", "amount": Decimal("0.10"), "n": n}


@pytest.fixture
def outbox(tmp_path: Path):
    box = Outbox(tmp_path / "spool" / "outbox.db")  # the folder is made on first use
    yield box
    box.close()


def test_put_claim_ack_release(outbox):
    assert outbox.put([event(n) for n in range(5)]) == 5
    assert outbox.pending() == 5
    first = outbox.claim(3)
    assert [row["id"] for row in first] == ["ev-0000", "ev-0001", "ev-0002"]  # oldest first
    assert first[0]["amount"] == "0.10"  # exact decimal text, never a float
    rest = outbox.claim(10)
    assert [row["id"] for row in rest] == ["ev-0003", "ev-0004"]
    assert outbox.claim(10) == []  # everything is claimed: nothing is handed out twice
    outbox.ack(["ev-0000", "ev-0001"])
    outbox.release(["ev-0002"])
    assert outbox.pending() == 3  # claimed rows still count as pending
    assert [row["id"] for row in outbox.claim(10)] == ["ev-0002"]
    outbox.ack(["ev-0002", "ev-0003", "ev-0004"])
    assert outbox.pending() == 0
    outbox.ack([])
    outbox.release([])
    assert outbox.put([]) == 0


def test_ids_are_deduplicated(outbox):
    assert outbox.put([event(1), event(2)]) == 2
    assert outbox.put([event(2), event(3)]) == 1
    assert outbox.put([event(1)]) == 0
    assert outbox.pending() == 3


def test_rows_survive_reopening(outbox, tmp_path):
    outbox.put([event(7)])
    outbox.close()
    again = Outbox(tmp_path / "spool" / "outbox.db")
    assert again.claim(5) == [{"id": "ev-0007", "amount": "0.10", "n": 7}]
    again.close()


def test_two_outboxes_on_one_file_never_claim_the_same_rows(tmp_path):
    path = tmp_path / "shared.db"
    writers = [Outbox(path) for _ in range(4)]
    writers[0].put([event(n) for n in range(400)])
    claimed: list[list[str]] = [[] for _ in writers]

    def drain(index: int) -> None:
        while rows := writers[index].claim(7):
            claimed[index].extend(row["id"] for row in rows)

    threads = [threading.Thread(target=drain, args=(i,)) for i in range(len(writers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    everything = [event_id for ids in claimed for event_id in ids]
    assert len(everything) == 400
    assert len(set(everything)) == 400  # no row went to two claimants
    for box in writers:
        box.close()


def test_an_expired_claim_can_be_taken_again(tmp_path):
    path = tmp_path / "lease.db"
    slow = Outbox(path, lease_seconds=0.05)
    other = Outbox(path)
    slow.put([event(1)])
    assert len(slow.claim(5)) == 1
    assert other.claim(5) == []  # same live process, lease running
    time.sleep(0.1)
    assert [row["id"] for row in other.claim(5)] == ["ev-0001"]
    slow.close()
    other.close()


CHILD = """
import os, signal, sys
from agentmeter import Outbox
box = Outbox(sys.argv[1])
rows = box.claim(int(sys.argv[2]))
print(len(rows), flush=True)
if sys.argv[3] == "die":
    os.kill(os.getpid(), signal.SIGKILL)
sys.stdin.readline()  # hold the claim until told to go
"""


def run_child(path: Path, count: int, how: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path), str(count), how],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


def test_claims_of_a_dead_process_are_released(outbox):
    outbox.put([event(n) for n in range(5)])
    child = run_child(outbox.path, 3, "die")
    assert child.stdout.readline().strip() == "3"
    child.wait(30)  # reaped: the pid is gone
    assert [row["id"] for row in outbox.claim(10)] == [event(n)["id"] for n in range(5)]


def test_claims_of_a_live_process_are_respected(outbox):
    outbox.put([event(n) for n in range(5)])
    child = run_child(outbox.path, 3, "hold")
    try:
        assert child.stdout.readline().strip() == "3"
        assert [row["id"] for row in outbox.claim(10)] == ["ev-0003", "ev-0004"]
    finally:
        child.communicate("go\n", timeout=30)
    outbox.release(["ev-0003", "ev-0004"])
    assert len(outbox.claim(10)) == 5  # the child has exited: its claim is void


def test_durable_writes_from_many_threads_share_commits(outbox, monkeypatch):
    commits: list[int] = []
    real_put = outbox.put

    def counted_put(events):
        commits.append(len(events))
        time.sleep(0.002)  # a disk that is not instant, so writers overlap
        return real_put(events)

    monkeypatch.setattr(outbox, "put", counted_put)
    threads, per_thread = 16, 25
    failures: list[BaseException] = []

    def write(worker: int) -> None:
        try:
            for n in range(per_thread):
                outbox.put_durable(event(worker * 1000 + n))
                # Returned: the event is in the file, for any other reader.
        except BaseException as exc:
            failures.append(exc)

    workers = [threading.Thread(target=write, args=(w,)) for w in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert not failures
    total = threads * per_thread
    assert sum(commits) == total
    assert len(commits) < total  # grouped: fewer commits than writes
    reader = Outbox(outbox.path)
    assert reader.pending() == total
    ids = {row["id"] for row in reader.claim(total)}
    assert ids == {event(w * 1000 + n)["id"] for w in range(threads) for n in range(per_thread)}
    reader.close()


def test_a_failed_group_commit_raises_in_every_writer_of_the_group(outbox, monkeypatch):
    started, go = threading.Event(), threading.Event()

    def failing_put(events):
        started.set()
        go.wait(10)
        raise OSError("disk full")

    monkeypatch.setattr(outbox, "put", failing_put)
    errors: list[BaseException] = []

    def write(n: int) -> None:
        try:
            outbox.put_durable(event(n))
        except OSError as exc:
            errors.append(exc)

    leader = threading.Thread(target=write, args=(0,))
    leader.start()
    assert started.wait(10)
    followers = [threading.Thread(target=write, args=(n,)) for n in range(1, 4)]
    for follower in followers:
        follower.start()
    time.sleep(0.05)  # let them join the next group
    go.set()
    for thread in [leader, *followers]:
        thread.join(10)
    assert len(errors) == 4


def test_default_outbox_is_one_file_per_server_and_key(monkeypatch, tmp_path):
    import agentmeter.delivery.outbox as outbox_module

    monkeypatch.setattr(outbox_module, "DEFAULT_OUTBOX", tmp_path / ".agentmeter" / "outbox.db")

    def client(url: str, key: str | None) -> SimpleNamespace:
        config = SimpleNamespace(api_key_value=key)
        return SimpleNamespace(transport=SimpleNamespace(describe=url), config=config)

    a = outbox_for(client("http://a", "key-1"))
    assert a.path.parent == tmp_path / ".agentmeter"
    assert outbox_for(client("http://a", "key-1")).path == a.path
    assert outbox_for(client("http://a", "key-2")).path != a.path
    assert outbox_for(client("http://b", "key-1")).path != a.path
    assert "key-1" not in str(a.path)
    assert "key-1" not in repr(a)


# ------------------------------------------------- damage stays local (issue 11)


class Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no text")

    __repr__ = __str__


@pytest.mark.parametrize(
    "bad",
    [
        {"id": "bad", "x": float("inf")},
        {"id": "bad", "x": float("nan")},
        {"id": "bad", "model": "\ud800"},
        {"id": "bad", "\udfff": 1},
        {"id": "bad", "who": Unprintable()},
        {"id": "bad\ud800"},
        {"x": 1},
    ],
    ids=["inf", "nan", "surrogate", "surrogate-key", "unprintable", "bad-id", "no-id"],
)
def test_an_unencodable_event_is_quarantined_not_stored_with_the_rest(outbox, bad, caplog):
    """Regression: one such event made put() raise (ValueError, UnicodeEncodeError, ...)
    and stored none of the events with it."""
    with caplog.at_level(logging.ERROR, logger="agentmeter"):
        assert outbox.put([event(1), bad, event(2)]) == 2
    assert [row["id"] for row in outbox.claim(10)] == ["ev-0001", "ev-0002"]
    assert outbox.quarantined_count() == 1
    (row,) = outbox.quarantined()
    assert row.reason
    assert row.payload  # its best-effort text, for inspection
    assert len([r for r in caplog.records if "quarantine" in r.getMessage()]) == 1


def test_a_bad_durable_event_fails_no_writer_of_its_group(outbox):
    """Regression: grouped commits made every writer of the group raise."""
    failures: list[BaseException] = []

    def write(worker: int) -> None:
        try:
            for n in range(25):
                bad = worker == 0 and n % 5 == 0
                outbox.put_durable({"id": f"w{worker}-{n}", "x": float("inf") if bad else 1})
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not failures
    assert outbox.pending() == 8 * 25 - 5
    assert outbox.quarantined_count() == 5


def test_claimed_rows_are_not_stranded_by_garbage_next_to_them(outbox):
    """Regression: claim() raised after claiming its batch, so the intact rows of
    the batch sat out their lease, and a flush() saw nothing left to send."""
    outbox.put([event(n) for n in range(6)])
    with sqlite3.connect(outbox.path) as db:
        db.execute("UPDATE outbox SET payload = 'garbage' WHERE id IN ('ev-0001', 'ev-0002')")
    assert [row["id"] for row in outbox.claim(3)] == ["ev-0000", "ev-0003", "ev-0004"]
    assert [row["id"] for row in outbox.claim(10)] == ["ev-0005"]
    assert outbox.pending() == 4
    assert outbox.quarantined_count() == 2
    assert outbox.requeue(["ev-0001"]) == 1  # back it goes, and out again on its next claim
    assert outbox.claim(10) == []
    assert outbox.quarantined_count() == 2
    assert outbox.drop() == 2
    assert outbox.quarantined_count() == 0


def test_a_bad_copy_never_deletes_the_intact_row_with_its_id(outbox):
    """Regression: quarantining an unencodable event deleted any outbox row with
    its id, so a bad retry of a stored event lost the stored one."""
    assert outbox.put([event(1)]) == 1
    assert outbox.put([{"id": "ev-0001", "x": float("nan")}]) == 0
    assert outbox.quarantined_count() == 1
    assert [row["id"] for row in outbox.claim(10)] == ["ev-0001"]


def test_garbage_under_an_id_already_quarantined_is_kept_too(outbox):
    """Regression: a second unreadable row with a quarantined id was ignored by
    the quarantine's insert and then deleted from the outbox: lost for good."""
    outbox.put([event(1)])
    with sqlite3.connect(outbox.path) as db:
        db.execute("UPDATE outbox SET payload = 'first garbage' WHERE id = 'ev-0001'")
    assert outbox.claim(10) == []
    outbox.put([event(1)])
    with sqlite3.connect(outbox.path) as db:
        db.execute("UPDATE outbox SET payload = 'second garbage' WHERE id = 'ev-0001'")
    assert outbox.claim(10) == []
    kept = {row.id: row.payload for row in outbox.quarantined()}
    assert kept == {"ev-0001": b"first garbage", "ev-0001#2": b"second garbage"}


def test_requeue_keeps_an_event_whose_id_the_outbox_holds(outbox):
    """Regression: requeue deleted every chosen quarantine row, moved or not."""
    outbox.put([event(1)])
    with sqlite3.connect(outbox.path) as db:
        db.execute("UPDATE outbox SET payload = 'garbage' WHERE id = 'ev-0001'")
    assert outbox.claim(10) == []
    outbox.put([event(1)])  # an intact copy arrives meanwhile
    assert outbox.requeue() == 0
    assert [row.payload for row in outbox.quarantined()] == [b"garbage"]
    assert outbox.pending() == 1


def test_damage_found_while_running_sets_the_file_aside(tmp_path, monkeypatch, caplog):
    """Damage the open-time check did not see: the claim that meets it repairs."""
    path = tmp_path / "outbox.db"
    box = Outbox(path)
    box.put([{"id": f"e{n:03d}", "pad": "p" * 300} for n in range(200)])
    box.close()
    with sqlite3.connect(path) as db:
        page_size = db.execute("PRAGMA page_size").fetchone()[0]
    with path.open("r+b") as file:  # a page in the middle of the table
        file.seek(20 * page_size)
        file.write(random.Random(3).randbytes(page_size))
    from agentmeter.delivery import outbox_damage as _outbox_damage

    monkeypatch.setattr(_outbox_damage, "check_readable", lambda connection: None)
    with caplog.at_level(logging.WARNING, logger="agentmeter"):
        claimed = []
        while rows := box.claim(50):
            claimed += [row["id"] for row in rows]
    assert 100 < len(claimed) < 200
    assert len(set(claimed)) == len(claimed)  # rows claimed before the repair stay claimed
    assert len([r for r in caplog.records if "damaged" in r.getMessage()]) == 1
    assert list(tmp_path.glob("outbox.db.corrupt-*"))
    box.close()


def test_a_file_that_is_not_an_outbox_is_refused_and_left_untouched(tmp_path):
    """A ledger (or any other database) named as the outbox is an error, not a repair."""
    path = tmp_path / "ledger.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE events (id TEXT PRIMARY KEY)")
    before = path.read_bytes()
    for box in (Outbox(path), Outbox(path, read_only=True)):
        with pytest.raises(AgentMeterConfigurationError, match="not an outbox"):
            box.pending()
        box.close()
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ledger.db"]


def test_read_only_creates_nothing(tmp_path):
    box = Outbox(tmp_path / "missing" / "outbox.db", read_only=True)
    with pytest.raises(sqlite3.OperationalError):
        box.pending()
    box.close()
    assert list(tmp_path.iterdir()) == []


def test_a_new_outbox_file_is_private(tmp_path):
    box = Outbox(tmp_path / "private" / "outbox.db")
    box.put([event(1)])
    assert box.path.stat().st_mode & 0o777 == 0o600
    assert box.path.parent.stat().st_mode & 0o777 == 0o700
    box.close()
