"""What the decorators and with-blocks share: where events go, what they charge,
budget checks, and fail-open error handling.

A capture surface never speaks HTTP: it hands events to a tracker (the
client's default one, ``client.tracker``, when given a client), so the
wrapped code never waits for the network.

The client and tracker classes are imported at module level on purpose: an
import statement inside ``tracker_of`` cost about a microsecond per metered call.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from ..client import AgentMeterClient
from ..core.ids import new_event_id
from ..errors import AgentMeterConfigurationError, AgentMeterValidationError, BudgetExceededError
from ..models import PaymentType
from ..pricing import ZERO, api_request_cost, to_count, to_money, token_cost
from ..tracker import AgentMeterTracker
from .budget import BudgetGuard, Reservation
from .usage import TokenUsage

logger = logging.getLogger("agentmeter")
# The members, read once: ``PaymentType.X`` costs about 0.1 us per read (the
# enum class's attribute lookup), and a metered call read several.
API_REQUEST_PAY = PaymentType.API_REQUEST_PAY
TOKEN_BASED_PAY = PaymentType.TOKEN_BASED_PAY
INSTANT_PAY = PaymentType.INSTANT_PAY


class _ErrorCount:
    """How many metering faults were swallowed (fail-open) in this process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.value = 0

    def add(self) -> None:
        with self._lock:
            self.value += 1


metering_errors = _ErrorCount()


def report_fault(exc: BaseException, where: str, strict: bool) -> None:
    """A metering fault: raise it if ``strict``, else log and count it."""
    if strict or isinstance(exc, BudgetExceededError):
        raise exc
    metering_errors.add()
    logger.warning("agentmeter: metering %s failed, the call was not billed: %r", where, exc)


def tracker_of(sink: Any) -> AgentMeterTracker:
    """The tracker behind a client (its default tracker) or a tracker itself."""
    if isinstance(sink, AgentMeterTracker):
        return sink
    if isinstance(sink, AgentMeterClient):
        return sink.tracker
    raise TypeError(f"expected an AgentMeterClient or AgentMeterTracker, got {type(sink).__name__}")


_environment_client: AgentMeterClient | None = None
_environment_client_lock = threading.Lock()


def environment_client() -> AgentMeterClient:
    """One client per process configured from ``AGENTMETER_*``: what
    ``meter_langchain()`` and ``wrap()`` bill through when given no client."""
    global _environment_client
    with _environment_client_lock:
        if _environment_client is None:
            _environment_client = AgentMeterClient()
        return _environment_client


def check_sink(sink: Any) -> None:
    if not isinstance(sink, (AgentMeterClient, AgentMeterTracker)):
        raise TypeError(
            f"the first argument must be an AgentMeterClient or AgentMeterTracker, "
            f"got {type(sink).__name__}"
        )


def client_of(sink: AgentMeterClient | AgentMeterTracker) -> AgentMeterClient:
    """The client behind a sink; a tracker built on another sender has none to check budgets."""
    client = sink if isinstance(sink, AgentMeterClient) else sink.client
    if not isinstance(client, AgentMeterClient):
        raise AgentMeterConfigurationError(
            "enforce_budget needs a tracker built on an AgentMeterClient (it reads the meters)"
        )
    return client


def _optional_model(value: Any) -> str | None:
    if value is None or (isinstance(value, str) and value):
        return value
    raise AgentMeterValidationError.for_field("model", "must be a non-empty model name")


