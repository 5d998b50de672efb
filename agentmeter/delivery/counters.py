"""What the tracker counts: one lock-guarded set of counters, read as ``TrackerStats``."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .outbox import Outbox


@dataclass(frozen=True)
class TrackerStats:
    """Counters since the tracker (or, after fork, the child) started."""

    queued: int
    sent: int
    duplicates: int
    retried: int
    failed: int
    dropped: int
    spilled: int
    replayed: int
    outbox_pending: int
    last_error: str | None
    outbox_quarantined: int = 0  # events set aside in the outbox file (any tracker's)


class Counters:
    def __init__(self) -> None:
        self.lock = threading.Condition(threading.Lock())
        self.sent = self.duplicates = self.retried = self.failed = 0
        self.dropped = self.spilled = self.replayed = 0
        self.direct = 0  # events settled by callers (spilled or dropped) without the queue
        self.settled = 0  # events taken from the queue and settled by the worker
        self.last_error: str | None = None

    def add(self, **amounts: int) -> None:
        with self.lock:
            for name, amount in amounts.items():
                setattr(self, name, getattr(self, name) + amount)
            self.lock.notify_all()

    def error(self, message: str) -> None:
        with self.lock:
            self.last_error = message

    def stats(self, queued: int, outbox: Outbox | None) -> TrackerStats:
        return TrackerStats(
            queued=queued,
            sent=self.sent,
            duplicates=self.duplicates,
            retried=self.retried,
            failed=self.failed,
            dropped=self.dropped,
            spilled=self.spilled,
            replayed=self.replayed,
            outbox_pending=outbox.pending() if outbox is not None else 0,
            last_error=self.last_error,
            outbox_quarantined=outbox.quarantined_count() if outbox is not None else 0,
        )
