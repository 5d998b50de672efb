"""Where events go when the queue cannot take them, or the tracker is closed.

The default (``on_full="spill"``) never drops: a full queue moves its oldest
batch, with the new event, to the outbox in one transaction. ``block``
makes the caller wait (bounded); ``drop_oldest`` and ``raise`` are opt-in
and every drop is counted.
"""

from __future__ import annotations

import logging

from ..core.build import WireEvent, finalize
from ..errors import AgentMeterError
from .counters import Counters
from .outbox import Outbox
from .queue import EventQueue
from .worker import Deliverer

logger = logging.getLogger("agentmeter")


class QueueFullError(AgentMeterError):
    """``on_full="raise"``: the queue is full and the event was not taken."""


class Overflow:
    """The tracker's policy for events its queue cannot take; one per queue."""

    def __init__(
        self,
        queue: EventQueue,
        counters: Counters,
        outbox: Outbox | None,
        *,
        on_full: str,
        durable: bool,
        block_timeout: float,
    ) -> None:
        self.queue = queue
        self.counters = counters
        self.outbox = outbox
        self.on_full = on_full
        self.durable = durable
        self.block_timeout = block_timeout
        self.deliverer: Deliverer | None = None  # set when the worker starts

    def take(self, event: WireEvent) -> None:
        """The queue is full: spill, drop, raise or wait, as ``on_full`` says."""
        if self.on_full == "drop_oldest":
            if self.queue.put_dropping_oldest(event) is not None:
                self.counters.add(dropped=1, settled=1)  # the dropped one is settled
                logger.warning(
                    "agentmeter queue full: dropped the oldest event (on_full='drop_oldest')"
                )
        elif self.on_full == "raise":
            self.counters.add(dropped=1)
            raise QueueFullError(f"the tracker's queue is full ({self.queue.maxsize} events)")
        elif self.on_full == "spill" and self.outbox is not None:
            self._spill_oldest(event)
        elif not self.queue.put_waiting(event, self.block_timeout):
            if self.outbox is not None:
                self._spill_now(event)
            else:
                self.counters.add(dropped=1, direct=1)
                logger.error(
                    "agentmeter queue full for %.0fs and no outbox: event %s lost",
                    self.block_timeout,
                    event["id"],
                )

    def _spill_oldest(self, event: WireEvent) -> None:
        """Move the oldest batch and this event to the outbox in one transaction,
        so a burst costs one disk write per batch, not per event."""
        assert self.outbox is not None
        oldest = self.queue.take_nowait(self.queue.batch_size)
        chunk = [finalize(queued) for queued in oldest] + [finalize(event)]
        if not self.durable:
            self.outbox.put(chunk)
        # Dirty before counted: flush() must never see these settled and the
        # outbox clean at once while they wait in the outbox.
        self._mark_outbox_dirty()
        self.counters.add(spilled=len(chunk), settled=len(oldest), direct=1)

    def _mark_outbox_dirty(self) -> None:
        if self.deliverer is not None:
            self.deliverer.mark_dirty()

    def _spill_now(self, event: WireEvent) -> None:
        assert self.outbox is not None
        if not self.durable:
            self.outbox.put([finalize(event)])
        self._mark_outbox_dirty()
        self.counters.add(spilled=1, direct=1)

    def after_close(self, event: WireEvent) -> str:
        """An event tracked after close(): to the outbox, or counted as dropped."""
        logger.warning("agentmeter tracker is closed; event %s goes to the outbox", event["id"])
        if self.outbox is not None:
            self.outbox.put([finalize(event)])
            self.counters.add(spilled=1, direct=1)
        else:
            self.counters.add(dropped=1, direct=1)
        return str(event["id"])

    def keep_leftovers(self) -> None:
        """At close: what is still queued or in flight goes to the outbox."""
        inflight = self.deliverer.inflight if self.deliverer is not None else []
        leftover = list(inflight) + self.queue.drain()
        if not leftover:
            return
        if self.outbox is not None:
            self.outbox.put([finalize(event) for event in leftover])
            self.counters.add(spilled=len(leftover))
            logger.info("agentmeter: %d undelivered events kept in %s", len(leftover), self.outbox)
        else:
            self.counters.add(dropped=len(leftover))
            logger.error(
                "agentmeter: %d events could not be delivered and there is no outbox", len(leftover)
            )