@dataclass(slots=True)  # not frozen: that would cost a microsecond per with-block
class Charge:
    """What a capture surface bills, fixed when it is declared (and validated then).

    Treat it as immutable.
    """

    payment_type: PaymentType
    api_calls: int = 1
    unit_price: Decimal | None = None
    input_token_price: Decimal | None = None
    output_token_price: Decimal | None = None
    amount: Decimal | None = None
    description: str = ""
    project_id: str | None = None
    agent_id: str | None = None
    model: str | None = None  # priced from the catalog when no prices are given

    @classmethod
    def declare(
        cls,
        payment_type: PaymentType | str,
        *,
        api_calls: Any = 1,
        unit_price: Any = None,
        input_token_price: Any = None,
        output_token_price: Any = None,
        amount: Any = None,
        description: str | None = "",
        project_id: str | None = None,
        agent_id: str | None = None,
        model: Any = None,
    ) -> Charge:
        # Named keywords, not **settings: a with-block declares its charge each
        # time it is made, and a dict of settings read with .get() cost 1 us.
        try:
            kind = payment_type if type(payment_type) is PaymentType else PaymentType(payment_type)
        except ValueError:
            raise AgentMeterValidationError.for_field(
                "payment_type", f"must be one of {[p.value for p in PaymentType]}"
            ) from None
        return cls(
            kind,
            to_count(api_calls, "api_calls"),
            None if unit_price is None else to_money(unit_price, "unit_price"),
            None if input_token_price is None else to_money(input_token_price, "input_token_price"),
            None
            if output_token_price is None
            else to_money(output_token_price, "output_token_price"),
            None if amount is None else to_money(amount, "amount"),
            description or "",
            project_id,
            agent_id,
            None if model is None else _optional_model(model),
        )

    def cost(
        self, tracker: AgentMeterTracker, api_calls: Any, tokens: tuple[Any, ...], amount: Any
    ) -> Decimal:
        """What :meth:`submit` with these values charges (0 for tokens not yet known)."""
        if self.payment_type is API_REQUEST_PAY:
            price = self.unit_price if self.unit_price is not None else tracker.default_api_price
            return api_request_cost(to_count(api_calls, "api_calls"), price)
        if self.payment_type is TOKEN_BASED_PAY:
            given = (self.input_token_price, self.output_token_price, None, None)
            project = self.project_id or tracker.project_id
            priced = tracker.pricer.price_queued(
                self.model, None, tokens[0], given, project, "record"
            )
            usage = TokenUsage(*tokens)
            return token_cost(
                to_count(usage.tokens_in, "tokens_in"),
                to_count(usage.tokens_out, "tokens_out"),
                priced[0],
                priced[1],
                to_count(usage.cached_tokens_in, "cached_tokens_in"),
                to_count(usage.cache_write_tokens, "cache_write_tokens"),
                priced[2],
                priced[3],
            )
        return ZERO if amount is None else to_money(amount, "amount")

    def submit(
        self,
        tracker: AgentMeterTracker,
        user_id: str | None,
        metadata: dict[str, Any],
        *,
        api_calls: Any = None,
        tokens: tuple[Any, ...] = (0, 0),
        amount: Any = None,
        description: str | None = None,
        event_id: str | None = None,
    ) -> str | None:
        """Track the event; None when there is nothing to bill (an instant charge of 0).

        ``event_id``: the id to give the event (a new one when None).
        """
        if self.payment_type is API_REQUEST_PAY:
            return tracker.track_api_request_pay(
                self.api_calls if api_calls is None else api_calls,
                self.unit_price,
                user_id,
                metadata,
                project_id=self.project_id,
                agent_id=self.agent_id,
                event_id=event_id,
            )
        if self.payment_type is TOKEN_BASED_PAY:
            cached, written = (tokens[2], tokens[3]) if len(tokens) > 2 else (0, 0)
            return tracker.track_token_based_pay(
                tokens[0],
                tokens[1],
                self.input_token_price,
                self.output_token_price,
                user_id,
                metadata,
                project_id=self.project_id,
                agent_id=self.agent_id,
                event_id=event_id,
                model=self.model,
                on_unknown_model="record",  # background capture never raises for a price
                cached_tokens_in=cached,
                cache_write_tokens=written,
            )
        charge = self.amount if amount is None else amount
        if charge is None or to_money(charge, "amount") == 0:
            return None
        text = self.description if description is None else description
        return tracker.track_instant_pay(
            charge,
            text,
            user_id,
            metadata,
            project_id=self.project_id,
            agent_id=self.agent_id,
            event_id=event_id,
        )


def track(
    charge: Charge,
    tracker: AgentMeterTracker,
    budget: tuple[BudgetGuard, Reservation] | None,
    cost: Callable[[], Decimal],
    user_id: str | None,
    metadata: dict[str, Any],
    *,
    api_calls: Any = None,
    tokens: tuple[Any, ...] = (0, 0),
    amount: Any = None,
    description: str | None = None,
) -> str | None:
    """Track the event and settle the budget reservation (if any) with its real cost.

    The guard is told the event's id and cost *before* the tracker has the
    event: a delivery that follows at once is then matched to it, instead of
    its cost staying counted after the server's meter includes it.

    (The values are passed on by name: forwarding ``**values`` through two
    calls cost about 0.5 us per metered call.)
    """
    if budget is None:
        budget = _watched(charge, tracker, user_id)
        if budget is None:
            return charge.submit(
                tracker,
                user_id,
                metadata,
                api_calls=api_calls,
                tokens=tokens,
                amount=amount,
                description=description,
            )
    guard, reservation = budget
    try:
        real_cost = cost()
    except BaseException:
        guard.release(reservation)
        raise
    event_id = new_event_id()
    held = guard.commit(reservation, event_id, real_cost)
    try:
        tracked = charge.submit(
            tracker,
            user_id,
            metadata,
            api_calls=api_calls,
            tokens=tokens,
            amount=amount,
            description=description,
            event_id=event_id,
        )
    except BaseException:
        guard.cancel(held, event_id)
        raise
    if tracked is None:  # nothing was billed after all
        guard.cancel(held, event_id)
    return tracked


def _watched(
    charge: Charge, tracker: AgentMeterTracker, user_id: str | None
) -> tuple[BudgetGuard, Reservation] | None:
    """Unchecked work billed to a user whose budget is checked elsewhere still counts."""
    guard: BudgetGuard | None = getattr(tracker.client, "_budget", None)
    if guard is None:
        return None
    held = guard.watching(charge.project_id or tracker.project_id, user_id or tracker.user_id)
    return None if held is None else (guard, held)


def reserve_budget(
    sink: AgentMeterClient | AgentMeterTracker,
    charge: Charge,
    user_id: str | None,
    estimate: Decimal,
    strict: bool,
) -> tuple[BudgetGuard, Reservation]:
    """Check the user's budget before work runs (raises BudgetExceededError)."""
    tracker = tracker_of(sink)
    guard = client_of(sink).budget
    reservation = guard.reserve(
        charge.project_id or tracker.project_id,
        user_id or tracker.user_id,
        estimate,
        strict=strict,
    )
    return guard, reservation
