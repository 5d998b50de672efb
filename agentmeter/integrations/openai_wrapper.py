"""``agentmeter.wrap(OpenAI())``: chat completions, responses and embeddings, each billed once.

The client returned is the SDK's own ``client.copy()``: an independent
``OpenAI`` / ``AsyncOpenAI`` / ``AzureOpenAI`` / ``AsyncAzureOpenAI`` (the
same class, so ``isinstance`` holds) with the same options, sharing the
original's connection pool. The client given is never changed. Only the
copy's own resource objects differ: a few methods are replaced on those
instances (the classes stay the SDK's), and ``copy()`` / ``with_options()``
on the wrapped client return metered copies too.

What is billed, from the usage OpenAI reports (read by
:func:`~agentmeter.capture.usage.extract_usage`: cached input is inside the
prompt count and billed at the cached price; reasoning tokens are inside
the completion count; cache writes move on top of the input):

- ``chat.completions.create()`` / ``parse()``, ``responses.create()`` /
  ``parse()``, ``embeddings.create()`` (input only): the returned object's
  ``usage``, ``model`` (else the ``model`` asked for) and ``id``.
- ``create(stream=True)``: the SDK's stream behind a
  :class:`~agentmeter.integrations.provider_meter.MeteredStream` (its
  ``response``, ``close()`` and context manager work as before), billed once
  when it ends or is closed. Responses streams carry usage in their final
  ``response.completed`` (or ``.incomplete`` / ``.failed``) event.
- ``chat.completions.stream()`` / ``responses.stream()``: the SDK's helpers
  call the metered ``create``; the helper's stream is billed when it is read
  to the end or its ``with`` block exits.

The one decision here: Chat Completions streams only report usage when asked
(``stream_options={"include_usage": True}``), in an extra last chunk with no
choices. A stream asked without it is sent with it (on a copy of the options:
the caller's dict is never changed) and that extra chunk is hidden from the
caller, so a loop reading ``chunk.choices[0]`` keeps working; a caller who
asked for it sees every chunk. A stream closed before its usage arrived bills
nothing and logs one warning (the provider bills for it, but never says how
much).

Not metered: ``with_raw_response`` / ``with_streaming_response`` (passed
through untouched, no usage injected), the legacy ``completions`` API,
``responses.retrieve(stream=True)`` (a resumed stream), the Batch API,
Realtime, images and audio. A ``background=True`` response has no usage when
created: not billed (and one warning).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from ..capture.usage import TokenUsage, extract_usage
from .provider_meter import AsyncMeteredStream, MeteredStream, ModelCall, ProviderMeter

logger = logging.getLogger("agentmeter")
ClientT = TypeVar("ClientT")
Observe = Callable[[Any, ModelCall], None]
_RAW_HEADER = "X-Stainless-Raw-Response"  # set by with_raw_response / with_streaming_response


def wrap_client(client: ClientT, billing: ProviderMeter) -> ClientT:
    """A metered copy of an OpenAI client of any of the four classes (same class)."""
    kind = type(client)  # looked up on the class: the client's own resources are made lazily
    if not callable(getattr(kind, "copy", None)) or not hasattr(kind, "chat"):
        raise TypeError(
            f"agentmeter.wrap() does not support {type(client).__qualname__}: "
            "it has no copy() and chat resource"
        )
    metered: ClientT = _metered_copy(client, billing, {})
    return metered


def _metered_copy(client: Any, billing: ProviderMeter, options: dict[str, Any]) -> Any:
    """``client.copy(**options)`` whose model calls are billed."""
    copy = type(client).copy(client, **options)  # the class's: the client's own may be ours
    # copy() leaves this one out; the copy must validate responses as the client does.
    copy._strict_response_validation = getattr(client, "_strict_response_validation", False)
    _meter_resources(copy, billing)

    def metered_copy(**options: Any) -> Any:
        return _metered_copy(copy, billing, options)

    functools.update_wrapper(metered_copy, type(client).copy)
    copy.copy = copy.with_options = metered_copy
    return copy


def _meter_resources(client: Any, billing: ProviderMeter) -> None:
    """Set metered methods on this client's own resource objects."""
    from openai import AsyncOpenAI, AsyncStream, Stream
    from openai.types import CreateEmbeddingResponse
    from openai.types.chat import ChatCompletion
    from openai.types.responses import Response

    is_async = isinstance(client, AsyncOpenAI)
    call = _async_call if is_async else _sync_call
    stream = AsyncStream if is_async else Stream
    manager = _AsyncStreamManager if is_async else _StreamManager
    chat, responses = client.chat.completions, client.responses
    metered = [
        (chat, "create", call(chat.create, billing, ChatCompletion, stream, _observe_chunk, True)),
        (chat, "parse", call(chat.parse, billing, ChatCompletion, stream, _observe_chunk, False)),
        (chat, "stream", _stream_helper(chat.stream, manager)),
        (responses, "create", call(responses.create, billing, Response, stream, _observe_event)),
        (responses, "parse", call(responses.parse, billing, Response, stream, _observe_event)),
        (responses, "stream", _stream_helper(responses.stream, manager)),
        (
            client.embeddings,
            "create",
            call(client.embeddings.create, billing, CreateEmbeddingResponse, stream, None),
        ),
    ]
    for resource, name, method in metered:  # on these instances only: the classes are the SDK's
        setattr(resource, name, method)


