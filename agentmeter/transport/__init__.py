"""Transports carry a wire-API request to a store and bring the JSON answer back.

:class:`HttpTransport` speaks HTTP to a server; the embedded transport
(``base_url="sqlite:///..."``) runs the same request against a local ledger
in process. Both raise the same errors.

:class:`AsyncTransport` is the async client's: ``httpx`` for a server
(:mod:`~agentmeter.transport.async_http`), a worker thread for the embedded
ledger and any other blocking transport (:mod:`~agentmeter.transport.threaded`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

from .retry import RetryPolicy, is_retryable


class Transport(Protocol):
    # ``content_type``: the body's media type when it is not application/json
    # (the CloudEvents endpoint's); plans pass it only when set, so a custom
    # transport for the other endpoints need not know it.
    # The project events go to when neither call nor client names one
    # (the embedded ledger has one; a server needs it said).
    default_project_id: str | None

    @property
    def describe(self) -> str:
        """Where requests go, for reprs and logs (never the key)."""
        ...

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        idempotent: bool = True,
        sleep: Callable[[float], None] | None = None,
        content_type: str | None = None,
    ) -> Any: ...

    def close(self) -> None: ...


class AsyncTransport(Protocol):
    """A :class:`Transport` whose requests are awaited; same answers, same errors."""

    default_project_id: str | None

    @property
    def describe(self) -> str:
        """Where requests go, for reprs and logs (never the key)."""
        ...

    @property
    def concurrency(self) -> int:
        """How many calls it carries at once; the async client admits that many,
        and the rest wait their turn without doing any work on the loop."""
        ...

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
    ) -> Any: ...

    async def aclose(self) -> None: ...


__all__ = ["AsyncTransport", "RetryPolicy", "Transport", "is_retryable"]
