"""Wrapping a callable so each call is billed once: plain, async, generator, async generator.

What is bound once, when decorating: the charge (validated), the position
of the ``user_id`` argument in the signature, the function's name. What
happens per call: an optional budget check before, the call itself, and
one tracked event after (on success; on failure only with
``bill_on_error``). A generator is billed once, when its iteration ends.
Exceptions of the wrapped code pass through untouched; metering faults are
logged and counted, never raised (unless ``strict``).
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import time
from collections.abc import AsyncGenerator, Callable, Generator
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from ..core.checks import check_metadata
from ..pricing import ZERO, to_count
from .attribution import current_attribution
from .budget import BudgetGuard, Reservation
from .charge import TOKEN_BASED_PAY, Charge, report_fault, reserve_budget, track, tracker_of
from .usage import extract_stream_usage, extract_usage

if TYPE_CHECKING:
    from ..tracker import AgentMeterTracker

logger = logging.getLogger("agentmeter")
METERED_MARK = "__agentmeter_metered__"


@dataclass(slots=True)
class _Call:
    user_id: str | None
    started: float
    charge_it: bool = True
    budget: tuple[BudgetGuard, Reservation] | None = None


class Meter:
    """Everything about one decorated callable that does not change per call."""

    def __init__(
        self,
        sink: Any,
        charge: Charge,
        func: Callable[..., Any],
        *,
        user_id_param: str,
        tokens_extractor: Callable[..., Any] | None,
        condition: Callable[..., Any] | None,
        enforce_budget: bool,
        bill_on_error: bool,
        strict: bool,
        metadata: dict[str, Any] | None,
    ) -> None:
        self.sink = sink
        self.charge = charge
        self.name = getattr(func, "__qualname__", repr(func))
        self.user_id_param = user_id_param
        self.user_position, self.user_default = _position(func, user_id_param)
        self.tokens_extractor = tokens_extractor
        self.condition = condition
        self.enforce_budget = enforce_budget
        self.bill_on_error = bill_on_error
        self.strict = strict
        self.metadata = check_metadata(metadata)
        self._unknown_shape_logged = False
        self._fixed_cost: tuple[AgentMeterTracker, Decimal] | None = None

    def user_of(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str | None:
        user = kwargs.get(self.user_id_param)
        if user is None:
            position = self.user_position
            if position is not None and len(args) > position:
                user = args[position]
            elif self.user_id_param not in kwargs:  # not passed: the parameter's default
                user = self.user_default
        if user is None:  # an ``attribute(user_id=...)`` block, else the tracker's user
            attributed = current_attribution()
            return None if attributed is None else attributed.user_id
        return str(user)

    # -------------------------------------------------------------- before

    def before(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> _Call:
        call = _Call(self.user_of(args, kwargs), time.perf_counter())
        if self.condition is not None:
            try:
                call.charge_it = bool(self.condition(*args, **kwargs))
            except Exception as exc:
                call.charge_it = False
                report_fault(exc, f"condition of {self.name}", self.strict)
        if self.enforce_budget and call.charge_it:
            try:
                call.budget = reserve_budget(
                    self.sink, self.charge, call.user_id, self._estimate(), self.strict
                )
            except Exception as exc:
                report_fault(exc, f"budget check of {self.name}", self.strict)
        return call

    def _estimate(self) -> Decimal:
        if self.charge.payment_type is TOKEN_BASED_PAY:
            return ZERO  # unknown until the call returns
        return self._cost(tracker_of(self.sink), (0, 0))

    def _cost(self, tracker: AgentMeterTracker, tokens: tuple[int, ...]) -> Decimal:
        """What a call bills; fixed but for tokens, so worked out once per tracker."""
        if self.charge.payment_type is TOKEN_BASED_PAY:
            return self.charge.cost(tracker, 0, tokens, None)
        fixed = self._fixed_cost
        if fixed is None or fixed[0] is not tracker:
            cost = self.charge.cost(tracker, self.charge.api_calls, tokens, self.charge.amount)
            self._fixed_cost = fixed = (tracker, cost)
        return fixed[1]

    # --------------------------------------------------------------- after

    def succeeded(
        self, call: _Call, args: tuple[Any, ...], kwargs: dict[str, Any], result: Any, stream: bool
    ) -> None:
        self._bill(call, args, kwargs, result, stream, {})

    def failed(
        self,
        call: _Call,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        exc: BaseException,
        partial: Any = None,
        stream: bool = False,
    ) -> None:
        if self.bill_on_error and isinstance(exc, Exception):
            self._bill(
                call,
                args,
                kwargs,
                partial,
                stream,
                {"status": "error", "error": type(exc).__name__},
            )
        elif call.budget is not None:
            guard, reservation = call.budget
            guard.release(reservation)

    def _bill(
        self,
        call: _Call,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        result: Any,
        stream: bool,
        extra: dict[str, Any],
    ) -> None:
        budget = call.budget  # settled here: by track(), or released
        try:
            if call.charge_it:
                tracker = tracker_of(self.sink)
                tokens = self._tokens(args, kwargs, result, stream)
                metadata = {
                    **self.metadata,
                    "function": self.name,
                    "duration_ms": int((time.perf_counter() - call.started) * 1000),
                    **extra,
                }
                held, budget = budget, None
                track(
                    self.charge,
                    tracker,
                    held,
                    lambda: self._cost(tracker, tokens),
                    call.user_id,
                    metadata,
                    tokens=tokens,
                )
        except Exception as exc:
            report_fault(exc, f"billing of {self.name}", self.strict)
        finally:
            if budget is not None:
                budget[0].release(budget[1])

    def _tokens(
        self, args: tuple[Any, ...], kwargs: dict[str, Any], result: Any, stream: bool
    ) -> tuple[int, ...]:
        if self.charge.payment_type is not TOKEN_BASED_PAY:
            return (0, 0)
        if self.tokens_extractor is not None:
            counts = tuple(self.tokens_extractor(*args, result=result, **kwargs))
            names = _TOKEN_CLASSES[: max(len(counts), 2)]  # (in, out), or with cache classes
            return tuple(to_count(count, name) for count, name in zip(counts, names, strict=True))
        found = extract_stream_usage(result) if stream else extract_usage(result)
        if found is None:
            if not self._unknown_shape_logged:
                self._unknown_shape_logged = True
                logger.debug(
                    "agentmeter: no token usage found in %s's result; billing 0 tokens", self.name
                )
            return (0, 0)
        return found


_TOKEN_CLASSES = ("tokens_in", "tokens_out", "cached_tokens_in", "cache_write_tokens")


def _position(func: Callable[..., Any], name: str) -> tuple[int | None, Any]:
    """Where ``name`` sits among the positional arguments, and its default (bound once)."""
    try:
        parameters = list(inspect.signature(func).parameters.values())
    except (TypeError, ValueError):
        return None, None
    for index, parameter in enumerate(parameters):
        if parameter.name == name:
            positional = (parameter.POSITIONAL_ONLY, parameter.POSITIONAL_OR_KEYWORD)
            default = None if parameter.default is parameter.empty else parameter.default
            return (index if parameter.kind in positional else None), default
    return None, None


# ------------------------------------------------------------------ wrappers


def wrap(meter: Meter, func: Callable[..., Any]) -> Callable[..., Any]:
    """The right wrapper for the kind of callable ``func`` is."""
    if inspect.isasyncgenfunction(func):
        wrapper = _wrap_async_generator(meter, func)
    elif inspect.iscoroutinefunction(func):
        wrapper = _wrap_async(meter, func)
    elif inspect.isgeneratorfunction(func):
        wrapper = _wrap_generator(meter, func)
    else:
        wrapper = _wrap_sync(meter, func)
    setattr(wrapper, METERED_MARK, True)
    return wrapper


def _wrap_sync(meter: Meter, func: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(func)
    def metered(*args: Any, **kwargs: Any) -> Any:
        call = meter.before(args, kwargs)
        try:
            result = func(*args, **kwargs)
        except BaseException as exc:
            meter.failed(call, args, kwargs, exc)
            raise
        meter.succeeded(call, args, kwargs, result, stream=False)
        return result

    return metered


def _wrap_async(meter: Meter, func: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(func)
    async def metered(*args: Any, **kwargs: Any) -> Any:
        call = await _before_async(meter, args, kwargs)
        try:
            result = await func(*args, **kwargs)
        except BaseException as exc:
            meter.failed(call, args, kwargs, exc)
            raise
        meter.succeeded(call, args, kwargs, result, stream=False)
        return result

    return metered


async def _before_async(meter: Meter, args: tuple[Any, ...], kwargs: dict[str, Any]) -> _Call:
    if meter.enforce_budget:  # may read the meter over the network: not on the loop
        return await asyncio.to_thread(meter.before, args, kwargs)
    return meter.before(args, kwargs)


def _wrap_generator(meter: Meter, func: Callable[..., Any]) -> Callable[..., Any]:
    keep = meter.charge.payment_type is TOKEN_BASED_PAY

    @functools.wraps(func)
    def metered(*args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
        call = meter.before(args, kwargs)
        chunks: list[Any] = []
        try:
            returned = yield from _recorded(func(*args, **kwargs), chunks if keep else None)
        except GeneratorExit:  # the consumer stopped early: bill what it used
            meter.succeeded(call, args, kwargs, chunks, stream=True)
            raise
        except BaseException as exc:
            meter.failed(call, args, kwargs, exc, chunks, stream=True)
            raise
        meter.succeeded(call, args, kwargs, chunks, stream=True)
        return returned

    return metered


def _recorded(
    generator: Generator[Any, Any, Any], chunks: list[Any] | None
) -> Generator[Any, Any, Any]:
    """Yield from ``generator`` (send/throw included), keeping each item if asked."""
    try:
        item = next(generator)
        while True:
            if chunks is not None:
                chunks.append(item)
            try:
                sent = yield item
            except GeneratorExit:
                generator.close()
                raise
            except BaseException as exc:
                item = generator.throw(exc)
            else:
                item = generator.send(sent)
    except StopIteration as stop:
        return stop.value


def _wrap_async_generator(meter: Meter, func: Callable[..., Any]) -> Callable[..., Any]:
    keep = meter.charge.payment_type is TOKEN_BASED_PAY

    @functools.wraps(func)
    async def metered(*args: Any, **kwargs: Any) -> AsyncGenerator[Any, Any]:
        call = await _before_async(meter, args, kwargs)
        chunks: list[Any] = []
        generator = func(*args, **kwargs)
        try:
            # As _recorded: asend() and athrow() reach the wrapped generator.
            item = await generator.__anext__()
            while True:
                if keep:
                    chunks.append(item)
                try:
                    sent = yield item
                except GeneratorExit:
                    await generator.aclose()
                    raise
                except BaseException as exc:
                    item = await generator.athrow(exc)
                else:
                    item = await generator.asend(sent)
        except StopAsyncIteration:
            pass
        except GeneratorExit:  # the consumer stopped early: bill what it used
            meter.succeeded(call, args, kwargs, chunks, stream=True)
            raise
        except BaseException as exc:
            meter.failed(call, args, kwargs, exc, chunks, stream=True)
            raise
        meter.succeeded(call, args, kwargs, chunks, stream=True)

    return metered
