"""Token usage of a LangChain model call, read from one place only (never added up)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from langchain_core.outputs import LLMResult

from ..capture.usage import TokenUsage, extract_usage


@dataclass(frozen=True)
class Usage:
    tokens_in: int  # every input token, cache reads included
    tokens_out: int
    model: str | None
    cache_hit: bool  # LangChain's own cache answered: nothing to bill
    cached_tokens_in: int = 0  # the provider's cache reads, part of tokens_in
    cache_write_tokens: int = 0  # written to the provider's cache, on top of tokens_in


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
        found = extract_usage({"usage": usage_metadata})
        counts = TokenUsage(0, 0) if found is None else found
        return Usage(counts[0], counts[1], model, cache_hit, counts[2], counts[3])
    token_usage = llm_output.get("token_usage") or llm_output.get("usage")
    if isinstance(token_usage, Mapping):
        read = extract_usage({"usage": token_usage})
        if read is not None:
            return Usage(read[0], read[1], model, False, read[2], read[3])
    return None