def _sync_call(
    original: Callable[..., Any],
    billing: ProviderMeter,
    result_type: type,
    stream_type: type,
    observe: Observe | None,
    add_usage: bool = False,
) -> Callable[..., Any]:
    def call(*args: Any, **kwargs: Any) -> Any:
        hide = None
        if add_usage and kwargs.get("stream") and not _is_raw(kwargs):
            kwargs, hide = _asking_for_usage(kwargs)
        result = original(*args, **kwargs)
        try:
            if isinstance(result, result_type):
                billing.bill(_result_call(result, kwargs.get("model")))
            elif observe is not None and isinstance(result, stream_type):
                return billing.stream(result, ModelCall(kwargs.get("model")), observe, hide)
        except Exception:  # metering must not fail the call it meters
            logger.exception("agentmeter: could not meter an openai call")
        return result

    return functools.update_wrapper(call, original)


def _async_call(
    original: Callable[..., Any],
    billing: ProviderMeter,
    result_type: type,
    stream_type: type,
    observe: Observe | None,
    add_usage: bool = False,
) -> Callable[..., Any]:
    async def call(*args: Any, **kwargs: Any) -> Any:
        hide = None
        if add_usage and kwargs.get("stream") and not _is_raw(kwargs):
            kwargs, hide = _asking_for_usage(kwargs)
        result = await original(*args, **kwargs)
        try:
            if isinstance(result, result_type):
                billing.bill(_result_call(result, kwargs.get("model")))
            elif observe is not None and isinstance(result, stream_type):
                return billing.astream(result, ModelCall(kwargs.get("model")), observe, hide)
        except Exception:
            logger.exception("agentmeter: could not meter an openai call")
        return result

    return functools.update_wrapper(call, original)


def _is_raw(kwargs: Mapping[str, Any]) -> bool:
    """Whether ``with_raw_response`` / ``with_streaming_response`` made this call."""
    headers = kwargs.get("extra_headers")
    return isinstance(headers, Mapping) and _RAW_HEADER in headers


def _asking_for_usage(
    kwargs: dict[str, Any],
) -> tuple[dict[str, Any], Callable[[Any], bool] | None]:
    """The call's arguments with ``include_usage`` on, and what to hide from the caller."""
    options = kwargs.get("stream_options")
    if isinstance(options, Mapping) and options.get("include_usage") is True:
        return kwargs, None  # asked for: every chunk is the caller's
    added = {**options, "include_usage": True} if isinstance(options, Mapping) else None
    return {**kwargs, "stream_options": added or {"include_usage": True}}, _is_usage_only


