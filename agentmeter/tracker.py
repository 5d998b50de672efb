"""AgentMeterTracker: metering that never blocks the app, loses an event, or bills twice.

``track_*`` validates its input, builds the event (with its id) and puts it
on a bounded in-memory queue: microseconds, no I/O. One background thread
per tracker, started on first use, sends batches (by size, or every
``flush_interval`` seconds) and moves whatever it cannot deliver to the
outbox file, from which it is replayed (see :mod:`agentmeter.delivery.worker`).

>>> tracker = AgentMeterTracker(client, "proj_1", "agent_1")   # doctest: +SKIP
>>> tracker.track_token_based_pay(tokens_in=500, tokens_out=250, user_id="u1")  # doctest: +SKIP
'0193f6a2-...'
>>> tracker.flush(timeout=5)                                   # doctest: +SKIP
True
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from .core.build import (
    WireEvent,
    add_token_classes,
    api_request_event,
    finalize,
    instant_event,
    token_event,
)
from .core.lifecycle import hold_until_closed, register_tracker, release_closed
from .core.price_book import REPRICE
from .core.token_prices import OnUnknownModel
from .delivery.async_calls import AsyncTrackCalls
from .delivery.counters import Counters, TrackerStats
from .delivery.outbox import Outbox, outbox_for
from .delivery.overflow import Overflow
from .delivery.queue import EventQueue
from .delivery.sender import TrackerClient
from .delivery.settings import as_outbox, check_settings, price, token_pricer, usable
from .delivery.worker import Deliverer, ErrorCallback
from .errors import AgentMeterConfigurationError
from .models import MeterEvent

logger = logging.getLogger("agentmeter")
OnFull = Literal["spill", "block", "drop_oldest", "raise"]
_DEFAULT: Any = object()


class AgentMeterTracker(AsyncTrackCalls):
    """Batches events in the background. Thread-safe; one per process is plenty.

    ``outbox`` is a path, an :class:`Outbox`, or None for none (then a full
    queue makes callers wait, up to ``block_timeout``). By default each
    server (and key) gets its own file under ``~/.agentmeter/``.
    """

    def __init__(
        self,
        client: TrackerClient,
        project_id: str | None = None,
        agent_id: str | None = None,
        user_id: str | None = None,
        auto_flush: bool = True,
        flush_interval: float = 1.0,
        batch_size: int = 500,
        max_queue_size: int = 10_000,
        default_api_price: Any = None,
        default_input_token_price: Any = None,
        default_output_token_price: Any = None,
        *,
        outbox: str | Path | Outbox | None = _DEFAULT,
        durable: bool = False,
        on_full: OnFull = "spill",
        on_error: ErrorCallback | None = None,
        block_timeout: float = 30.0,
        flush_timeout: float = 30.0,
        shutdown_timeout: float = 5.0,
        replay_interval: float = 2.0,
    ) -> None:
        check_settings(flush_interval, batch_size, max_queue_size, on_full)
        config = client.config
        self.client = client
        self.project_id = config.project_for(project_id, client.transport.default_project_id)
        self.agent_id = agent_id or config.agent_id or "default"
        self.user_id = user_id or config.user_id or "anonymous"
        self.default_api_price = price(
            default_api_price, config.api_request_unit_price, "default_api_price"
        )
        self.pricer = token_pricer(client, default_input_token_price, default_output_token_price)
        self.default_input_token_price, self.default_output_token_price = self.pricer.defaults
        self.prices_configured = self.pricer.defaults_configured
        # Without auto_flush, batches go out when full or on flush() (the hour
        # is only there to keep every wait bounded).
        self.flush_interval = flush_interval if auto_flush else 3600.0
        self.batch_size = batch_size
        self.max_queue_size = max_queue_size
        self.outbox = outbox_for(client) if outbox is _DEFAULT else as_outbox(outbox)
        if durable and self.outbox is None:
            raise AgentMeterConfigurationError("durable=True needs an outbox")
        self.outbox = usable(self.outbox, durable)
        self.durable = durable
        self.on_full = on_full
        self.on_error = on_error
        self.block_timeout = block_timeout
        self.flush_timeout = flush_timeout
        self.shutdown_timeout = shutdown_timeout
        self.replay_interval = replay_interval
        self._closed = False
        self._reset_runtime()
        register_tracker(self)

    def _reset_runtime(self) -> None:
        """Fresh queue, counters and (lazily) worker: at start, and in a forked child."""
        self._start_lock = threading.Lock()
        self._queue = EventQueue(self.max_queue_size, self.batch_size)
        self._counters = Counters()
        self._overflow = Overflow(
            self._queue,
            self._counters,
            self.outbox,
            on_full=self.on_full,
            durable=self.durable,
            block_timeout=self.block_timeout,
        )
        self._deliverer: Deliverer | None = None
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        return (
            f"AgentMeterTracker(project_id={self.project_id!r}, agent_id={self.agent_id!r}, "
            f"outbox={self.outbox!r}, durable={self.durable})"
        )

    # ------------------------------------------------------------ hot path

    def track_api_request_pay(
        self,
        api_calls: int = 1,
        unit_price: Any = None,
        user_id: str | None = None,
        metadata: dict[str, Any] | None = None,
        *,
        project_id: str | None = None,
        agent_id: str | None = None,
        event_id: str | None = None,
        timestamp: datetime | None = None,
    ) -> str:
        """Charge ``api_calls x unit_price``; returns the event id at once."""
        return self._submit(
            api_request_event(
                project_id or self.project_id,
                agent_id or self.agent_id,
                user_id or self.user_id,
                api_calls,
                self.default_api_price if unit_price is None else unit_price,
                metadata,
                event_id,
                timestamp,
            )
        )

    def track_token_based_pay(
        self,
        tokens_in: int = 0,
        tokens_out: int = 0,
        input_token_price: Any = None,
        output_token_price: Any = None,
        user_id: str | None = None,
        metadata: dict[str, Any] | None = None,
        *,
        project_id: str | None = None,
        agent_id: str | None = None,
        event_id: str | None = None,
        timestamp: datetime | None = None,
        model: str | None = None,
        on_unknown_model: OnUnknownModel = "raise",
        cached_tokens_in: int = 0,
        cache_write_tokens: int = 0,
        cached_input_token_price: Any = None,
        cache_write_token_price: Any = None,
    ) -> str:
        """Charge for tokens; returns the event id at once. Prices not given are the
        model's, else the defaults (:mod:`agentmeter.core.token_prices`).

        ``cached_tokens_in`` (a part of ``tokens_in``) and ``cache_write_tokens``
        (on top of it) are billed at their own prices, when the model has them."""
        project = project_id or self.project_id
        given = (
            input_token_price,
            output_token_price,
            cached_input_token_price,
            cache_write_token_price,
        )
        priced = None
        if model is None and metadata is None:  # names no model: the defaults, at once
            if input_token_price is None:
                input_token_price = self.default_input_token_price
            if output_token_price is None:
                output_token_price = self.default_output_token_price
        elif input_token_price is None or output_token_price is None or model is not None:
            priced = self.pricer.price_queued(
                model, metadata, tokens_in, given, project, on_unknown_model
            )
            input_token_price, output_token_price, metadata = priced[0], priced[1], priced[4]
        event = token_event(
            project,
            agent_id or self.agent_id,
            user_id or self.user_id,
            tokens_in,
            tokens_out,
            input_token_price,
            output_token_price,
            metadata,
            event_id,
            timestamp,
        )
        if priced is not None:
            if priced[6]:  # priced without a fresh project table: settled at finalize
                event[REPRICE] = (self.pricer.book, given, priced[5])
            cached_input_token_price, cache_write_token_price = priced[2], priced[3]
        if cached_tokens_in or cache_write_tokens:
            add_token_classes(
                event,
                None,
                cached_tokens_in,
                cache_write_tokens,
                cached_input_token_price if cached_tokens_in else None,
                cache_write_token_price if cache_write_tokens else None,
            )
        return self._submit(event)

    def track_instant_pay(
        self,
        amount: Any,
        description: str = "",
        user_id: str | None = None,
        metadata: dict[str, Any] | None = None,
        *,
        project_id: str | None = None,
        agent_id: str | None = None,
        event_id: str | None = None,
        timestamp: datetime | None = None,
    ) -> str:
        """Charge ``amount``; returns the event id at once."""
        return self._submit(
            instant_event(
                project_id or self.project_id,
                agent_id or self.agent_id,
                user_id or self.user_id,
                amount,
                description,
                metadata,
                event_id,
                timestamp,
            )
        )

    def track_event(self, event: MeterEvent) -> str:
        """Queue an event built as a model (validated already)."""
        return self._submit(event.to_dict())

    def _may_wait(self) -> bool:
        """Whether a track call may touch the disk or wait: durable, a full queue, closed."""
        return self.durable or len(self._queue) >= self.max_queue_size or self._closed

    def _submit(self, event: WireEvent) -> str:
        if self._closed:
            return self._overflow.after_close(event)
        if self._thread is None:
            self._start()
        if self.durable:
            assert self.outbox is not None
            self.outbox.put_durable(finalize(event))
        if not self._queue.put_nowait(event):
            self._overflow.take(event)
        return str(event["id"])

    # ------------------------------------------------------------ lifecycle

    def _start(self) -> None:
        with self._start_lock:
            if self._thread is not None:
                return
            self._deliverer = Deliverer(
                self.client,
                self._queue,
                self.outbox,
                self._counters,
                flush_interval=self.flush_interval,
                replay_interval=self.replay_interval,
                durable=self.durable,
                on_error=self.on_error,
            )
            self._overflow.deliverer = self._deliverer
            thread = threading.Thread(
                target=self._deliverer.run, name="agentmeter-delivery", daemon=True
            )
            thread.start()
            self._thread = thread
            hold_until_closed(self)  # so atexit still finds it if the app drops it

    def start(self) -> None:
        """Start the worker now (it starts by itself on the first event); replays the outbox."""
        if not self._closed:
            self._start()

    def flush(self, timeout: float | None = None) -> bool:
        """Deliver everything tracked so far; wait at most ``timeout`` seconds.

        True when every event tracked before the call reached the server and
        the outbox is empty; False on timeout (nothing is lost: what is left
        stays queued or in the outbox).
        """
        deadline = time.monotonic() + (self.flush_timeout if timeout is None else timeout)
        if self._thread is None:
            self._start()
        assert self._deliverer is not None
        assert self._thread is not None
        target = self._queue.accepted + self._counters.direct
        return self._deliverer.wait_until_settled(target, deadline, self._thread)

    def close(self, timeout: float | None = None) -> None:
        """Flush for at most ``timeout`` seconds, stop, and put what is left in the outbox."""
        if self._closed:
            return
        self._closed = True
        release_closed(self)
        try:
            self._shut_down(self.shutdown_timeout if timeout is None else timeout)
        except Exception:  # closing runs in the app's own code paths (and at exit)
            logger.exception("agentmeter: closing the tracker failed")

    def _shut_down(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        if self._thread is not None:
            assert self._deliverer is not None
            if not self._deliverer.server_down:  # else waiting only delays the exit
                self.flush(max(0.0, deadline - time.monotonic()))
            self._deliverer.stop.set()
            self._queue.wake()
            self._thread.join(max(0.05, deadline - time.monotonic()))
        self._overflow.keep_leftovers()

    stop = close

    def after_fork_in_child(self) -> None:
        """The child starts empty: the parent's queued events are the parent's to send."""
        self._reset_runtime()

    def __enter__(self) -> AgentMeterTracker:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def stats(self) -> TrackerStats:
        return self._counters.stats(len(self._queue), self.outbox)
