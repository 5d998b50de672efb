"""Threads the server hands blocking ledger writes to, at the least cost per hand-off.

A write cannot run on the event loop (it waits for SQLite's write lock and
for the commit's fsync), so it goes to a thread and back. Starlette's
``run_in_threadpool`` (anyio: a capacity limiter, a cancel scope, a
``queue.Queue`` and a condition per worker) costs about 90 µs of CPU per
hand-off on a 2-vCPU VM; a ``SimpleQueue`` that idle threads wait on, and
``call_soon_threadsafe`` back, about 35 (``docs/benchmarks.md``, issue 21).

A few threads, not one: while a write waits for its fsync (the GIL
released), the next request's checks can run. The threads start on first
use, are daemons, and a forked child starts its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import Callable
from queue import SimpleQueue
from typing import Any, TypeVar

T = TypeVar("T")
_Job = tuple[asyncio.AbstractEventLoop, "asyncio.Future[Any]", Callable[..., Any], tuple[Any, ...]]


class Workers:
    """``await workers.run(function, *args)``: ``function(*args)`` on one of ``count`` threads."""

    def __init__(self, count: int = 4, name: str = "agentmeter-write") -> None:
        self.count = count
        self.name = name
        self._jobs: SimpleQueue[_Job] = SimpleQueue()
        self._started_in: int | None = None  # the pid whose threads are running
        self._lock = threading.Lock()

    async def run(self, function: Callable[..., T], *args: Any) -> T:
        if self._started_in != os.getpid():
            self._start()
        loop = asyncio.get_running_loop()
        done: asyncio.Future[T] = loop.create_future()
        self._jobs.put((loop, done, function, args))
        return await done

    def _start(self) -> None:
        with self._lock:
            pid = os.getpid()
            if self._started_in == pid:
                return
            if self._started_in is not None:  # a forked child: the parent's queue is not its own
                self._jobs = SimpleQueue()
            for number in range(self.count):
                name = f"{self.name}-{number}"
                threading.Thread(target=self._work, name=name, daemon=True).start()
            self._started_in = pid

    def _work(self) -> None:
        jobs = self._jobs
        while True:
            loop, done, function, args = jobs.get()
            try:
                result = function(*args)
            except BaseException as exc:  # handed to the awaiting request
                _hand_back(loop, done, None, exc)
            else:
                _hand_back(loop, done, result, None)


def _hand_back(
    loop: asyncio.AbstractEventLoop,
    done: asyncio.Future[Any],
    result: Any,
    error: BaseException | None,
) -> None:
    with contextlib.suppress(RuntimeError):  # a closed loop: no one is waiting any more
        loop.call_soon_threadsafe(_settle, done, result, error)


def _settle(done: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if done.done():  # the request was cancelled (its client went away); the write stands
        return
    if error is None:
        done.set_result(result)
    else:
        done.set_exception(error)


__all__ = ["Workers"]
