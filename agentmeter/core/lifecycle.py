"""Process events every tracker must survive: interpreter exit and ``fork()``.

At exit each live tracker is closed (flushed for its bounded
``shutdown_timeout``, the rest put in its outbox). In a forked child each
tracker starts over with an empty queue and no worker (one starts on first
use), so the child never resends the parent's events, and transports drop
connections the parent owns.
"""

from __future__ import annotations

import atexit
import logging
import os
import weakref
from typing import Any

logger = logging.getLogger("agentmeter")
_trackers: weakref.WeakSet[Any] = weakref.WeakSet()
# Trackers whose worker runs, held strongly until closed: a tracker the
# application no longer references must still be flushed at exit, or the
# events in its queue would die with the daemon worker.
_running: set[Any] = set()
_fork_resettable: weakref.WeakSet[Any] = weakref.WeakSet()


def register_tracker(tracker: Any) -> None:
    _trackers.add(tracker)


def hold_until_closed(tracker: Any) -> None:
    _running.add(tracker)


def release_closed(tracker: Any) -> None:
    _running.discard(tracker)


def register_fork_reset(resource: Any) -> None:
    """``resource.after_fork_in_child()`` runs in every forked child; the
    optional ``before_fork()`` / ``after_fork_in_parent()`` around the fork."""
    _fork_resettable.add(resource)


def _before_fork() -> None:
    for resource in list(_fork_resettable):
        hook = getattr(resource, "before_fork", None)
        if hook is not None:
            hook()


def _after_fork_in_parent() -> None:
    for resource in list(_fork_resettable):
        hook = getattr(resource, "after_fork_in_parent", None)
        if hook is not None:
            hook()


def _close_all_at_exit() -> None:
    for tracker in list(_trackers):
        try:
            tracker.close()
        except Exception:
            logger.exception("agentmeter: closing a tracker at exit failed")


def _reset_in_child() -> None:
    for resource in list(_fork_resettable):
        resource.after_fork_in_child()
    for tracker in list(_trackers):
        tracker.after_fork_in_child()


atexit.register(_close_all_at_exit)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(
        before=_before_fork, after_in_parent=_after_fork_in_parent, after_in_child=_reset_in_child
    )
