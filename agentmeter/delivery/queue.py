"""The tracker's bounded in-memory queue: a deque under one Condition.

Only public ``threading`` and ``collections`` APIs are used (no private
``queue.Queue`` internals, which gevent's monkey-patching breaks). The
producer side costs one lock and one append; the worker is woken only when
a batch is full or a flush is asked for, not on every event.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any

WireEvent = dict[str, Any]


class EventQueue:
    def __init__(self, maxsize: int, batch_size: int) -> None:
        self.maxsize = maxsize
        self.batch_size = batch_size
        self._items: deque[WireEvent] = deque()
        # put_nowait takes the lock itself: entering the Condition costs a
        # Python-level call more (about 0.2 us) on every tracked event.
        self._lock = threading.Lock()
        self._condition = threading.Condition(self._lock)
        self._flush_requested = False
        self._worker_waiting = False
        self.accepted = 0  # events ever put (monotonic): flush() waits for them

    def __len__(self) -> int:
        return len(self._items)

    def put_nowait(self, event: WireEvent) -> bool:
        """Append unless full; wake the worker when a batch is ready."""
        with self._lock:
            if len(self._items) >= self.maxsize:
                return False
            self._items.append(event)
            self.accepted += 1
            if self._worker_waiting and len(self._items) >= self.batch_size:
                self._condition.notify_all()
            return True

    def put_waiting(self, event: WireEvent, timeout: float) -> bool:
        """Append, waiting up to ``timeout`` seconds for room."""
        deadline = time.monotonic() + timeout
        with self._condition:
            while len(self._items) >= self.maxsize:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._condition.notify_all()  # make sure the worker is draining
                self._condition.wait(remaining)
            self._items.append(event)
            self.accepted += 1
            return True

    def put_dropping_oldest(self, event: WireEvent) -> WireEvent | None:
        """Append; if full, drop and return the oldest event to make room."""
        with self._condition:
            dropped = self._items.popleft() if len(self._items) >= self.maxsize else None
            self._items.append(event)
            self.accepted += 1
            return dropped

    def take(self, limit: int, wait: float) -> list[WireEvent]:
        """Up to ``limit`` oldest events, once a batch is full, a flush is asked
        for, or ``wait`` seconds have passed."""
        deadline = time.monotonic() + wait
        with self._condition:
            while len(self._items) < self.batch_size and not self._flush_requested:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._worker_waiting = True
                self._condition.wait(remaining)
                self._worker_waiting = False
            self._flush_requested = False
            count = min(limit, len(self._items))
            batch = [self._items.popleft() for _ in range(count)]
            if batch:
                self._condition.notify_all()  # producers waiting for room
            return batch

    def push_front(self, events: list[WireEvent]) -> None:
        """Put events back at the head (after a failed round), even past maxsize."""
        with self._condition:
            self._items.extendleft(reversed(events))

    def take_nowait(self, limit: int) -> list[WireEvent]:
        """Up to ``limit`` oldest events, without waiting."""
        with self._condition:
            count = min(limit, len(self._items))
            return [self._items.popleft() for _ in range(count)]

    def wake(self) -> None:
        """Ask the worker to send what is queued now (a flush, or shutdown)."""
        with self._condition:
            self._flush_requested = True
            self._condition.notify_all()

    def drain(self) -> list[WireEvent]:
        with self._condition:
            batch = list(self._items)
            self._items.clear()
            self._condition.notify_all()
            return batch
