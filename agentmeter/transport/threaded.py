"""A blocking transport made awaitable: each request runs on a worker thread, never on the loop.

The async client's transport for the embedded ledger (``sqlite:///...``,
``postgresql+psycopg://...``), whose every call is database work, and for
any other blocking transport (a :class:`~agentmeter.transport.failover.FailoverTransport`,
a test's fake): the answers and errors are the wrapped transport's own.

The decision worth knowing: its own small thread pool, not
``asyncio.to_thread``'s shared one. The ledger serializes writes anyway
(SQLite has one writer), so a few threads carry all the throughput there
is; more would only fight the event loop for the GIL, and a burst of
calls must not crowd out the default executor other code (DNS lookups, the
app's own ``to_thread``) relies on. The wrapped transport is not closed
here: it belongs to whoever made it (the async client's sync twin).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ..core.lifecycle import register_fork_reset
from . import Transport

DEFAULT_WORKERS = 2


class ThreadedTransport:
    """Awaits ``transport``'s requests on ``workers`` threads of its own."""

    def __init__(self, transport: Transport, *, workers: int = DEFAULT_WORKERS) -> None:
        if workers < 1:
            raise ValueError(f"workers must be at least 1, not {workers}")
        self.transport = transport
        self.workers = workers
        self.default_project_id = transport.default_project_id
        self._executor = self._new_executor()
        register_fork_reset(self)

    def _new_executor(self) -> ThreadPoolExecutor:
        return ThreadPoolExecutor(self.workers, thread_name_prefix="agentmeter-io")

    def after_fork_in_child(self) -> None:
        """The parent's worker threads do not exist in the child."""
        self._executor = self._new_executor()

    @property
    def describe(self) -> str:
        return self.transport.describe

    @property
    def concurrency(self) -> int:
        return self.workers * 2  # one call running per thread, one queued behind it

    def __repr__(self) -> str:
        return f"ThreadedTransport({self.transport!r})"

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        idempotent: bool = True,
        sleep: Callable[[float], Awaitable[None]] | None = None,
        content_type: str | None = None,
    ) -> Any:
        """The wrapped transport's answer, computed on a worker thread.

        A ``sleep`` (an awaitable wait) cannot pass into a thread: the
        wrapped transport waits between its retries with its own policy."""
        call = functools.partial(
            self.transport.request,
            method,
            path,
            params=params,
            body=body,
            idempotent=idempotent,
        )
        if content_type is not None:  # passed on only when set, as the plans do
            call = functools.partial(call, content_type=content_type)
        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    async def aclose(self) -> None:
        """Stop the worker threads once the calls under way have finished."""
        await asyncio.get_running_loop().run_in_executor(None, self._executor.shutdown)
