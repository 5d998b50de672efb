"""``agentmeter.wrap(boto3.client("bedrock-runtime"))``: every Converse call billed once.

The one decision here: **the client returned is a shallow copy of the one
given, of the same generated class** (``botocore.client.BedrockRuntime``).
boto3 clients have no ``copy()``; a proxy would fail ``isinstance`` and
typing stubs, and a new client from the same session would need the
credentials back out of the old one (its session is not reachable from it)
and cost milliseconds to build. A botocore client is plain state (its
endpoint and connection pool, signer, event hooks, config) with the API
methods on its class, so the copy shares all of it and differs only in two
attributes set on it alone: metered ``converse`` and ``converse_stream``.
Everything else is the SDK's, on the same connections; ``close()`` on either
closes the shared pool, as on the original. The client given is never
changed; wrapping a wrapped client meters it once, with the new billing.

What each call bills, from the ``usage`` Bedrock reports (read by
:func:`~agentmeter.capture.usage.extract_usage`: ``inputTokens`` leaves out
``cacheReadInputTokens`` and ``cacheWriteInputTokens``, so reads are added
in and writes billed on top):

- ``converse()``: the response's ``usage``; the event is named after
  ``ResponseMetadata.RequestId``.
- ``converse_stream()``: the response is returned with its ``stream`` (the
  SDK's ``EventStream``) wrapped in a
  :class:`~agentmeter.integrations.provider_meter.MeteredStream`: the events
  pass through unchanged (``close()`` and the rest reach the EventStream),
  and the call is billed once, from the final ``metadata`` event, when the
  stream ends or is closed. A stream closed before ``metadata`` arrived bills
  nothing and logs one warning (Bedrock reports no usage before it).

Bedrock's responses do not name the model: the model billed is the
``modelId`` asked for (the catalog knows Bedrock's ids, regional inference
profiles included), the part after the last ``/`` of a foundation-model ARN.
``invoke_model`` (each model's own body format) is not metered, nor are
async clients (boto3 has none; aiobotocore's are not supported).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from ..capture.usage import extract_usage
from .provider_meter import ModelCall, ProviderMeter

logger = logging.getLogger("agentmeter")
ClientT = TypeVar("ClientT")
_SERVICE = "bedrock-runtime"
# ARN resource types whose name is a model id (an application profile's is not).
_MODEL_ARNS = ("foundation-model", "inference-profile")


def wrap_client(client: ClientT, billing: ProviderMeter) -> ClientT:
    """A metered copy of a ``bedrock-runtime`` client (same class)."""
    meta = getattr(client, "meta", None)
    service = getattr(getattr(meta, "service_model", None), "service_name", None)
    if service != _SERVICE or not hasattr(client, "converse"):
        raise TypeError(
            f"agentmeter.wrap() supports botocore clients of {_SERVICE!r} only, "
            f"not {type(client).__qualname__} of {service!r}"
        )
    source: Any = client.__dict__.get("_agentmeter_source", client)
    metered: Any = object.__new__(type(source))
    metered.__dict__.update(source.__dict__)
    metered._agentmeter_source = source
    cls = type(source)
    metered.converse = _metered(cls.converse.__get__(metered), billing, _bill_converse)
    metered.converse_stream = _metered(
        cls.converse_stream.__get__(metered), billing, _metered_stream
    )
    wrapped: ClientT = metered
    return wrapped


def _metered(
    original: Callable[..., Any],
    billing: ProviderMeter,
    meter: Callable[[ProviderMeter, Any, ModelCall], Any],
) -> Callable[..., Any]:
    """``original``, its response handed to ``meter`` (whose result is returned)."""

    def call(*args: Any, **kwargs: Any) -> Any:
        response = original(*args, **kwargs)
        try:
            return meter(billing, response, _call_of(response, kwargs.get("modelId")))
        except Exception:  # metering must not fail the call it meters
            logger.exception("agentmeter: could not meter a bedrock call")
            return response

    return functools.update_wrapper(call, original)


def _call_of(response: Any, model_id: Any) -> ModelCall:
    request_id = response.get("ResponseMetadata", {}).get("RequestId")
    return ModelCall(requested_model=model_id, model=_model_name(model_id), response_id=request_id)


def _model_name(model_id: Any) -> str | None:
    """``modelId``, or the model of a foundation-model or inference-profile ARN."""
    if not isinstance(model_id, str) or not model_id:
        return None
    if model_id.startswith("arn:"):
        kind, _, name = model_id.split(":", 5)[-1].partition("/")  # arn:...:account:kind/name
        if kind in _MODEL_ARNS and name:
            return name
    return model_id


def _bill_converse(billing: ProviderMeter, response: Any, call: ModelCall) -> Any:
    call.usage = extract_usage(response)
    billing.bill(call)
    return response


def _metered_stream(billing: ProviderMeter, response: Any, call: ModelCall) -> Any:
    """The response, its ``stream`` billed once from the ``metadata`` event."""
    return {**response, "stream": billing.stream(response["stream"], call, _observe)}


def _observe(event: Any, call: ModelCall) -> None:
    metadata = event.get("metadata")
    if metadata is not None:
        call.usage = extract_usage(metadata)
