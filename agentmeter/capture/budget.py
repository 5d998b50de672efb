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

Alerts (``on_threshold``): whenever the guard's count of a user's usage
changes (a reading, or a charge committed here), it checks the shares of
the threshold (50, 80, 100 percent by default) and calls the callback once
per share, user and meter period, outside its locks and with no network
call of its own. A reset (a reading with a new ``last_reset_at``, or lower
than the reading before) re-arms every share; a new threshold re-arms the
shares the usage no longer reaches (the server's rules for its webhooks).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import NamedTuple, Protocol

from ..core.webhook_models import DEFAULT_SHARES
from ..errors import AgentMeterError, AgentMeterValidationError, BudgetExceededError
from ..models import UserMeter
from ..pricing import MONEY_CONTEXT, ZERO, to_money

logger = logging.getLogger("agentmeter")
Key = tuple[str, str]  # (project_id, user_id)
# on_threshold(user_id, share, meter): ``share`` a percent (Decimal("80")); ``meter``
# the last reading, its current_usage replaced by what the guard counts.
ThresholdCallback = Callable[[str, Decimal, UserMeter], object]
Crossings = list[tuple[Decimal, UserMeter]]
_HUNDRED = Decimal(100)


@dataclass
class _UserState:
    lock: threading.Lock = field(default_factory=threading.Lock)  # one meter read at a time
    threshold: Decimal | None = None
    usage: Decimal = ZERO
    read_at: float = float("-inf")
    failed_at: float = float("-inf")  # the last read that failed (fail-open)
    reserved: Decimal = ZERO  # charged here, maybe not in ``usage`` yet
    delivered: Decimal = ZERO  # the part of ``reserved`` the server has by now
    pending: Decimal = ZERO  # the part of ``reserved`` held by checks, not billed yet
    meter: UserMeter | None = None  # the last reading
    fired: set[Decimal] = field(default_factory=set)  # shares announced this period


class Reservation(NamedTuple):  # a tuple: cheap to make on every metered call
    key: Key
    cost: Decimal
    checked: bool = False  # made by reserve(): an estimate, not a charge, until commit()


def threshold_shares_of(shares: Iterable[Decimal | int | str] | None) -> tuple[Decimal, ...]:
    """The shares of a threshold that alert, as percents: sorted, each above 0."""
    if shares is None:
        return DEFAULT_SHARES
    if isinstance(shares, (str, bytes)):
        raise AgentMeterValidationError.for_field("threshold_shares", "must be a list of percents")
    found = {to_money(share, "threshold_shares") for share in shares}
    if any(share <= 0 for share in found):
        raise AgentMeterValidationError.for_field(
            "threshold_shares", "each share is a percent above 0 (80 for 80%)"
        )
    return tuple(sorted(found))


class MeterReader(Protocol):
    """Where the guard reads a user's meter: the client (a Protocol, so this
    module does not import the client, which holds a guard)."""

    def get_user_meter(
        self, user_id: str | None = None, project_id: str | None = None
    ) -> UserMeter: ...


class BudgetGuard:
    """One per client (``client.budget``). Thread-safe.

    ``on_threshold`` and ``threshold_shares``: see the module's docstring
    (a client passes its own: ``AgentMeterClient(on_threshold=...)``).
    """

    def __init__(
        self,
        client: MeterReader,
        ttl: float = 5.0,
        *,
        on_threshold: ThresholdCallback | None = None,
        threshold_shares: Iterable[Decimal | int | str] | None = None,
    ) -> None:
        self.client = client
        self.ttl = ttl
        self.on_threshold = on_threshold
        self.threshold_shares = threshold_shares_of(threshold_shares)
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
        crossed: Crossings = []
        try:
            with state.lock:
                now = time.monotonic()
                # A meter that cannot be read is asked again after the TTL, not on
                # every call (a strict check asks again at once).
                if now - state.read_at >= self.ttl and (
                    strict or now - state.failed_at >= self.ttl
                ):
                    crossed = self._read(key, state, strict)
                with self._lock:
                    spent = MONEY_CONTEXT.add(state.usage, state.reserved)
                    wanted = MONEY_CONTEXT.add(spent, cost)
                    limit = state.threshold
                    if limit is not None and (wanted > limit or (cost == 0 and spent >= limit)):
                        raise BudgetExceededError(user_id, limit, spent, cost)
                    state.reserved = MONEY_CONTEXT.add(state.reserved, cost)
                    state.pending = MONEY_CONTEXT.add(state.pending, cost)
        finally:
            if crossed:  # outside the locks: the callback may use the client
                self._announce(user_id, crossed)
        return Reservation(key, cost, True)

    def watching(self, project_id: str, user_id: str) -> Reservation | None:
        """An empty reservation if this guard keeps a reading of the user's meter.

        Costs billed to such a user without a check must still be counted
        (commit them on it) until the server's meter includes them.
        """
        key = (project_id, user_id)
        return Reservation(key, ZERO) if key in self._users else None

    def _read(self, key: Key, state: _UserState, strict: bool) -> Crossings:
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
            return []
        with self._lock:
            # What was delivered before the read is in the server's usage now.
            state.reserved = MONEY_CONTEXT.subtract(state.reserved, delivered_before)
            state.delivered = MONEY_CONTEXT.subtract(state.delivered, delivered_before)
            state.threshold = meter.threshold_amount
            state.usage = meter.current_usage
            state.read_at = time.monotonic()
            state.failed_at = float("-inf")
            previous, state.meter = state.meter, meter
            if self.on_threshold is None:
                return []
            self._rearm(state, previous, meter)
            return self._crossings(state)

    def _rearm(self, state: _UserState, previous: UserMeter | None, meter: UserMeter) -> None:
        """A new period re-arms every share; a new threshold those no longer reached."""
        if previous is None or not state.fired:
            return
        if (
            meter.last_reset_at != previous.last_reset_at
            or meter.current_usage < previous.current_usage
        ):
            state.fired.clear()
        elif meter.threshold_amount != previous.threshold_amount:
            seen = self._seen(state)
            state.fired = {
                s for s in state.fired if (level := self._level(state, s)) and seen >= level
            }

    @staticmethod
    def _seen(state: _UserState) -> Decimal:
        """The usage the guard counts: the reading and what was billed here since."""
        return MONEY_CONTEXT.subtract(MONEY_CONTEXT.add(state.usage, state.reserved), state.pending)

    @staticmethod
    def _level(state: _UserState, share: Decimal) -> Decimal | None:
        if state.threshold is None:
            return None
        level = MONEY_CONTEXT.multiply(state.threshold, share / _HUNDRED)
        return level if level > 0 else None

    def _crossings(self, state: _UserState) -> Crossings:
        """The shares the usage has reached and not announced yet, marked now (under the lock)."""
        if state.meter is None or state.threshold is None:
            return []
        seen = self._seen(state)
        due = []
        for share in self.threshold_shares:
            if share not in state.fired:
                level = self._level(state, share)
                if level is not None and seen >= level:
                    state.fired.add(share)
                    due.append(share)
        if not due:
            return []
        meter = state.meter.model_copy(update={"current_usage": seen})
        return [(share, meter) for share in due]

    def _announce(self, user_id: str, crossed: Crossings) -> None:
        callback = self.on_threshold
        if callback is None:
            return
        for share, meter in crossed:
            try:
                callback(user_id, share, meter)
            except Exception:  # an alert must never break metering
                logger.exception(
                    "agentmeter: on_threshold failed for user %r at %s%%; metering goes on",
                    user_id,
                    share,
                )

    def commit(self, reservation: Reservation, event_id: str | None, cost: Decimal) -> Reservation:
        """The work is billed ``cost`` as event ``event_id`` (None: nothing billed).

        Call it before the event is handed to the tracker, so that its
        delivery is always matched. Returns what is held now.
        """
        crossed: Crossings = []
        with self._lock:
            state = self._users[reservation.key]
            state.reserved = MONEY_CONTEXT.add(
                MONEY_CONTEXT.subtract(state.reserved, reservation.cost), cost
            )
            if reservation.checked:
                state.pending = MONEY_CONTEXT.subtract(state.pending, reservation.cost)
            held = Reservation(reservation.key, cost)
            if event_id is not None and cost:
                self._events[event_id] = held
                if self.on_threshold is not None:
                    crossed = self._crossings(state)
        if crossed:  # outside the lock: the callback may use the client
            self._announce(reservation.key[1], crossed)
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
