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

Damage stays local (see :mod:`agentmeter.delivery.outbox_damage`): an event that
cannot be encoded, or a row that cannot be read back, moves to the
``quarantine`` table instead of holding up the events stored with it, and
a file SQLite reports as damaged is renamed aside (its readable rows copied
to a fresh file) instead of stopping every replay.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from ..core import jsonio as _json
from ..core.lifecycle import register_fork_reset
from . import outbox_damage as damage
from .group_commit import GroupCommit
from .outbox_damage import Problem, QuarantinedRow, encoding_problem
from .outbox_file import NotAnOutboxError, OutboxFile, transaction

if TYPE_CHECKING:
    from .sender import TrackerClient

logger = logging.getLogger("agentmeter")
DEFAULT_OUTBOX = Path.home() / ".agentmeter" / "outbox.db"
T = TypeVar("T")
__all__ = ["DEFAULT_OUTBOX", "NotAnOutboxError", "Outbox", "QuarantinedRow", "outbox_for"]

# The claimant of rows held back until their claim ends (see ``defer``).
DEFERRED = "deferred"


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


def outbox_for(client: TrackerClient) -> Outbox:
    """The default outbox of a client: one file per server and key, so a replay
    never sends one server's events to another."""
    scope = f"{client.transport.describe}\n{client.config.api_key_value or ''}"
    digest = hashlib.sha256(scope.encode("utf-8")).hexdigest()[:16]
    return Outbox(DEFAULT_OUTBOX.with_name(f"outbox-{digest}.db"))


