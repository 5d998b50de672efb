"""Token usage of a LangChain model call, read from one place only (never added up)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from langchain_core.outputs import LLMResult


@dataclass(frozen=True)
class Usage:
    tokens_in: int
    tokens_out: int
    model: str | None
    cache_hit: bool


def read_usage(response: LLMResult) -> Usage | None:
    """Token usage of a model call, read from one place only (never added up)."""
    generations = response.generations
    first = generations[0][0] if generations and generations[0] else None
    message = getattr(first, "message", None)
    response_metadata = getattr(message, "response_metadata", None) or {}
    llm_output = response.llm_output or {}
    model = response_metadata.get("model_name") or llm_output.get("model_name")
    usage_metadata = getattr(message, "usage_metadata", None)
    if usage_metadata:
        cache_hit = "total_cost" in usage_metadata and usage_metadata["total_cost"] == 0
        return Usage(
            int(usage_metadata.get("input_tokens") or 0),
            int(usage_metadata.get("output_tokens") or 0),
            model,
            cache_hit,
        )
    token_usage = llm_output.get("token_usage") or llm_output.get("usage")
    if isinstance(token_usage, Mapping):
        tokens_in = token_usage.get("prompt_tokens", token_usage.get("input_tokens"))
        tokens_out = token_usage.get("completion_tokens", token_usage.get("output_tokens"))
        if tokens_in is not None or tokens_out is not None:
            return Usage(int(tokens_in or 0), int(tokens_out or 0), model, False)
    return None
