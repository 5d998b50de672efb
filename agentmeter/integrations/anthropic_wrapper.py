"""``agentmeter.wrap(Anthropic())``: every Messages call billed once, streams included.

The client returned is the SDK's own ``client.copy()``: an independent
``Anthropic`` (or ``AsyncAnthropic``) with the same options, sharing the
original's connection pool as ``with_options()`` does (closing either closes
the pool). So ``isinstance`` holds and every method is the SDK's, the client
given is never changed, and only the copy's ``messages`` resource differs:
its ``create``, ``parse`` and ``stream`` are metered versions set on that one
instance. ``copy()`` and ``with_options()`` on the wrapped client return
metered copies too.

What each call bills, from the usage Anthropic reports (read by
:func:`~agentmeter.capture.usage.extract_usage`: its ``input_tokens`` leaves
out cache reads and writes, so reads are added in and writes billed on top):

- ``create()`` / ``parse()``: the returned ``Message``; model and id from it.
- ``create(stream=True)``: the raw event stream, passed through a
  :class:`~agentmeter.integrations.provider_meter.MeteredStream` (not an
  ``anthropic.Stream`` itself; its attributes are reached through it).
  ``message_start`` names the id and model and counts the input;
  ``message_delta`` carries running totals (output, and in current API
  versions input and cache counts too), laid field by field over the ones
  before, as the SDK's own accumulator does: a count it leaves out keeps
  ``message_start``'s. Billed when the stream ends or is closed.
- ``stream()``: the SDK's ``MessageStream`` itself is handed to the block;
  the call is billed once, when the ``with`` block exits, from the message
  the SDK accumulated.

The one decision here: a stream that ends early (closed, broken out of, an
exception in the block) is billed for the tokens reported so far, if
``message_start`` arrived: all of the input, and the output counted until
then. Anthropic charges for those tokens. A stream that ends before
``message_start`` bills nothing and logs one warning.

Not metered: ``with_raw_response`` / ``with_streaming_response`` (the raw
HTTP response is passed through untouched), ``messages.batches`` (billed at
batch rates, long after the call), ``count_tokens`` (free) and
``client.beta``. The Bedrock, Vertex and Foundry clients share the same
resources and ``copy()``, so they are metered the same way, but untested.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from ..capture.usage import extract_usage
from .provider_meter import ModelCall, ProviderMeter, warn_once

logger = logging.getLogger("agentmeter")
ClientT = TypeVar("ClientT")
# The counts a message_delta repeats as running totals (absent or None: the earlier one stands).
_RUNNING_COUNTS = (
    "input_tokens",
    "output_tokens",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
)


def wrap_client(client: ClientT, billing: ProviderMeter) -> ClientT:
    """A metered copy of an ``Anthropic`` / ``AsyncAnthropic`` client (same class)."""
    if not callable(getattr(type(client), "copy", None)) or not hasattr(client, "messages"):
        raise TypeError(
            f"agentmeter.wrap() does not support {type(client).__qualname__}: "
            "it has no copy() and messages resource"
        )
    metered: ClientT = _metered_copy(client, billing, {})
    return metered


def _metered_copy(client: Any, billing: ProviderMeter, options: dict[str, Any]) -> Any:
    """``client.copy(**options)`` whose Messages calls are billed."""
    copy = type(client).copy(client, **options)  # the class's: client's own may be ours
    # copy() leaves this one out; the copy must validate responses as the client does.
    copy._strict_response_validation = getattr(client, "_strict_response_validation", False)
    _meter_messages(copy.messages, billing)

    def metered_copy(**options: Any) -> Any:
        return _metered_copy(copy, billing, options)

    functools.update_wrapper(metered_copy, copy.copy)
    copy.copy = copy.with_options = metered_copy  # with_middleware() calls copy() too
    return copy


def _meter_messages(messages: Any, billing: ProviderMeter) -> None:
    """Set metered ``create``, ``parse`` and ``stream`` on this one resource."""
    from anthropic import AsyncStream, Stream
    from anthropic.resources.messages import AsyncMessages
    from anthropic.types import Message

    is_async = isinstance(messages, AsyncMessages)
    metered_call = _async_call if is_async else _sync_call
    stream = AsyncStream if is_async else Stream
    manager = _AsyncMeteredStreamManager if is_async else _MeteredStreamManager
    metered = {
        "create": metered_call(messages.create, billing, Message, stream),
        "parse": metered_call(messages.parse, billing, Message, stream),
        "stream": _stream_manager(messages.stream, billing, manager),
    }
    for name, method in metered.items():  # on this instance only: the class is the SDK's
        setattr(messages, name, method)


def _sync_call(
    original: Callable[..., Any], billing: ProviderMeter, message: type, stream: type
) -> Callable[..., Any]:
    def call(*args: Any, **kwargs: Any) -> Any:
        result = original(*args, **kwargs)
        try:
            if isinstance(result, message):
                billing.bill(_message_call(result, kwargs.get("model")))
            elif isinstance(result, stream):
                return billing.stream(result, ModelCall(kwargs.get("model")), _RunningUsage())
        except Exception:  # metering must not fail the call it meters
            logger.exception("agentmeter: could not meter an anthropic call")
        return result

    return functools.update_wrapper(call, original)


def _async_call(
    original: Callable[..., Any], billing: ProviderMeter, message: type, stream: type
) -> Callable[..., Any]:
    async def call(*args: Any, **kwargs: Any) -> Any:
        result = await original(*args, **kwargs)
        try:
            if isinstance(result, message):
                billing.bill(_message_call(result, kwargs.get("model")))
            elif isinstance(result, stream):
                return billing.astream(result, ModelCall(kwargs.get("model")), _RunningUsage())
        except Exception:
            logger.exception("agentmeter: could not meter an anthropic call")
        return result

    return functools.update_wrapper(call, original)


def _message_call(message: Any, requested_model: Any) -> ModelCall:
    # The usage model's field dict: a pydantic model answers each name it does
    # not have (extract_usage tries several shapes) with a costly AttributeError.
    fields = getattr(getattr(message, "usage", None), "__dict__", None)
    return ModelCall(
        requested_model=requested_model,
        model=message.model or None,
        usage=extract_usage(message if fields is None else fields),
        response_id=message.id or None,
    )


class _RunningUsage:
    """Reads one raw stream's events into its call: the id, model and counts so far."""

    __slots__ = ("counts",)

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def __call__(self, event: Any, call: ModelCall) -> None:
        kind = getattr(event, "type", None)
        if kind == "message_start":
            message = event.message
            call.model = message.model or None
            call.response_id = message.id or None
            usage = message.usage
        elif kind == "message_delta":
            usage = event.usage
        else:
            return
        for name in _RUNNING_COUNTS:
            value = getattr(usage, name, None)
            if value is not None:
                self.counts[name] = value
        call.usage = extract_usage(self.counts)


