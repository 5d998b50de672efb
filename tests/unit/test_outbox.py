"""The outbox: a SQLite spool shared by threads, trackers and processes."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

import pytest

from agentmeter import Outbox
from agentmeter.outbox import outbox_for


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
    import agentmeter.outbox as outbox_module

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
