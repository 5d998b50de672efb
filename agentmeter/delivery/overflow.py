"""Where events go when the queue cannot take them, and the async track API.

The default (``on_full="spill"``) never drops: a full queue moves its oldest
batch, with the new event, to the outbox in one transaction. ``block``
makes the caller wait (bounded); ``drop_oldest`` and ``raise`` are opt-in
and every drop is counted. The async methods never block the event loop:
whatever may wait or touch the disk runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..core.build import WireEvent, finalize
from ..errors import AgentMeterError
from .queue import EventQueue
from .worker import Counters, Deliverer

if TYPE_CHECKING:
    from .outbox import Outbox

logger = logging.getLogger("agentmeter")


class QueueFullError(AgentMeterError):
    """``on_full="raise"``: the queue is full and the event was not taken."""


class OverflowMixin:
    _queue: EventQueue
    _counters: Counters
    _deliverer: Deliverer | None
    outbox: Outbox | None
    on_full: str
    durable: bool
    batch_size: int
    max_queue_size: int
    block_timeout: float

    def _overflow(self, event: WireEvent) -> None:
        if self.on_full == "drop_oldest":
            if self._queue.put_dropping_oldest(event) is not None:
                self._counters.add(dropped=1, settled=1)  # the dropped one is settled
                logger.warning(
                    "agentmeter queue full: dropped the oldest event (on_full='drop_oldest')"
                )
        elif self.on_full == "raise":
            self._counters.add(dropped=1)
            raise QueueFullError(f"the tracker's queue is full ({self.max_queue_size} events)")
        elif self.on_full == "spill" and self.outbox is not None:
            self._spill_oldest(event)
        elif not self._queue.put_waiting(event, self.block_timeout):
            if self.outbox is not None:
                self._spill_now(event)
            else:
                self._counters.add(dropped=1, direct=1)
                logger.error(
                    "agentmeter queue full for %.0fs and no outbox: event %s lost",
                    self.block_timeout,
                    event["id"],
                )

    def _spill_oldest(self, event: WireEvent) -> None:
        """Queue full: move the oldest batch and this event to the outbox in one
        transaction, so a burst costs one disk write per batch, not per event."""
        assert self.outbox is not None
        oldest = self._queue.take_nowait(self.batch_size)
        chunk = [finalize(queued) for queued in oldest] + [finalize(event)]
        if not self.durable:
            self.outbox.put(chunk)
        # Dirty before counted: flush() must never see these settled and the
        # outbox clean at once while they wait in the outbox.
        self._mark_outbox_dirty()
        self._counters.add(spilled=len(chunk), settled=len(oldest), direct=1)

    def _mark_outbox_dirty(self) -> None:
        if self._deliverer is not None:
            self._deliverer.mark_dirty()

    def _spill_now(self, event: WireEvent) -> None:
        assert self.outbox is not None
        if not self.durable:
            self.outbox.put([finalize(event)])
        self._mark_outbox_dirty()
        self._counters.add(spilled=1, direct=1)

    def _after_close(self, event: WireEvent) -> str:
        logger.warning("agentmeter tracker is closed; event %s goes to the outbox", event["id"])
        if self.outbox is not None:
            self.outbox.put([finalize(event)])
            self._counters.add(spilled=1, direct=1)
        else:
            self._counters.add(dropped=1, direct=1)
        return str(event["id"])

    def _keep_leftovers(self) -> None:
        inflight = self._deliverer.inflight if self._deliverer is not None else []
        leftover = list(inflight) + self._queue.drain()
        if not leftover:
            return
        if self.outbox is not None:
            self.outbox.put([finalize(event) for event in leftover])
            self._counters.add(spilled=len(leftover))
            logger.info("agentmeter: %d undelivered events kept in %s", len(leftover), self.outbox)
        else:
            self._counters.add(dropped=len(leftover))
            logger.error(
                "agentmeter: %d events could not be delivered and there is no outbox", len(leftover)
            )


class AsyncTrackingMixin:
    _queue: EventQueue
    _closed: bool
    durable: bool
    max_queue_size: int
    track_api_request_pay: Callable[..., str]
    track_token_based_pay: Callable[..., str]
    track_instant_pay: Callable[..., str]

    async def track_api_request(
        self,
        user_id: str | None = None,
        api_calls: int = 1,
        unit_price: Any = None,
        metadata: dict[str, Any] | None = None,
        **options: Any,
    ) -> str:
        """``track_api_request_pay`` for async code; never blocks the event loop."""
        return await self._submit_async(
            self.track_api_request_pay, api_calls, unit_price, user_id, metadata, **options
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
        return await self._submit_async(
            self.track_token_based_pay,
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
        return await self._submit_async(
            self.track_instant_pay, amount, description, user_id, metadata, **options
        )

    async def _submit_async(self, track: Any, *args: Any, **options: Any) -> str:
        # The common case takes microseconds; anything that may touch the
        # disk or wait (durable, a full queue) runs in a worker thread.
        if self.durable or len(self._queue) >= self.max_queue_size or self._closed:
            return str(await asyncio.to_thread(track, *args, **options))
        return str(track(*args, **options))
