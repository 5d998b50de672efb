"""``agentmeter.wrap(client)``: the provider client you have, every model call metered.

>>> from openai import OpenAI                                  # doctest: +SKIP
>>> client = agentmeter.wrap(OpenAI(), meter, user_id="alice")  # doctest: +SKIP
>>> client.chat.completions.create(model="gpt-4o", messages=[...])  # billed once

The object returned is used exactly as the one given (the same class where
the SDK can copy its clients: see each provider's module); the client given
is never changed. Which SDK a client belongs to is read from its class's
module, so no provider SDK is imported here.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any, TypeVar

from ..client import AgentMeterClient
from .provider_meter import ProviderMeter

T = TypeVar("T")
# (class module prefix, provider, the module of ours that wraps it)
_PROVIDERS = (
    ("openai", "openai", "openai_wrapper"),
    ("anthropic", "anthropic", "anthropic_wrapper"),
    ("google.genai", "gemini", "gemini_wrapper"),
    ("botocore", "bedrock", "bedrock_wrapper"),
)
SUPPORTED = (
    "openai.OpenAI, AsyncOpenAI, AzureOpenAI, AsyncAzureOpenAI; "
    "anthropic.Anthropic, AsyncAnthropic; google.genai.Client; "
    'boto3.client("bedrock-runtime")'
)


def wrap(
    provider_client: T,
    meter: AgentMeterClient | None = None,
    *,
    user_id: str | None = None,
    agent_id: str | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> T:
    """Meter every model call made through ``provider_client``.

    ``meter`` is the :class:`AgentMeterClient` to bill through (default: one
    built from ``AGENTMETER_*``). ``user_id``, ``agent_id`` and ``metadata``
    are the defaults outside ``attribute()`` blocks. Raises ``TypeError`` for
    a client of an SDK it does not support."""
    module = type(provider_client).__module__
    for prefix, provider, ours in _PROVIDERS:
        if module == prefix or module.startswith(prefix + "."):
            wrapper = importlib.import_module(f"{__package__}.{ours}")
            billing = ProviderMeter(
                provider, meter, user_id=user_id, agent_id=agent_id, metadata=metadata
            )
            wrapped: T = wrapper.wrap_client(provider_client, billing)
            return wrapped
    raise TypeError(
        f"agentmeter.wrap() does not support {type(provider_client).__qualname__} "
        f"(from {module}); supported: {SUPPORTED}"
    )