def _is_usage_only(chunk: Any) -> bool:
    """The chunk ``include_usage`` adds at the end: usage, and no choices."""
    fields = _fields(chunk)
    return not fields.get("choices") and fields.get("usage") is not None


def _fields(model: Any) -> Mapping[str, Any]:
    """A parsed object's fields, read as a mapping: on the SDK's pydantic models an
    absent attribute costs microseconds (an exception is built), a dict lookup not."""
    try:
        fields: Mapping[str, Any] = vars(model)
    except TypeError:  # a dict, or an object without __dict__
        return model if isinstance(model, Mapping) else {}
    return fields


def _usage_of(usage: Any) -> TokenUsage | None:
    return None if usage is None else extract_usage(_fields(usage))


def _result_call(result: Any, requested_model: Any) -> ModelCall:
    fields = _fields(result)
    return ModelCall(
        requested_model=requested_model if isinstance(requested_model, str) else None,
        model=fields.get("model") or None,
        usage=_usage_of(fields.get("usage")),
        response_id=fields.get("id") or None,  # an embeddings response has none
    )


def _observe_chunk(chunk: Any, call: ModelCall) -> None:
    """A Chat Completions chunk: the id and model (first named), the usage (last chunk)."""
    fields = _fields(chunk)
    if call.response_id is None:
        call.response_id = fields.get("id") or None
    if call.model is None:
        call.model = fields.get("model") or None
    usage = fields.get("usage")
    if usage is not None:
        call.usage = _usage_of(usage)


def _observe_event(event: Any, call: ModelCall) -> None:
    """A Responses stream event: those carrying the response name it; the final one, usage."""
    response = _fields(event).get("response")
    if response is None:
        return
    fields = _fields(response)
    call.response_id = fields.get("id") or call.response_id
    call.model = fields.get("model") or call.model
    usage = fields.get("usage")
    if usage is not None:
        call.usage = _usage_of(usage)


def _stream_helper(original: Callable[..., Any], manager: type) -> Callable[..., Any]:
    """``.stream()``: the SDK's helper (which calls the metered ``create``), closed as billed."""

    def stream(*args: Any, **kwargs: Any) -> Any:
        return manager(original(*args, **kwargs))

    return functools.update_wrapper(stream, original)


def _metered_raw(stream: Any) -> Any:
    """The metered stream under an SDK helper's stream, if it has one."""
    return getattr(stream, "_raw_stream", None)


class _StreamManager:
    """What ``.stream()`` returns: the SDK's manager, whose stream is billed when the
    block exits (the SDK's own exit closes only the HTTP response). The block gets
    the SDK's stream object itself."""

    def __init__(self, manager: Any) -> None:
        self._manager = manager
        self._stream: Any = None

    def __enter__(self) -> Any:
        self._stream = self._manager.__enter__()
        return self._stream

    def __exit__(self, *exc_info: Any) -> Any:
        try:
            return self._manager.__exit__(*exc_info)
        finally:
            raw = _metered_raw(self._stream)
            if isinstance(raw, MeteredStream):
                raw.close()

    def __getattr__(self, name: str) -> Any:
        if name == "_manager":  # not set yet
            raise AttributeError(name)
        return getattr(self._manager, name)


class _AsyncStreamManager(_StreamManager):
    """``async with client.chat.completions.stream(...)`` / ``responses.stream(...)``."""

    async def __aenter__(self) -> Any:
        self._stream = await self._manager.__aenter__()
        return self._stream

    async def __aexit__(self, *exc_info: Any) -> Any:
        try:
            return await self._manager.__aexit__(*exc_info)
        finally:
            raw = _metered_raw(self._stream)
            if isinstance(raw, AsyncMeteredStream):
                await raw.close()