class Outbox:
    """A SQLite spool, safe to share between threads, trackers and processes.

    ``repair`` (the default) renames a damaged file aside and goes on with a
    fresh one; without it (the CLI's reading commands) damage is raised.
    ``read_only`` opens an existing file without creating or changing its schema.
    """

    def __init__(
        self,
        path: str | Path = DEFAULT_OUTBOX,
        *,
        lease_seconds: float = 120.0,
        repair: bool = True,
        read_only: bool = False,
    ) -> None:
        self.path = Path(path).expanduser()
        self.lease_seconds = lease_seconds
        self._file = OutboxFile(self.path, repair=repair, read_only=read_only)
        self._lock = threading.Lock()  # one thread at a time in the file
        self._claimant = ""
        self._group = GroupCommit(lambda events: self.put(events))
        self._new_claimant()
        register_fork_reset(self)

    def __repr__(self) -> str:
        return f"Outbox({str(self.path)!r})"

    def _new_claimant(self) -> None:
        self._claimant = f"{os.getpid()}:{uuid.uuid4().hex[:12]}"

    @property
    def repair(self) -> bool:
        return self._file.repair

    @property
    def read_only(self) -> bool:
        return self._file.read_only

    def _run(self, operation: Callable[[sqlite3.Connection], T]) -> T:
        return self._file.run(operation)

    # -------------------------------------------------------------- writes

    def put(self, events: Sequence[dict[str, Any]]) -> int:
        """Store finalized wire events (one transaction); return how many were new.

        Events that cannot be encoded are quarantined (and logged), not stored
        with the rest; they never stop the others."""
        if not events:
            return 0
        now = time.time()
        try:
            rows = [(event["id"], _json.dumps(event), now) for event in events]
            with self._lock:
                return self._run(lambda db: transaction(db, lambda db: _insert(db, rows)))
        except sqlite3.OperationalError:
            raise  # busy, full, or I/O: not the events' fault
        except Exception as exc:
            return self._put_separately(events, now, exc)

    def _put_separately(
        self, events: Sequence[dict[str, Any]], now: float, error: Exception
    ) -> int:
        rows, bad = [], []
        for event in events:
            problem = encoding_problem(event)
            if problem is None:
                rows.append((event["id"], _json.dumps(event), now))
            else:
                bad.append((event, problem))
        if not bad:
            raise error

        def store(db: sqlite3.Connection) -> tuple[int, list[Problem]]:
            return _insert(db, rows), damage.quarantine_events(db, bad, now, in_outbox=False)

        with self._lock:
            added, filed = self._run(lambda db: transaction(db, store))
        self._log_quarantined(filed)
        return added

    def put_durable(self, event: dict[str, Any]) -> None:
        """Store one event and return only once it is on disk (commits are grouped)."""
        self._group.write(event)

    def defer(self, events: Sequence[tuple[dict[str, Any], float]]) -> None:
        """Hold events (stored or not) out of every claim until their time (epoch seconds)."""
        if not events:
            return
        now = time.time()
        rows = [(e["id"], _json.dumps(e), now, DEFERRED, until) for e, until in events]
        statement = (
            "INSERT INTO outbox (id, payload, created_at, claimed_by, claimed_until)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE"
            " SET claimed_by = excluded.claimed_by, claimed_until = excluded.claimed_until"
        )
        with self._lock:
            self._run(lambda db: transaction(db, lambda db: db.executemany(statement, rows)))

    def quarantine(self, problems: Sequence[Problem]) -> int:
        """Move events that cannot be delivered out of the way, each with why;
        return how many were not quarantined already."""
        if not problems:
            return 0
        now = time.time()
        with self._lock:
            filed = self._run(
                lambda db: transaction(
                    db, lambda db: damage.quarantine_events(db, problems, now, in_outbox=True)
                )
            )
        self._log_quarantined(filed)
        return len(filed)

    def claim(self, limit: int) -> list[dict[str, Any]]:
        """Take up to ``limit`` of the oldest rows nobody else is sending.

        Rows that cannot be read back as events are moved to the quarantine."""
        with self._lock:
            claimed, bad = self._run(lambda db: self._claim(db, limit))
        self._log_quarantined(bad)
        return claimed

    def _claim(
        self, db: sqlite3.Connection, limit: int
    ) -> tuple[list[dict[str, Any]], list[Problem]]:
        now = time.time()
        self._release_dead(db)

        def take(db: sqlite3.Connection) -> tuple[list[dict[str, Any]], list[Problem]]:
            claimed: list[dict[str, Any]] = []
            bad: list[Problem] = []
            while len(claimed) < limit:
                rows = db.execute(
                    "SELECT seq, CAST(id AS BLOB), CAST(payload AS BLOB) FROM outbox"
                    " WHERE claimed_by IS NULL OR claimed_until < ? ORDER BY seq LIMIT ?",
                    (now, limit - len(claimed)),
                ).fetchall()
                good, garbage = damage.sorted_rows(rows)
                db.executemany(
                    "UPDATE outbox SET claimed_by = ?, claimed_until = ? WHERE seq = ?",
                    [(self._claimant, now + self.lease_seconds, seq) for seq, _ in good],
                )
                claimed.extend(event for _, event in good)
                if not garbage:
                    break
                bad.extend(damage.quarantine_rows(db, garbage, now))
            return claimed, bad

        return transaction(db, take)

    def ack(self, ids: Sequence[str]) -> None:
        """Forget delivered (or finally rejected) events."""
        self._by_ids("DELETE FROM outbox WHERE id = ?", ids)

    def release(self, ids: Sequence[str]) -> None:
        """Give claimed rows back, to be sent later."""
        self._by_ids("UPDATE outbox SET claimed_by = NULL, claimed_until = NULL WHERE id = ?", ids)

    def _by_ids(self, statement: str, ids: Sequence[str]) -> None:
        if not ids:
            return
        parameters = [(event_id,) for event_id in ids]
        with self._lock:
            self._run(lambda db: transaction(db, lambda db: db.executemany(statement, parameters)))

    def _release_dead(self, db: sqlite3.Connection) -> None:
        claimants = [
            row[0]
            for row in db.execute(
                "SELECT DISTINCT claimed_by FROM outbox WHERE claimed_by IS NOT NULL"
            )
        ]
        for claimant in claimants:
            if claimant not in (self._claimant, DEFERRED) and not _alive(claimant):
                db.execute(
                    "UPDATE outbox SET claimed_by = NULL, claimed_until = NULL"
                    " WHERE claimed_by = ?",
                    (claimant,),
                )

    def _log_quarantined(self, filed: Sequence[Problem]) -> None:
        if filed:
            first_id, first_reason = filed[0]
            logger.error(
                "agentmeter: %d events cannot be delivered and were moved to the quarantine "
                "of %s (see `agentmeter outbox list`); first %s: %s",
                len(filed),
                self.path,
                first_id,
                first_reason,
            )

    # --------------------------------------------------------------- reads

    def pending(self) -> int:
        """Events waiting here, claimed or not (quarantined ones are not waiting)."""
        with self._lock:
            return self._run(
                lambda db: int(db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])
            )

    def quarantined_count(self) -> int:
        """Events in the quarantine."""
        with self._lock:
            return self._run(damage.count_quarantined)

    def quarantined(self, limit: int | None = None) -> list[QuarantinedRow]:
        """The quarantined events, oldest first."""
        with self._lock:
            return self._run(lambda db: damage.list_quarantined(db, limit))

    # ---------------------------------------------------- quarantine upkeep

    def requeue(self, ids: Sequence[str] | None = None) -> int:
        """Move quarantined events (all, or these) back to be sent; return how many.
        One that still cannot be read comes back to the quarantine on its next claim."""
        now = time.time()
        with self._lock:
            return self._run(lambda db: transaction(db, lambda db: damage.requeue(db, ids, now)))

    def drop(self, ids: Sequence[str] | None = None) -> int:
        """Delete quarantined events (all, or these) for good; return how many."""
        with self._lock:
            return self._run(lambda db: transaction(db, lambda db: damage.drop(db, ids)))

    def close(self) -> None:
        with self._lock:
            self._file.close()

    # SQLite must not be carried across fork(): with the lock held, no thread
    # is inside SQLite for this file, and the connection is closed, so the
    # child (and the parent, after) open fresh ones.
    def before_fork(self) -> None:
        self._lock.acquire()
        self._file.close()

    def after_fork_in_parent(self) -> None:
        self._lock.release()

    def after_fork_in_child(self) -> None:
        """A child claims as a new process, with its own lock and connection."""
        self._lock = threading.Lock()
        self._file.forget_after_fork()
        self._group = GroupCommit(lambda events: self.put(events))
        self._new_claimant()


# ------------------------------------------------------------- statements


def _insert(db: sqlite3.Connection, rows: Sequence[tuple[Any, str, float]]) -> int:
    before = db.total_changes
    db.executemany("INSERT OR IGNORE INTO outbox (id, payload, created_at) VALUES (?, ?, ?)", rows)
    return db.total_changes - before
