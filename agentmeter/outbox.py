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

Damage stays local (see :mod:`agentmeter._outbox_damage`): an event that
cannot be encoded, or a row that cannot be read back, moves to the
``quarantine`` table instead of holding up the events stored with it, and
a file SQLite reports as damaged is renamed aside (its readable rows copied
to a fresh file) instead of stopping every replay.
"""

from __future__ import annotations

import contextlib
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
from urllib.parse import quote

from . import _json
from . import _outbox_damage as damage
from ._group_commit import GroupCommit
from ._lifecycle import register_fork_reset
from ._outbox_damage import Problem, QuarantinedRow, encoding_problem, safe_text
from .errors import AgentMeterConfigurationError

if TYPE_CHECKING:
    from .client import AgentMeterClient

logger = logging.getLogger("agentmeter")
DEFAULT_OUTBOX = Path.home() / ".agentmeter" / "outbox.db"
T = TypeVar("T")
__all__ = ["DEFAULT_OUTBOX", "NotAnOutboxError", "Outbox", "QuarantinedRow", "outbox_for"]

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
CREATE TABLE IF NOT EXISTS quarantine (
    id TEXT PRIMARY KEY,
    payload BLOB NOT NULL,
    reason TEXT NOT NULL,
    quarantined_at REAL NOT NULL
);
"""


# The claimant of rows held back until their claim ends (see ``defer``).
DEFERRED = "deferred"


class NotAnOutboxError(AgentMeterConfigurationError):
    """The file is a SQLite database of something else (a ledger, say): left untouched."""


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
        self.repair = repair and not read_only
        self.read_only = read_only
        self._lock = threading.Lock()
        self._connection: sqlite3.Connection | None = None
        self._inode: int | None = None
        self._claimant = ""
        self._group = GroupCommit(lambda events: self.put(events))
        self._new_claimant()
        register_fork_reset(self)

    def __repr__(self) -> str:
        return f"Outbox({str(self.path)!r})"

    def _new_claimant(self) -> None:
        self._claimant = f"{os.getpid()}:{uuid.uuid4().hex[:12]}"

    # ------------------------------------------------------------ the file

    def _db(self) -> sqlite3.Connection:
        if self._connection is None:
            try:
                self._connection = self._connect()
            except sqlite3.DatabaseError as exc:
                if not (self.repair and damage.is_damage(exc)):
                    raise
                self._connection = self._replace_damaged(exc)
        return self._connection

    def _connect(self) -> sqlite3.Connection:
        if not self.read_only:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            _create_private(self.path)
        self._inode = damage.inode(
            self.path
        )  # the file this connection is to: see _replace_damaged
        # Read-only: open an existing file (mode=rw never creates one).
        target = f"file:{quote(str(self.path))}?mode=rw" if self.read_only else str(self.path)
        connection = sqlite3.connect(
            target, timeout=30, isolation_level=None, check_same_thread=False, uri=self.read_only
        )
        try:
            self._check_is_outbox(connection)
            if not self.read_only:
                connection.execute("PRAGMA journal_mode=WAL")
                connection.execute("PRAGMA synchronous=FULL")
                connection.executescript(_SCHEMA)
                damage.check_readable(connection)
        except BaseException:
            connection.close()
            raise
        return connection

    def _check_is_outbox(self, connection: sqlite3.Connection) -> None:
        listed = connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        tables = {row[0] for row in listed}
        if tables and "outbox" not in tables:
            raise NotAnOutboxError(
                f"{self.path} is not an outbox (it holds other tables: "
                f"{', '.join(sorted(tables)[:5])}); it was left untouched"
            )

    def _replace_damaged(self, exc: BaseException) -> sqlite3.Connection:
        """Rename the damaged file aside and open a fresh one with what could be read."""
        self._drop_connection()
        if damage.inode(self.path) not in (self._inode, None):
            return self._connect()  # another tracker or process has set it aside already
        aside, rows = damage.set_aside(self.path)
        connection = self._connect()
        _transaction(connection, lambda db: damage.restore(db, rows))
        logger.error(
            "agentmeter: the outbox %s is damaged (%s); it was renamed to %s and a fresh "
            "outbox opened with the %d events that could still be read",
            self.path,
            safe_text(str(exc), 200),
            aside.name,
            len(rows),
        )
        return connection

    def _drop_connection(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(sqlite3.Error):
                self._connection.close()
            self._connection = None

    def _run(self, operation: Callable[[sqlite3.Connection], T]) -> T:
        """``operation`` on the connection (lock held); once more on a fresh file
        if this one turns out damaged."""
        try:
            return operation(self._db())
        except sqlite3.DatabaseError as exc:
            if not (self.repair and damage.is_damage(exc)):
                raise
            self._connection = self._replace_damaged(exc)
            return operation(self._connection)

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
                return self._run(lambda db: _transaction(db, lambda db: _insert(db, rows)))
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
            added, filed = self._run(lambda db: _transaction(db, store))
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
            self._run(lambda db: _transaction(db, lambda db: db.executemany(statement, rows)))

    def quarantine(self, problems: Sequence[Problem]) -> int:
        """Move events that cannot be delivered out of the way, each with why;
        return how many were not quarantined already."""
        if not problems:
            return 0
        now = time.time()
        with self._lock:
            filed = self._run(
                lambda db: _transaction(
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

        return _transaction(db, take)

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
            self._run(lambda db: _transaction(db, lambda db: db.executemany(statement, parameters)))

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
            return self._run(lambda db: _transaction(db, lambda db: damage.requeue(db, ids, now)))

    def drop(self, ids: Sequence[str] | None = None) -> int:
        """Delete quarantined events (all, or these) for good; return how many."""
        with self._lock:
            return self._run(lambda db: _transaction(db, lambda db: damage.drop(db, ids)))

    def close(self) -> None:
        with self._lock:
            self._drop_connection()

    # SQLite must not be carried across fork(): with the lock held, no thread
    # is inside SQLite for this file, and the connection is closed, so the
    # child (and the parent, after) open fresh ones.
    def before_fork(self) -> None:
        self._lock.acquire()
        self._drop_connection()

    def after_fork_in_parent(self) -> None:
        self._lock.release()

    def after_fork_in_child(self) -> None:
        """A child claims as a new process, with its own lock and connection."""
        self._lock = threading.Lock()
        self._connection = None
        self._group = GroupCommit(lambda events: self.put(events))
        self._new_claimant()


# ------------------------------------------------------------- statements


def _create_private(path: Path) -> None:
    """Create the file readable by its owner only (SQLite gives its WAL files the same mode)."""
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def _count_pending(db: sqlite3.Connection) -> int:
    return int(db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])


def _transaction(db: sqlite3.Connection, work: Callable[[sqlite3.Connection], T]) -> T:
    db.execute("BEGIN IMMEDIATE")
    try:
        result = work(db)
        db.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(sqlite3.Error):  # a damaged file may refuse even this
            db.execute("ROLLBACK")
        raise
    return result


def _insert(db: sqlite3.Connection, rows: Sequence[tuple[Any, str, float]]) -> int:
    before = db.total_changes
    db.executemany("INSERT OR IGNORE INTO outbox (id, payload, created_at) VALUES (?, ?, ?)", rows)
    return db.total_changes - before