def _stream_manager(
    original: Callable[..., Any], billing: ProviderMeter, manager: type
) -> Callable[..., Any]:
    def stream(*args: Any, **kwargs: Any) -> Any:
        return manager(original(*args, **kwargs), billing, kwargs.get("model"))

    return functools.update_wrapper(stream, original)


class _StreamManager:
    """What ``messages.stream()`` returns: the SDK's manager, billed once its block exits.

    The block gets the SDK's ``MessageStream`` itself (``text_stream``,
    ``get_final_message()`` and the rest untouched)."""

    def __init__(self, manager: Any, billing: ProviderMeter, requested_model: Any) -> None:
        self._manager = manager
        self._billing = billing
        self._requested_model = requested_model
        self._stream: Any = None

    def _bill(self) -> None:
        stream, self._stream = self._stream, None
        _bill_accumulated(self._billing, stream, self._requested_model)

    def __getattr__(self, name: str) -> Any:
        if name == "_manager":  # not set yet
            raise AttributeError(name)
        return getattr(self._manager, name)


class _MeteredStreamManager(_StreamManager):
    """``with client.messages.stream(...) as stream``."""

    def __enter__(self) -> Any:
        self._stream = self._manager.__enter__()
        return self._stream

    def __exit__(self, *exc_info: Any) -> Any:
        try:
            return self._manager.__exit__(*exc_info)
        finally:
            self._bill()


class _AsyncMeteredStreamManager(_StreamManager):
    """``async with client.messages.stream(...) as stream``."""

    async def __aenter__(self) -> Any:
        self._stream = await self._manager.__aenter__()
        return self._stream

    async def __aexit__(self, *exc_info: Any) -> Any:
        try:
            return await self._manager.__aexit__(*exc_info)
        finally:
            self._bill()


def _bill_accumulated(billing: ProviderMeter, stream: Any, requested_model: Any) -> None:
    """Bill the message a ``MessageStream`` accumulated, as far as it was read."""
    if stream is None:
        return
    try:
        try:
            message = stream.current_message_snapshot
        except AssertionError:  # the SDK's "no message_start yet"
            message = None
        if message is None:
            warn_once(
                f"{billing.provider}-abandoned",
                f"an {billing.provider} stream was closed before its usage arrived; not billed",
            )
            return
        billing.bill(_message_call(message, requested_model))
    except Exception:
        logger.exception("agentmeter: could not meter an anthropic stream")
