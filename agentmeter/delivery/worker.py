"""The tracker's worker: batches from the queue to the server, failures to the outbox.

Each batch goes to the server under the client's retry policy. When a batch
cannot be delivered the server is taken to be *down*: new batches go
straight to the outbox (memory stays flat however long the outage lasts)
and the worker probes by replaying the outbox's oldest rows, with growing
pauses. Without an outbox, undelivered events go back to the head of the
queue (callers then wait for room, see ``on_full``) and the next batch,
after the same growing pauses, is the probe. Whenever the outbox holds rows
(from an outage, a full queue, a previous run, or ``durable=True``) and the
server is up, the worker replays them between live batches until the outbox
is empty.

Events keep their ids through every attempt and replay; the server stores
each id once. An event the server rejects as invalid is final: counted,
logged, handed to ``on_error`` and never sent again. So is an event that
slipped past validation and cannot even be encoded (a non-finite float, a
lone surrogate, an object whose ``str()`` raises): when a batch fails to
encode, each event is tried alone, the bad ones are *poisoned* (the same
as rejected, and kept in the outbox's quarantine) and the rest go on.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..core import catalog
from ..core.build import finalize
from ..errors import AgentMeterAPIError, AgentMeterError, AgentMeterValidationError
from ..models import BatchResult, ErrorInfo
from .clock_skew import wait_before_resend
from .counters import Counters
from .outbox_damage import encoding_problem, safe_text
from .queue import EventQueue, WireEvent

if TYPE_CHECKING:
    from .outbox import Outbox
    from .sender import BatchSender

logger = logging.getLogger("agentmeter")
ErrorCallback = Callable[[WireEvent, ErrorInfo], None]
# The batch as a whole was refused for what some of its events hold (malformed,
# too large, invalid, or a project the key may not write: 403). All final
# (WIRE.md), so the batch is halved until the offending events are found.
_SPLIT_STATUSES = frozenset({400, 403, 413, 422})
_MAX_REPLAY_PAUSE = 60.0


class Interrupted(Exception):
    """Raised inside a retry sleep when the tracker is shutting down."""


class Deliverer:
    def __init__(
        self,
        client: BatchSender,
        queue: EventQueue,
        outbox: Outbox | None,
        counters: Counters,
        *,
        flush_interval: float,
        replay_interval: float,
        durable: bool,
        on_error: ErrorCallback | None,
    ) -> None:
        self.client = client
        self.queue = queue
        self.outbox = outbox
        self.counters = counters
        self.flush_interval = flush_interval
        self.replay_interval = replay_interval
        self.durable = durable
        self.on_error = on_error
        self.stop = threading.Event()
        self.replay_now = threading.Event()
        self.inflight: list[WireEvent] = []
        self.server_down = False
        self.outbox_dirty = False  # the outbox may hold rows to replay
        self.held_elsewhere = False  # its rows are all claimed by another live tracker
        self._dirty_lock = threading.Lock()
        self._dirty_marks = 0  # how often rows were put in the outbox (see mark_dirty)
        self._replay_pause = replay_interval
        self._next_replay = 0.0
        self._last_failure = ""
        self._deferred: list[tuple[WireEvent, float]] = []  # (event, epoch to resend at)

    def wait_until_settled(self, target: int, deadline: float, thread: threading.Thread) -> bool:
        """flush(): True once ``target`` events are settled and the outbox is
        empty; False at ``deadline`` or if the worker died."""
        counters = self.counters
        self.replay_now.set()
        self.queue.wake()
        with counters.lock:
            while counters.settled + counters.direct < target or self.outbox_dirty:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not thread.is_alive():
                    return False
                counters.lock.wait(min(remaining, 0.05))
                if self.outbox_dirty:
                    self.replay_now.set()
                # The worker spends a wake on one batch: ask again until the
                # last (partial) batch is taken, or it waits a flush_interval.
                if len(self.queue):
                    self.queue.wake()
        return True

    # ---------------------------------------------------------------- loop

    def run(self) -> None:
        self.outbox_dirty = self.outbox is not None  # find out in the first round
        _warm_price_catalog()
        while not self.stop.is_set():
            try:
                self._round()
            except Interrupted:
                return
            except Exception as exc:  # a bug or a broken disk must not end delivery for good
                self._log_failure(exc)
                self.queue.push_front(self.inflight)  # whatever it was holding is not lost
                self.inflight = []
                self.stop.wait(1.0)

    def _log_failure(self, exc: Exception) -> None:
        """The traceback once; the same failure again, one line each time."""
        failure = safe_text(f"{type(exc).__name__}: {exc}", 300)
        if failure == self._last_failure:
            logger.error("agentmeter delivery failed again (%s); retrying in a second", failure)
            return
        self._last_failure = failure
        logger.exception("agentmeter delivery failed; retrying in a second")

    def _round(self) -> None:
        if self.server_down and self.outbox is None:
            # No outbox: the undelivered events wait at the head of the queue,
            # and the next batch is the probe, after a growing pause.
            self._pause_while_down()
            if self.stop.is_set():
                return
        batch = self.queue.take(self.queue.batch_size, self._wait())
        if batch:
            self._handle(batch)
        if self.outbox_dirty and self._replay_due():
            self._replay()

    def _wait(self) -> float:
        if not self.outbox_dirty:
            return self.flush_interval
        if not (self.server_down or self.held_elsewhere):
            return 0.0  # keep replaying between live batches
        return max(0.0, min(self.flush_interval, self._next_replay - time.monotonic()))

    def _pause_while_down(self) -> None:
        while not self.stop.is_set() and not self.replay_now.is_set():
            remaining = self._next_replay - time.monotonic()
            if remaining <= 0:
                return
            self.stop.wait(min(remaining, 0.05))
        self.replay_now.clear()

    def _replay_due(self) -> bool:
        if self.replay_now.is_set():
            self.replay_now.clear()
            return True
        if self.server_down or self.held_elsewhere:
            return time.monotonic() >= self._next_replay
        return True

    def _handle(self, taken: list[WireEvent]) -> None:
        self.inflight = taken
        batch = self._finalized(taken)
        held = 0  # events put back in the queue (no outbox): not settled yet
        if self.server_down and self.outbox is not None:
            self._spill(batch)
        else:
            leftover, deferred = self._deliver_round(batch)
            if leftover:
                if self.outbox is not None:
                    self._spill(leftover)
                else:  # nowhere safer than memory: keep them, and try again later
                    self.queue.push_front(leftover)
                    held = len(leftover)
                self._mark_down()
            elif self.outbox is None:
                self.server_down = False  # the probe went through
            if self.durable and self.outbox is not None:
                kept = {event["id"] for event in leftover} | deferred
                self.outbox.ack([e["id"] for e in batch if e["id"] not in kept])
        self.inflight = []
        self.counters.add(settled=len(taken) - held)

    def _finalized(self, taken: list[WireEvent]) -> list[WireEvent]:
        """The batch in wire form; an event that cannot be finalized is poisoned."""
        batch, broken = [], []
        for event in taken:
            try:
                batch.append(finalize(event))
            except Exception as exc:
                broken.append((event, safe_text(f"cannot be finalized: {exc!r}")))
        if broken:
            self._poison(broken)
        return batch

    def _spill(self, events: list[WireEvent]) -> None:
        assert self.outbox is not None
        if not self.durable:  # durable events are in the outbox already
            self.outbox.put(events)
        self.mark_dirty()
        self.counters.add(spilled=len(events))

    def mark_dirty(self) -> None:
        """Rows were just put in the outbox (by any thread): replay them."""
        with self._dirty_lock:
            self._dirty_marks += 1
            self.outbox_dirty = True
            self.held_elsewhere = False

    def _mark_down(self) -> None:
        if not self.server_down:
            self.server_down = True
            self._replay_pause = self.replay_interval
        else:
            self._replay_pause = min(_MAX_REPLAY_PAUSE, self._replay_pause * 2)
        self._next_replay = time.monotonic() + self._replay_pause

    def _replay(self) -> None:
        assert self.outbox is not None
        marks = self._dirty_marks
        rows = self.outbox.claim(self.queue.batch_size)
        if not rows:
            self._nothing_to_claim(marks)
            return
        self.held_elsewhere = False
        try:
            leftover, deferred = self._deliver_round(rows)
        except BaseException:
            # Shutdown, or a bug: give the rows back now; left claimed by this
            # live process they would sit out the whole lease.
            self.outbox.release([event["id"] for event in rows])
            raise
        kept = {event["id"] for event in leftover}
        self.outbox.ack([e["id"] for e in rows if e["id"] not in kept | deferred])
        self.outbox.release(list(kept))
        if leftover:
            self._mark_down()
        else:
            self.server_down = False
            self.counters.add(replayed=len(rows))

    def _nothing_to_claim(self, marks: int) -> None:
        """Clean when the outbox is empty; while another live tracker holds its
        rows, look again after a pause (they may come back when its lease ends)."""
        self.held_elsewhere = self.outbox is not None and self.outbox.pending() > 0
        if self.held_elsewhere:
            self._next_replay = time.monotonic() + self.replay_interval
        else:
            with self._dirty_lock:
                # Clean only if no one put rows since before the claim: a spill
                # that committed after the claim looked must not be forgotten.
                if self._dirty_marks == marks:
                    self.outbox_dirty = False
        self.counters.add()  # wake flush() waiters

    # ------------------------------------------------------------ delivery

    def sleep(self, seconds: float) -> None:
        """The retry policy's sleep: counted, and cut short by shutdown."""
        self.counters.add(retried=1)
        if self.stop.wait(seconds):
            raise Interrupted

    def _deliver_round(self, batch: list[WireEvent]) -> tuple[list[WireEvent], set[str]]:
        """Deliver a batch; return what still needs delivering, and the ids of
        the events now held in the outbox until the server's clock catches up."""
        self._deferred = []
        leftover = self.deliver(batch)
        deferred, self._deferred = self._deferred, []
        if not deferred:
            return leftover, set()
        assert self.outbox is not None  # only deferred with an outbox to hold them
        self.outbox.defer(deferred)
        self.mark_dirty()
        logger.warning(
            "agentmeter: %d events are stamped ahead of the server's clock (is this"
            " machine's clock fast?); kept in the outbox and sent again in %.0f s",
            len(deferred),
            max(0.0, min(until for _, until in deferred) - time.time()),
        )
        return leftover, {event["id"] for event, _ in deferred}

    def deliver(self, batch: list[WireEvent]) -> list[WireEvent]:
        """Send a batch; return the events that still need delivering."""
        try:
            result = self.client.send_batch(batch, sleep=self.sleep)
        except AgentMeterAPIError as exc:
            if exc.status_code in _SPLIT_STATUSES:
                return self._split(batch, exc)
            return self._undelivered(batch, exc)
        except AgentMeterValidationError as exc:  # refused before sending: the content
            return self._split_refused(batch, exc)
        except AgentMeterError as exc:
            return self._undelivered(batch, exc)
        except Interrupted:
            raise
        except Exception as exc:
            return self._without_unencodable(batch, exc)
        self._account(batch, result)
        return []

    def _without_unencodable(self, batch: list[WireEvent], exc: Exception) -> list[WireEvent]:
        """The batch failed to encode: poison the events that cannot be, send the rest.
        If every event encodes alone, the failure is not theirs: raised on."""
        problems = [(event, problem) for event in batch if (problem := encoding_problem(event))]
        if not problems:
            raise exc
        self._poison(problems)
        bad = {id(event) for event, _ in problems}
        rest = [event for event in batch if id(event) not in bad]
        return self.deliver(rest) if rest else []

    def _split_refused(
        self, batch: list[WireEvent], exc: AgentMeterValidationError
    ) -> list[WireEvent]:
        if len(batch) == 1:
            self._poison([(batch[0], safe_text(f"refused before sending: {exc}"))])
            return []
        middle = len(batch) // 2
        return self.deliver(batch[:middle]) + self.deliver(batch[middle:])

    def _poison(self, problems: list[tuple[WireEvent, str]]) -> None:
        """Events that can never be sent: final like a rejection, kept in the quarantine."""
        if self.outbox is not None:
            self.outbox.quarantine(problems)  # logs the events it files
        else:
            logger.error(
                "agentmeter: %d events cannot be delivered and are dropped; first %s: %s",
                len(problems),
                safe_text(str(problems[0][0].get("id"))),
                problems[0][1],
            )
        for event, problem in problems:
            self._reject(event, ErrorInfo(code="unencodable", message=problem), log=False)

    def _split(self, batch: list[WireEvent], exc: AgentMeterAPIError) -> list[WireEvent]:
        if len(batch) == 1:  # this one event is what the server refuses
            details = [detail for detail in exc.details if isinstance(detail, dict)]
            error = ErrorInfo(code=exc.code or "rejected", message=exc.message, details=details)
            self._reject(batch[0], error)
            return []
        middle = len(batch) // 2
        return self.deliver(batch[:middle]) + self.deliver(batch[middle:])

    def _undelivered(self, batch: list[WireEvent], exc: AgentMeterError) -> list[WireEvent]:
        self.counters.error(str(exc))
        logger.warning(
            "agentmeter could not deliver %d events (%s); kept for later", len(batch), exc
        )
        return batch

    def _account(self, batch: list[WireEvent], result: BatchResult) -> None:
        for rejected in result.rejected:
            if 0 <= rejected.index < len(batch):
                self._reject(batch[rejected.index], rejected.error)
        self.counters.add(sent=result.accepted, duplicates=result.duplicates)

    def _reject(self, event: WireEvent, error: ErrorInfo, *, log: bool = True) -> None:
        wait = wait_before_resend(event, error) if self.outbox is not None else None
        if wait is not None:
            self._deferred.append((event, time.time() + wait.total_seconds()))
            return
        self.counters.add(failed=1)
        self.counters.error(error.message)
        if log:
            logger.error("agentmeter event %s was rejected: %s", event.get("id"), error.message)
        if self.on_error is not None:
            try:
                self.on_error(event, error)
            except Exception:
                logger.exception("agentmeter on_error callback failed")


def _warm_price_catalog() -> None:
    """Load the price catalog here, so no track_* call is the first to read its files."""
    try:
        catalog.warm()
    except Exception:  # a missing or broken catalog shows at lookup, not here
        logger.debug("agentmeter: loading the price catalog failed", exc_info=True)
