"""``agentmeter.wrap(genai.Client())``: every Gemini request billed once, streams included.

The one decision here: **what is metered is each request the SDK sends,
not each public call.** ``models.generate_content`` may send several: with
automatic function calling (Python functions as tools, on by default) it
calls the model, runs the function, calls again, and returns only the last
response, whose usage counts only the last request; automatic continuation
sends follow-up requests too. Google bills every one. So the metered methods
are the SDK's per-request ones, ``Models._generate_content`` and
``_generate_content_stream`` (and the ``AsyncModels`` twins), which every
public method goes through (``generate_content``, ``generate_content_stream``,
``client.chats``, on ``client.models`` and ``client.aio.models``). Each
request is one event, named after its ``response_id``. The public methods
are the SDK's own, untouched: they return what they always do (the async
``generate_content_stream`` still an awaitable of an async iterator). An SDK
without those two methods gets its public ones metered instead (one warning).

The client returned is a copy: the SDK has no ``copy()``, and a plain copy
of the same class would share the original's connection pool *and* close it
when either copy is garbage-collected (``Client.__del__`` closes its API
client). So the copy is of a subclass of the client's class (``isinstance``
holds; name and module are the class's) that differs only in not closing the
pool when dropped: it keeps the original alive instead, which closes the
pool when it goes. ``close()`` on either closes the shared pool, as the
SDK's own ``close()`` does. Only the copy's ``models`` and ``aio.models``
differ: new resources with the metered methods set on them.

What each request bills, from ``usage_metadata`` (read by
:func:`~agentmeter.capture.usage.extract_usage`): ``prompt_token_count``
(cached content inside it, billed at the cached-input price),
``candidates_token_count`` plus ``thoughts_token_count`` as output; the
model the response names (``model_version``), else the one requested; no
``response_id``, a fresh event id. A stream's chunks repeat the usage so
far: the last one seen is billed, when the stream ends or is dropped, so a
stream abandoned halfway bills the totals its last chunk reported; one that
reported none bills nothing (one warning). ``should_return_http_response``
responses are billed from the raw body.

Not metered: ``count_tokens`` and ``compute_tokens`` (free),
``embed_content``, images, videos, ``batches`` (billed at batch rates, later)
and ``live``.
"""

from __future__ import annotations

import copy
import functools
import json
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from ..capture.usage import extract_usage
from .provider_meter import ModelCall, ProviderMeter, warn_once

logger = logging.getLogger("agentmeter")
ClientT = TypeVar("ClientT")
# The SDK's one-request methods (name, is it a stream), else its public ones.
_PER_REQUEST = (("_generate_content", False), ("_generate_content_stream", True))
_PUBLIC = (("generate_content", False), ("generate_content_stream", True))


def wrap_client(client: ClientT, billing: ProviderMeter) -> ClientT:
    """A metered copy of a ``genai.Client`` (see the module's docstring)."""
    from google.genai import Client

    if not isinstance(client, Client) or not hasattr(client, "_models"):
        raise TypeError(f"agentmeter.wrap() does not support {type(client).__qualname__}")
    # A wrapped client wrapped again is metered by the new billing alone.
    source: Any = client.__dict__.get("_agentmeter_source", client)
    metered: Any = object.__new__(_metered_class(source.__class__))
    metered.__dict__.update(source.__dict__)
    metered._agentmeter_source = source  # the pool's owner outlives the copy
    metered._models = _metered_models(source._models, billing, is_async=False)
    metered._aio = copy.copy(source._aio)
    metered._aio._models = _metered_models(source._aio._models, billing, is_async=True)
    wrapped: ClientT = metered
    return wrapped


@functools.cache
def _metered_class(cls: Any) -> type[Any]:
    """``cls`` but for ``__del__``: the pool belongs to the original client."""

    def __del__(self: Any) -> None:
        pass  # not ``close()``: the original it holds closes the pool when dropped

    namespace = {"__del__": __del__, "__module__": cls.__module__, "__qualname__": cls.__qualname__}
    return type(cls.__name__, (cls,), namespace)


def _metered_models(models: Any, billing: ProviderMeter, *, is_async: bool) -> Any:
    """A new ``Models`` / ``AsyncModels`` on the same API client, its requests billed."""
    fresh = type(models)(models._api_client)
    hooks = _PER_REQUEST
    if not all(callable(getattr(fresh, name, None)) for name, _ in hooks):
        warn_once("gemini-hooks", "google-genai without per-request methods: public ones metered")
        hooks = _PUBLIC
    for name, is_stream in hooks:
        metered = _metered_method(getattr(fresh, name), billing, is_async, is_stream)
        setattr(fresh, name, functools.update_wrapper(metered, getattr(fresh, name)))
    return fresh


def _metered_method(
    original: Callable[..., Any], billing: ProviderMeter, is_async: bool, is_stream: bool
) -> Callable[..., Any]:
    if is_async and is_stream:

        async def astream(*args: Any, **kwargs: Any) -> Any:
            chunks = await original(*args, **kwargs)
            return _metered_stream(billing, chunks, kwargs.get("model"), is_async=True)

        return astream
    if is_async:

        async def acall(*args: Any, **kwargs: Any) -> Any:
            response = await original(*args, **kwargs)
            _bill_response(billing, response, kwargs.get("model"))
            return response

        return acall
    if is_stream:

        def stream(*args: Any, **kwargs: Any) -> Any:
            chunks = original(*args, **kwargs)
            return _metered_stream(billing, chunks, kwargs.get("model"), is_async=False)

        return stream

    def call(*args: Any, **kwargs: Any) -> Any:
        response = original(*args, **kwargs)
        _bill_response(billing, response, kwargs.get("model"))
        return response

    return call


def _bill_response(billing: ProviderMeter, response: Any, requested_model: Any) -> None:
    try:
        call = ModelCall(requested_model)
        _observe(response, call)
        if call.usage is None:
            _observe_raw(response, call)
        billing.bill(call)
    except Exception:  # metering must not fail the call it meters
        logger.exception("agentmeter: could not meter a gemini call")


def _metered_stream(
    billing: ProviderMeter, chunks: Any, requested_model: Any, *, is_async: bool
) -> Any:
    try:
        call = ModelCall(requested_model)
        if is_async:
            return billing.astream(chunks, call, _observe)
        return billing.stream(chunks, call, _observe)
    except Exception:
        logger.exception("agentmeter: could not meter a gemini stream")
        return chunks


def _observe(response: Any, call: ModelCall) -> None:
    """A response (or a stream's chunk) into its call: the last usage, model and id seen."""
    usage = response.usage_metadata
    if usage is not None:
        # Its fields as a dict: extract_usage probes other providers' names too, and
        # each miss costs ~3.5 µs as a pydantic attribute, ~0.1 µs as a key.
        call.usage = extract_usage(getattr(usage, "__dict__", usage)) or call.usage
    call.model = response.model_version or call.model
    call.response_id = response.response_id or call.response_id


def _observe_raw(response: Any, call: ModelCall) -> None:
    """``should_return_http_response``: the usage is in the raw JSON body."""
    raw = getattr(response, "sdk_http_response", None)
    body = getattr(raw, "body", None)
    if not body:
        return
    parsed = json.loads(body)
    call.usage = extract_usage(parsed)
    call.model = parsed.get("modelVersion") or call.model
    call.response_id = parsed.get("responseId") or call.response_id
