"""The ledger's engine, its transactions, and time as stored (UTC microseconds)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine

from .micros import from_micros as from_micros
from .micros import now_micros as now_micros
from .micros import to_micros as to_micros
from .nowait import NoWaitReads, WouldWait
from .writer import HeldWriter


class LedgerBase:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        # SQLite has one writer at a time; waiting threads of this process queue
        # here instead of in SQLite's busy handler, which sleeps up to 100 ms a
        # try and wakes no one in order (a long tail under load).
        self._write_lock = threading.Lock() if self.dialect == "sqlite" else None
        self.nowait = NoWaitReads.for_engine(engine)  # one-row reads for the event loop
        # A SQLite file's writers share one held connection (writer.py).
        self.writer = HeldWriter(engine) if self.nowait.database is not None else None

    @contextmanager
    def writing(self, *, wait: bool = True) -> Iterator[Connection]:
        """One write transaction (on SQLite it holds the write lock from BEGIN).

        ``wait=False``: begin now or raise :class:`~.nowait.WouldWait` (the
        write lock is taken, or the ledger is not a SQLite file)."""
        if self._write_lock is None or (self.writer is None and not wait):
            if not wait:
                raise WouldWait("only a SQLite file's writer can begin without waiting")
            yield from self._transaction()
            return
        if not self._write_lock.acquire(blocking=wait):
            raise WouldWait("another write holds the write lock")
        try:
            if self.writer is None:
                yield from self._transaction()
                return
            with self.writer.transaction(wait=wait) as connection:
                yield connection
        finally:
            self._write_lock.release()

    def reset_after_fork(self) -> None:
        """In a forked child: the parent's threads (and any lock they held) are gone."""
        if self._write_lock is not None:
            self._write_lock = threading.Lock()
        if self.writer is not None:
            self.writer.forget()
        self.engine.dispose(close=False)

    def _transaction(self) -> Iterator[Connection]:
        connect = self.engine.connect().execution_options(ledger_write=True)
        with connect as connection, connection.begin():
            yield connection

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        with self.engine.connect() as connection, connection.begin():
            yield connection
