"""Budget guards: check a user's meter before work runs, without overspending in a burst.

The server's meter (``threshold_amount``, ``current_usage``) is read at most
once per ``ttl`` seconds per user. Between reads, what this process has
charged but the cached reading may not include is *reserved* locally, so
a burst of calls sees its own spending at once:

    allowed  <=>  cached usage + reserved + cost <= threshold

A check reserves its (estimated) cost; the reservation becomes the
event's real cost, under the event's id, just before it is tracked, or is
released if nothing is billed.
When the tracker has delivered an event, the next reading of the meter
includes it, and its reservation is dropped then. Readings are
conservative: a cost may briefly count twice, never zero times. A meter
that cannot be read is allowed (fail-open, logged) and asked again after
the TTL; with ``strict`` the read error is raised.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import NamedTuple, Protocol

from ..errors import AgentMeterError, BudgetExceededError
from ..models import UserMeter
from ..pricing import MONEY_CONTEXT, ZERO

logger = logging.getLogger("agentmeter")
Key = tuple[str, str]  # (project_id, user_id)


@dataclass
class _UserState:
    lock: threading.Lock = field(default_factory=threading.Lock)  # one meter read at a time
    threshold: Decimal | None = None
    usage: Decimal = ZERO
    read_at: float = float("-inf")
    failed_at: float = float("-inf")  # the last read that failed (fail-open)
    reserved: Decimal = ZERO  # charged here, maybe not in ``usage`` yet
    delivered: Decimal = ZERO  # the part of ``reserved`` the server has by now


class Reservation(NamedTuple):  # a tuple: cheap to make on every metered call
    key: Key
    cost: Decimal


class MeterReader(Protocol):
    """Where the guard reads a user's meter: the client (a Protocol, so this
    module does not import the client, which holds a guard)."""

    def get_user_meter(
        self, user_id: str | None = None, project_id: str | None = None
    ) -> UserMeter: ...


class BudgetGuard:
    """One per client (``client.budget``). Thread-safe."""

    def __init__(self, client: MeterReader, ttl: float = 5.0) -> None:
        self.client = client
        self.ttl = ttl
        self._lock = threading.Lock()
        self._users: dict[Key, _UserState] = {}
        self._events: dict[str, Reservation] = {}  # tracked, not yet delivered

    def _state(self, key: Key) -> _UserState:
        state = self._users.get(key)  # states are never removed: no lock to find one
        if state is not None:
            return state
        with self._lock:
            state = self._users.get(key)
            if state is None:
                state = self._users[key] = _UserState()
            return state

    def reserve(
        self, project_id: str, user_id: str, cost: Decimal, *, strict: bool = False
    ) -> Reservation:
        """Raise :class:`BudgetExceededError` if ``cost`` does not fit, else hold it."""
        key = (project_id, user_id)
        state = self._state(key)
        with state.lock:
            now = time.monotonic()
            # A meter that cannot be read is asked again after the TTL, not on
            # every call (a strict check asks again at once).
            if now - state.read_at >= self.ttl and (strict or now - state.failed_at >= self.ttl):
                self._read(key, state, strict)
            with self._lock:
                spent = MONEY_CONTEXT.add(state.usage, state.reserved)
                wanted = MONEY_CONTEXT.add(spent, cost)
                limit = state.threshold
                if limit is not None and (wanted > limit or (cost == 0 and spent >= limit)):
                    raise BudgetExceededError(user_id, limit, spent, cost)
                state.reserved = MONEY_CONTEXT.add(state.reserved, cost)
        return Reservation(key, cost)

    def watching(self, project_id: str, user_id: str) -> Reservation | None:
        """An empty reservation if this guard keeps a reading of the user's meter.

        Costs billed to such a user without a check must still be counted
        (commit them on it) until the server's meter includes them.
        """
        key = (project_id, user_id)
        return Reservation(key, ZERO) if key in self._users else None

    def _read(self, key: Key, state: _UserState, strict: bool) -> None:
        with self._lock:
            delivered_before = state.delivered
        try:
            meter = self.client.get_user_meter(user_id=key[1], project_id=key[0])
        except AgentMeterError as exc:
            if strict:
                raise
            # Fail open: a meter we cannot read must not stop the user's work.
            state.failed_at = time.monotonic()
            logger.warning("agentmeter could not read the meter of %r (%s); allowing", key[1], exc)
            return
        with self._lock:
            # What was delivered before the read is in the server's usage now.
            state.reserved = MONEY_CONTEXT.subtract(state.reserved, delivered_before)
            state.delivered = MONEY_CONTEXT.subtract(state.delivered, delivered_before)
            state.threshold = meter.threshold_amount
            state.usage = meter.current_usage
            state.read_at = time.monotonic()
            state.failed_at = float("-inf")

    def commit(self, reservation: Reservation, event_id: str | None, cost: Decimal) -> Reservation:
        """The work is billed ``cost`` as event ``event_id`` (None: nothing billed).

        Call it before the event is handed to the tracker, so that its
        delivery is always matched. Returns what is held now.
        """
        with self._lock:
            state = self._users[reservation.key]
            state.reserved = MONEY_CONTEXT.add(
                MONEY_CONTEXT.subtract(state.reserved, reservation.cost), cost
            )
            held = Reservation(reservation.key, cost)
            if event_id is not None and cost:
                self._events[event_id] = held
        return held

    def release(self, reservation: Reservation) -> None:
        self.commit(reservation, None, ZERO)

    def cancel(self, held: Reservation, event_id: str) -> None:
        """Undo :meth:`commit`: the event was not tracked after all."""
        with self._lock:
            self._events.pop(event_id, None)
        self.release(held)

    def delivered(self, event_ids: list[str]) -> None:
        """The tracker delivered these events (called from its worker)."""
        if not self._events:
            return
        with self._lock:
            for event_id in event_ids:
                held = self._events.pop(event_id, None)
                if held is not None:
                    state = self._users[held.key]
                    state.delivered = MONEY_CONTEXT.add(state.delivered, held.cost)

    def forget(self, project_id: str, user_id: str) -> None:
        """Drop the cached reading (after the meter was set or reset)."""
        with self._lock:
            state = self._users.get((project_id, user_id))
            if state is not None:
                state.read_at = float("-inf")
                # Delivered costs were wiped by a reset or are in the next read.
                state.reserved = MONEY_CONTEXT.subtract(state.reserved, state.delivered)
                state.delivered = ZERO
