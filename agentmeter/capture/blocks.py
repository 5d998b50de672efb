"""``with track_*(...)`` blocks: bill what a block of code used, once, when it ends.

>>> with track_token_based_pay(client, "proj", "agent", user_id="u1") as usage:  # doctest: +SKIP
...     reply = llm(prompt)
...     usage["tokens_in"] = reply.prompt_tokens
...     usage["tokens_out"] = reply.completion_tokens
...     usage["metadata"]["model"] = "gpt-4o"

Usable as ``with`` and ``async with``. The usage object is dict-like:
``api_calls``, ``tokens_in``, ``tokens_out``, ``cached_tokens_in`` (part of
``tokens_in``), ``cache_write_tokens`` (on top of it), ``amount``,
``description``, ``user_id`` and a ``metadata`` dict. If the block raises, the exception
passes through and nothing is billed (``bill_on_error=True`` bills it with
``metadata["status"] = "error"``). An instant charge of 0 records nothing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from types import TracebackType
from typing import Any

from ..core.checks import check_metadata
from ..models import PaymentType
from ..pricing import ZERO
from .budget import BudgetGuard, Reservation
from .charge import (
    API_REQUEST_PAY,
    INSTANT_PAY,
    TOKEN_BASED_PAY,
    Charge,
    check_sink,
    report_fault,
    reserve_budget,
    track,
    tracker_of,
)


class UsageContext:
    """The object a ``track_*`` block yields; also its context manager."""

    def __init__(
        self,
        sink: Any,
        charge: Charge,
        user_id: str | None = None,
        *,
        enforce_budget: bool = False,
        bill_on_error: bool = False,
        strict: bool = False,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        check_sink(sink)
        self.sink = sink
        self.charge = charge
        self.enforce_budget = enforce_budget
        self.bill_on_error = bill_on_error
        self.strict = strict
        self.data: dict[str, Any] = {
            "api_calls": charge.api_calls,
            "tokens_in": 0,
            "tokens_out": 0,
            "cached_tokens_in": 0,  # part of tokens_in, billed at the cache-read price
            "cache_write_tokens": 0,  # on top of tokens_in, billed at the cache-write price
            "amount": charge.amount if charge.amount is not None else ZERO,
            "description": charge.description,
            "user_id": user_id,
            "metadata": check_metadata(metadata),
        }
        self.event_id: str | None = None
        self._started = 0.0
        self._budget: tuple[BudgetGuard, Reservation] | None = None

    # dict-like access, as in AgentMeter 0.2
    def __getitem__(self, key: str) -> Any:
        return self.data[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.data[key] = value

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)

    def __iter__(self) -> Iterator[str]:
        return iter(self.data)

    def __enter__(self) -> UsageContext:
        self._started = time.perf_counter()
        if self.enforce_budget:
            self._reserve()
        return self

    def _reserve(self) -> None:
        try:
            self._budget = reserve_budget(
                self.sink, self.charge, self.data["user_id"], self._cost(), self.strict
            )
        except Exception as exc:
            report_fault(exc, "budget check", self.strict)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:  # never swallows the block's exception
        if exc is None or (self.bill_on_error and isinstance(exc, Exception)):
            self._bill({} if exc is None else {"status": "error", "error": type(exc).__name__})
        elif self._budget is not None:
            self._budget[0].release(self._budget[1])

    async def __aenter__(self) -> UsageContext:
        if self.enforce_budget:  # may read the meter over the network: not on the loop
            return await asyncio.to_thread(self.__enter__)
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, traceback)

    def _tokens(self) -> tuple[Any, ...]:
        data = self.data
        return (
            data["tokens_in"],
            data["tokens_out"],
            data.get("cached_tokens_in", 0),
            data.get("cache_write_tokens", 0),
        )

    def _cost(self) -> Decimal:
        return self.charge.cost(
            tracker_of(self.sink), self.data["api_calls"], self._tokens(), self.data["amount"]
        )

    def _bill(self, extra: dict[str, Any]) -> None:
        budget, self._budget = self._budget, None  # settled here: by track(), or released
        try:
            metadata = {
                **self.data["metadata"],
                "duration_ms": int((time.perf_counter() - self._started) * 1000),
                **extra,
            }
            held, budget = budget, None
            self.event_id = track(
                self.charge,
                tracker_of(self.sink),
                held,
                self._cost,
                self.data["user_id"],
                metadata,
                api_calls=self.data["api_calls"],
                tokens=self._tokens() if self.charge.payment_type is TOKEN_BASED_PAY else (0, 0),
                amount=self.data["amount"],
                description=self.data["description"],
            )
        except Exception as exc:
            report_fault(exc, "a with-block", self.strict)
        finally:
            if budget is not None:
                budget[0].release(budget[1])


def track_api_request_pay(
    client: Any,
    project_id: str | None = None,
    agent_id: str | None = None,
    user_id: str | None = None,
    unit_price: Any = None,
    **options: Any,
) -> UsageContext:
    """Bill ``usage["api_calls"]`` (default 1) x ``unit_price`` when the block ends."""
    charge = Charge.declare(
        API_REQUEST_PAY,
        unit_price=unit_price,
        project_id=project_id,
        agent_id=agent_id,
        api_calls=options.pop("api_calls", 1),
    )
    return UsageContext(client, charge, user_id, **options)


def track_token_based_pay(
    client: Any,
    project_id: str | None = None,
    agent_id: str | None = None,
    user_id: str | None = None,
    input_token_price: Any = None,
    output_token_price: Any = None,
    *,
    model: str | None = None,
    **options: Any,
) -> UsageContext:
    """Bill ``usage["tokens_in"]`` and ``usage["tokens_out"]`` when the block ends
    (at ``model``'s list prices when none are given)."""
    charge = Charge.declare(
        TOKEN_BASED_PAY,
        input_token_price=input_token_price,
        output_token_price=output_token_price,
        project_id=project_id,
        agent_id=agent_id,
        model=model,
    )
    return UsageContext(client, charge, user_id, **options)


def track_instant_pay(
    client: Any,
    project_id: str | None = None,
    agent_id: str | None = None,
    user_id: str | None = None,
    amount: Any = None,
    description: str | None = None,
    **options: Any,
) -> UsageContext:
    """Charge ``usage["amount"]`` when the block ends (0: nothing is recorded)."""
    charge = Charge.declare(
        INSTANT_PAY,
        amount=amount,
        description=description or "",
        project_id=project_id,
        agent_id=agent_id,
    )
    return UsageContext(client, charge, user_id, **options)


_BLOCKS: dict[PaymentType, Callable[..., UsageContext]] = {
    PaymentType.API_REQUEST_PAY: track_api_request_pay,
    PaymentType.TOKEN_BASED_PAY: track_token_based_pay,
    PaymentType.INSTANT_PAY: track_instant_pay,
}


def track_usage(
    client: Any,
    project_id: str | None = None,
    agent_id: str | None = None,
    user_id: str | None = None,
    payment_type: PaymentType | str = PaymentType.API_REQUEST_PAY,
    **settings: Any,
) -> UsageContext:
    """The block of ``payment_type``, with its settings (prices, amount, options)."""
    kind = Charge.declare(payment_type).payment_type
    return _BLOCKS[kind](client, project_id, agent_id, user_id, **settings)
