"""The 0.2 SDK's coroutine names of the tracker's calls, for async code.

``await tracker.track_token_usage(...)`` is ``track_token_based_pay`` run so
that it never blocks the event loop: inline when it takes microseconds (the
common case), in a worker thread when it may touch the disk or wait.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any


async def submit_async(
    track: Callable[..., str], may_wait: bool, *args: Any, **options: Any
) -> str:
    """Run a ``track_*`` call from async code without blocking the event loop.

    The common case takes microseconds and runs inline; one that may touch
    the disk or wait (``may_wait``: durable, a full queue, closed) runs in a
    worker thread."""
    if may_wait:
        return str(await asyncio.to_thread(track, *args, **options))
    return str(track(*args, **options))


class AsyncTrackCalls:
    """Mixed into :class:`~agentmeter.tracker.AgentMeterTracker`, which defines
    the synchronous calls these forward to."""

    track_api_request_pay: Callable[..., str]
    track_token_based_pay: Callable[..., str]
    track_instant_pay: Callable[..., str]

    def _may_wait(self) -> bool:
        raise NotImplementedError

    async def track_api_request(
        self,
        user_id: str | None = None,
        api_calls: int = 1,
        unit_price: Any = None,
        metadata: dict[str, Any] | None = None,
        **options: Any,
    ) -> str:
        """``track_api_request_pay`` for async code; never blocks the event loop."""
        return await submit_async(
            self.track_api_request_pay,
            self._may_wait(),
            api_calls,
            unit_price,
            user_id,
            metadata,
            **options,
        )

    async def track_token_usage(
        self,
        user_id: str | None = None,
        tokens_in: int = 0,
        tokens_out: int = 0,
        input_token_price: Any = None,
        output_token_price: Any = None,
        metadata: dict[str, Any] | None = None,
        **options: Any,
    ) -> str:
        """``track_token_based_pay`` for async code; never blocks the event loop."""
        return await submit_async(
            self.track_token_based_pay,
            self._may_wait(),
            tokens_in,
            tokens_out,
            input_token_price,
            output_token_price,
            user_id,
            metadata,
            **options,
        )

    async def track_instant_payment(
        self,
        user_id: str | None = None,
        amount: Any = 0,
        description: str = "",
        metadata: dict[str, Any] | None = None,
        **options: Any,
    ) -> str:
        """``track_instant_pay`` for async code; never blocks the event loop."""
        return await submit_async(
            self.track_instant_pay,
            self._may_wait(),
            amount,
            description,
            user_id,
            metadata,
            **options,
        )
