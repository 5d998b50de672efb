"""Group commit for the outbox's durable writes: concurrent writers share one fsync."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any


class _Group:
    __slots__ = ("done", "error", "events")

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.done = False
        self.error: BaseException | None = None


class GroupCommit:
    """Leader/follower group commit: concurrent durable writes share one fsync.

    Writers join the open group; one of them (the leader) commits the whole
    group while the next group fills up; everyone returns when their group
    is on disk (or raises the group's error).
    """

    def __init__(self, put: Callable[[list[dict[str, Any]]], object]) -> None:
        self._put = put
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
            self._put(group.events)
        except BaseException as exc:  # every writer of the group learns of it
            group.error = exc
        finally:
            self._condition.acquire()
            self._committing = False
            group.done = True
            self._condition.notify_all()
