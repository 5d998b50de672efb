"""How many HTTP requests the server is handling: whether a write may run on the event loop.

A single-event write is handed to a worker thread so that, while it waits for
SQLite's write lock and its commit's fsync, the event loop can go on with
other requests. When the request is the only one the server is handling,
that buys nothing, and the hand-off (a thread woken, then the loop woken
back) costs more CPU than the write's statements: 0.2 to 0.3 ms per request
on a 2-vCPU VM (``docs/benchmarks.md``, issue 21). So the event route writes
on the loop when :meth:`InFlight.alone` and the write can begin without
waiting (``LedgerAPI.record_event(now=True)``); a request arriving meanwhile
waits at most that one commit.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send


class InFlight:
    """How many HTTP requests are in progress (counted by :class:`CountRequests`)."""

    def __init__(self) -> None:
        self.count = 0

    def alone(self) -> bool:
        """Whether the request asking is the only one in progress."""
        return self.count == 1


class CountRequests:
    """ASGI middleware keeping ``counter.count`` (one event loop: no lock needed)."""

    def __init__(self, app: ASGIApp, counter: InFlight) -> None:
        self.app = app
        self.counter = counter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        self.counter.count += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.counter.count -= 1


__all__ = ["CountRequests", "InFlight"]
