"""The outbox: a durable spool of events not yet delivered, in a SQLite file.

Events land here when the server cannot take them (down, failing, or the
process is exiting), when the memory queue is full, and always with
``durable=True``. Any tracker that opens the same file replays them, so a
restart delivers what the last run could not. Rows are keyed by event id:
putting an event twice keeps one row, and the server deduplicates replays.

Several trackers and processes may share one file. A tracker *claims* rows
before sending them, so two never send the same rows at once; a claim ends
when the rows are acknowledged (deleted) or released, when it expires, or
when the claiming process is found dead.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import _json
from ._lifecycle import register_fork_reset

if TYPE_CHECKING:
    from .client import AgentMeterClient

logger = logging.getLogger("agentmeter")
DEFAULT_OUTBOX = Path.home() / ".agentmeter" / "outbox.db"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    payload TEXT NOT NULL,
    created_at REAL NOT NULL,
    claimed_by TEXT,
    claimed_until REAL
);
CREATE INDEX IF NOT EXISTS outbox_claims ON outbox (claimed_by);
"""


def _alive(claimant: str) -> bool:
    pid_text = claimant.split(":", 1)[0]
    if not pid_text.isdigit():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def outbox_for(client: AgentMeterClient) -> Outbox:
    """The default outbox of a client: one file per server and key, so a replay
    never sends one server's events to another."""
    scope = f"{client.transport.describe}\n{client.config.api_key_value or ''}"
    digest = hashlib.sha256(scope.encode("utf-8")).hexdigest()[:16]
    return Outbox(DEFAULT_OUTBOX.with_name(f"outbox-{digest}.db"))


class Outbox:
    """A SQLite spool, safe to share between threads, trackers and processes."""

    def __init__(self, path: str | Path = DEFAULT_OUTBOX, *, lease_seconds: float = 120.0) -> None:
        self.path = Path(path).expanduser()
        self.lease_seconds = lease_seconds
        self._lock = threading.Lock()
        self._connection: sqlite3.Connection | None = None
        self._claimant = ""
        self._group = _GroupCommit(self)
        self._new_claimant()
        register_fork_reset(self)

    def __repr__(self) -> str:
        return f"Outbox({str(self.path)!r})"

    def _new_claimant(self) -> None:
        self._claimant = f"{os.getpid()}:{uuid.uuid4().hex[:12]}"

    def _db(self) -> sqlite3.Connection:
        if self._connection is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(
                self.path, timeout=30, isolation_level=None, check_same_thread=False
            )
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=FULL")
            connection.executescript(_SCHEMA)
            self._connection = connection
        return self._connection

    # -------------------------------------------------------------- writes

    def put(self, events: Sequence[dict[str, Any]]) -> int:
        """Store finalized wire events (one transaction); return how many were new."""
        if not events:
            return 0
        now = time.time()
        rows = [(event["id"], _json.dumps(event), now) for event in events]
        with self._lock:
            db = self._db()
            before = db.total_changes
            db.execute("BEGIN IMMEDIATE")
            try:
                db.executemany(
                    "INSERT OR IGNORE INTO outbox (id, payload, created_at) VALUES (?, ?, ?)", rows
                )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            return db.total_changes - before

    def put_durable(self, event: dict[str, Any]) -> None:
        """Store one event and return only once it is on disk (commits are grouped)."""
        self._group.write(event)

    def claim(self, limit: int) -> list[dict[str, Any]]:
        """Take up to ``limit`` of the oldest rows nobody else is sending."""
        now = time.time()
        with self._lock:
            db = self._db()
            self._release_dead(db)
            db.execute("BEGIN IMMEDIATE")
            try:
                rows = db.execute(
                    "SELECT seq, payload FROM outbox WHERE claimed_by IS NULL OR claimed_until < ?"
                    " ORDER BY seq LIMIT ?",
                    (now, limit),
                ).fetchall()
                db.executemany(
                    "UPDATE outbox SET claimed_by = ?, claimed_until = ? WHERE seq = ?",
                    [(self._claimant, now + self.lease_seconds, seq) for seq, _ in rows],
                )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return [_json.loads(payload) for _, payload in rows]

    def ack(self, ids: Sequence[str]) -> None:
        """Forget delivered (or finally rejected) events."""
        self._by_ids("DELETE FROM outbox WHERE id = ?", ids)

    def release(self, ids: Sequence[str]) -> None:
        """Give claimed rows back, to be sent later."""
        self._by_ids("UPDATE outbox SET claimed_by = NULL, claimed_until = NULL WHERE id = ?", ids)

    def _by_ids(self, statement: str, ids: Sequence[str]) -> None:
        if not ids:
            return
        with self._lock:
            db = self._db()
            db.execute("BEGIN IMMEDIATE")
            try:
                db.executemany(statement, [(event_id,) for event_id in ids])
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

    def _release_dead(self, db: sqlite3.Connection) -> None:
        claimants = [
            row[0]
            for row in db.execute(
                "SELECT DISTINCT claimed_by FROM outbox WHERE claimed_by IS NOT NULL"
            )
        ]
        for claimant in claimants:
            if claimant != self._claimant and not _alive(claimant):
                db.execute(
                    "UPDATE outbox SET claimed_by = NULL, claimed_until = NULL"
                    " WHERE claimed_by = ?",
                    (claimant,),
                )

    # --------------------------------------------------------------- reads

    def pending(self) -> int:
        """Events waiting here, claimed or not."""
        with self._lock:
            return int(self._db().execute("SELECT COUNT(*) FROM outbox").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

    # SQLite must not be carried across fork(): with the lock held, no thread
    # is inside SQLite for this file, and the connection is closed, so the
    # child (and the parent, after) open fresh ones.
    def before_fork(self) -> None:
        self._lock.acquire()
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def after_fork_in_parent(self) -> None:
        self._lock.release()

    def after_fork_in_child(self) -> None:
        """A child claims as a new process, with its own lock and connection."""
        self._lock = threading.Lock()
        self._connection = None
        self._group = _GroupCommit(self)
        self._new_claimant()


class _Group:
    __slots__ = ("done", "error", "events")

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.done = False
        self.error: BaseException | None = None


class _GroupCommit:
    """Leader/follower group commit: concurrent durable writes share one fsync.

    Writers join the open group; one of them (the leader) commits the whole
    group while the next group fills up; everyone returns when their group
    is on disk (or raises the group's error).
    """

    def __init__(self, outbox: Outbox) -> None:
        self._outbox = outbox
        self._condition = threading.Condition()
        self._open = _Group()
        self._committing = False

    def write(self, event: dict[str, Any]) -> None:
        with self._condition:
            group = self._open
            group.events.append(event)
            while not group.done:
                if self._committing:
                    self._condition.wait()
                else:
                    self._lead(group)
        if group.error is not None:
            raise group.error

    def _lead(self, group: _Group) -> None:
        # Called with the condition held; writes with it released.
        self._open, self._committing = _Group(), True
        self._condition.release()
        try:
            self._outbox.put(group.events)
        except BaseException as exc:  # every writer of the group learns of it
            group.error = exc
        finally:
            self._condition.acquire()
            self._committing = False
            group.done = True
            self._condition.notify_all()
