"""The outbox's SQLite file: opened on demand, checked, and replaced when damaged.

Several processes may share one file, so replacing a damaged one is
coordinated through a lock file next to it (``<outbox>.lock``, POSIX
``flock``): every operation holds it shared, a repair holds it exclusive.
So one process sets the file aside while no other is inside it, a second
process that also found the damage sees the file already replaced and just
opens the new one, and a process still connected to the old file notices
the swap (another inode at the path) before it writes a row there.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar
from urllib.parse import quote

from ..errors import AgentMeterConfigurationError
from . import outbox_damage as damage
from .outbox_damage import safe_text

try:
    import fcntl
except ImportError:  # Windows: no flock; one process per outbox file there
    fcntl = None  # type: ignore[assignment]

logger = logging.getLogger("agentmeter")
T = TypeVar("T")

SCHEMA = """
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


class NotAnOutboxError(AgentMeterConfigurationError):
    """The file is a SQLite database of something else (a ledger, say): left untouched."""


class OutboxFile:
    """One connection to the outbox file; the caller serializes access (one thread at a time).

    ``repair``: a damaged file is renamed aside and a fresh one opened with the
    rows that could be read; without it, damage is raised. ``read_only``: an
    existing file is opened without creating or changing anything (no lock file).
    """

    def __init__(self, path: Path, *, repair: bool, read_only: bool) -> None:
        self.path = path
        self.repair = repair and not read_only
        self.read_only = read_only
        self._connection: sqlite3.Connection | None = None
        self._inode: int | None = None  # the file the connection is to
        self._lock = _RepairLock(Path(f"{path}.lock"))

    def run(self, operation: Callable[[sqlite3.Connection], T]) -> T:
        """``operation`` on the file at ``path`` now; once more on a fresh file if
        this one turns out damaged."""
        if self.read_only:
            return operation(self._connected())
        repaired = False
        while True:
            connection = self._connected()
            damaged: sqlite3.DatabaseError | None = None
            with self._lock.shared():
                if damage.inode(self.path) == self._inode:
                    try:
                        return operation(connection)
                    except sqlite3.DatabaseError as exc:
                        if repaired or not (self.repair and damage.is_damage(exc)):
                            raise
                        damaged = exc
            self.close()  # damaged, or replaced by another process: open what is there now
            if damaged is not None:
                self._connection = self._replace_damaged(damaged)
                repaired = True

    def close(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(sqlite3.Error):
                self._connection.close()
            self._connection = None

    def forget_after_fork(self) -> None:
        """In a forked child: nothing the parent opened is used again."""
        self._connection = None
        self._lock = _RepairLock(self._lock.path)

    # ------------------------------------------------------------ opening

    def _connected(self) -> sqlite3.Connection:
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
            create_private(self.path)
        self._inode = damage.inode(self.path)
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
                connection.executescript(SCHEMA)
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
        self.close()
        with self._lock.exclusive():
            if damage.inode(self.path) not in (self._inode, None):
                return self._connect()  # another tracker or process has set it aside already
            aside, rows = damage.set_aside(self.path)
            connection = self._connect()
            transaction(connection, lambda db: damage.restore(db, rows))
        logger.error(
            "agentmeter: the outbox %s is damaged (%s); it was renamed to %s and a fresh "
            "outbox opened with the %d events that could still be read",
            self.path,
            safe_text(str(exc), 200),
            aside.name,
            len(rows),
        )
        return connection


class _RepairLock:
    """``flock`` on a file next to the outbox: shared to use the file, exclusive to replace it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    @contextlib.contextmanager
    def shared(self) -> Iterator[None]:
        with self._held(fcntl.LOCK_SH if fcntl else 0):
            yield

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        with self._held(fcntl.LOCK_EX if fcntl else 0):
            yield

    @contextlib.contextmanager
    def _held(self, mode: int) -> Iterator[None]:
        if fcntl is None:
            yield
            return
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self._fd, mode)
        try:
            yield
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)


def create_private(path: Path) -> None:
    """Create the file readable by its owner only (SQLite gives its WAL files the same mode)."""
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def transaction(db: sqlite3.Connection, work: Callable[[sqlite3.Connection], T]) -> T:
    db.execute("BEGIN IMMEDIATE")
    try:
        result = work(db)
        db.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(sqlite3.Error):  # a damaged file may refuse even this
            db.execute("ROLLBACK")
        raise
    return result
