"""An endpoint written once, carried out by the sync client or the async one (sans-I/O).

An endpoint is a generator method of an endpoint group: it checks its
arguments, yields each request it needs as a :class:`Call`, receives the
parsed JSON answer at that ``yield`` (or has the transport's error raised
there, so ``except NotFoundError:`` reads as in plain code), and returns the
typed result. It does no I/O itself. Work that may block without being a
request (flushing the tracker before a meter reset, reading a project's
price table through the price book) is yielded as a :class:`Blocking` step.

Two drivers carry a plan out, and they are the only difference between the
clients:

- :func:`run`, the sync client's: each step in place, on the caller's thread;
- :func:`arun`, the async client's: each :class:`Call` awaited on an
  :class:`~agentmeter.transport.AsyncTransport`, each :class:`Blocking` step
  on a worker thread, so the event loop never waits on I/O.

:func:`endpoint` turns a plan method into the group's sync method (the one
``AgentMeterClient`` forwards to, with the plan's real signature) and keeps
the plan on it, where the async client finds it (:func:`plan_of`).

>>> def get_stats(query):                                   # doctest: +SKIP
...     answer = yield Call("GET", "/api/meter/stats", params=query)
...     return MeterStats.from_dict(answer)
"""

from __future__ import annotations

import functools
import inspect
import re
from collections.abc import Awaitable, Callable, Generator, Mapping
from dataclasses import dataclass
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar, cast

from ..transport import AsyncTransport, Transport

T = TypeVar("T")
R = TypeVar("R")
P = ParamSpec("P")


@dataclass(frozen=True)
class Call:
    """One request, as a transport's ``request`` takes it."""

    method: str
    path: str
    params: Mapping[str, Any] | None = None
    body: Any = None
    idempotent: bool = True
    # The tracker's wait between retries (shutdown cuts it short); None: the policy's.
    sleep: Callable[[float], None] | None = None
    # The body's media type when not application/json (passed on only when set).
    content_type: str | None = None


@dataclass(frozen=True)
class Blocking:
    """Work that may block but is no request: done in place by the sync client,
    on a worker thread by the async one. Its result is sent back into the plan."""

    work: Callable[[], Any]


Step = Call | Blocking
Plan = Generator[Step, Any, T]


class Carrier(Protocol):
    """Where a group's requests go (a :class:`~agentmeter.endpoints.connection.Connection`)."""

    @property
    def transport(self) -> Transport: ...


class Group(Protocol):
    """An endpoint group: it holds the connection its plans' sync runs send through."""

    @property
    def _connection(self) -> Carrier: ...


G = TypeVar("G", bound=Group)


def run(plan: Plan[T], transport: Transport) -> T:
    """Carry ``plan`` out on the caller's thread (the sync client)."""
    reply: Any = None
    failure: Exception | None = None
    try:
        while True:
            try:
                step = plan.send(reply) if failure is None else plan.throw(failure)
            except StopIteration as done:
                return cast(T, done.value)
            reply, failure = None, None
            try:
                reply = _carry(step, transport)
            except Exception as exc:  # raised into the plan at its yield, below
                failure = exc
    finally:
        plan.close()


def _carry(step: Step, transport: Transport) -> Any:
    if isinstance(step, Blocking):
        return step.work()
    # A custom transport need not know ``sleep`` or ``content_type``: each is
    # passed only when set.
    return transport.request(
        step.method,
        step.path,
        params=step.params,
        body=step.body,
        idempotent=step.idempotent,
        **_options(step),
    )


def _options(step: Call) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if step.sleep is not None:
        options["sleep"] = step.sleep
    if step.content_type is not None:
        options["content_type"] = step.content_type
    return options


def run_sending_nothing(plan: Plan[T]) -> T:
    """Carry out a plan that builds without sending (its Blocking steps in place)."""
    return run(plan, _NoTransport())


class _NoTransport:
    default_project_id: str | None = None
    describe = "nowhere"

    def request(self, method: str, path: str, **_: Any) -> Any:
        raise AssertionError(f"a builder sent {method} {path}")

    def close(self) -> None:
        pass


async def arun(plan: Plan[T], transport: AsyncTransport) -> T:
    """Carry ``plan`` out on the event loop, without ever blocking it (the async client)."""
    reply: Any = None
    failure: Exception | None = None
    try:
        while True:
            try:
                step = plan.send(reply) if failure is None else plan.throw(failure)
            except StopIteration as done:
                return cast(T, done.value)
            reply, failure = None, None
            try:
                reply = await _acarry(step, transport)
            except Exception as exc:  # raised into the plan at its yield, below
                failure = exc
    finally:
        plan.close()


async def _acarry(step: Step, transport: AsyncTransport) -> Any:
    import asyncio  # loaded by then (a loop runs this); a sync client never imports it

    if isinstance(step, Blocking):
        return await asyncio.to_thread(step.work)
    return await transport.request(
        step.method,
        step.path,
        params=step.params,
        body=step.body,
        idempotent=step.idempotent,
        sleep=None if step.sleep is None else _on_a_thread(step.sleep),
        **({} if step.content_type is None else {"content_type": step.content_type}),
    )


def _on_a_thread(sleep: Callable[[float], None]) -> Callable[[float], Awaitable[None]]:
    """A plain wait function, awaited without blocking the loop."""
    import asyncio

    return lambda seconds: asyncio.to_thread(sleep, seconds)


# ----------------------------------------------------- plans as methods

_PLAN = "__agentmeter_plan__"
_PLAN_TYPE = re.compile(r"^Plan\[(?P<result>.*)\]$")


def endpoint(plan: Callable[Concatenate[G, P], Plan[R]]) -> Callable[Concatenate[G, P], R]:
    """The group's sync method of a plan method: the same name, docstring and
    parameters, returning the plan's result; the plan stays on it for :func:`plan_of`."""

    def call(self: G, /, *args: P.args, **kwargs: P.kwargs) -> R:
        return run(plan(self, *args, **kwargs), self._connection.transport)

    functools.update_wrapper(call, plan)
    signature = inspect.signature(plan)
    result = _result_of(signature.return_annotation)
    call.__annotations__ = {**plan.__annotations__, "return": result}
    setattr(call, "__signature__", signature.replace(return_annotation=result))  # noqa: B010
    setattr(call, _PLAN, plan)
    return call


def plan_of(method: Callable[Concatenate[Any, P], R]) -> Callable[Concatenate[Any, P], Plan[R]]:
    """The plan behind an :func:`endpoint` method (or a method forwarding to one)."""
    plan = getattr(method, _PLAN, None)
    if plan is None:
        raise TypeError(f"{method.__qualname__} is not an endpoint: it has no plan to run")
    return cast("Callable[Concatenate[Any, P], Plan[R]]", plan)


def _result_of(annotation: Any) -> Any:
    """``R`` of a plan's return annotation ``Plan[R]`` (text under postponed annotations)."""
    if isinstance(annotation, str):
        match = _PLAN_TYPE.match(annotation.strip())
        return match["result"] if match else annotation
    arguments = getattr(annotation, "__args__", ())
    return arguments[-1] if arguments else annotation
