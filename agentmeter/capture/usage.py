"""Find token usage in the result of a model call, whatever client made it.

Recognised shapes (objects or dicts):

- OpenAI: ``result.usage.prompt_tokens`` / ``completion_tokens``
- Anthropic: ``result.usage.input_tokens`` / ``output_tokens``
- LangChain ``AIMessage``: ``result.usage_metadata["input_tokens"]`` / ``["output_tokens"]``
- Gemini: ``result.usage_metadata.prompt_token_count`` / ``candidates_token_count``,
  plus ``thoughts_token_count`` (billed as output, on top of the candidates);
  the REST body's ``usageMetadata`` with camelCase names too
- Bedrock Converse: ``result["usage"]["inputTokens"]`` / ``["outputTokens"]``
  (a ConverseStream ``metadata`` event holds the same under ``metadata``)
- the usage object itself, with any of those names

The same tokens are never counted twice: each shape is read from one place.

>>> extract_usage({"usage": {"prompt_tokens": 12, "completion_tokens": 5}})
(12, 5)
>>> extract_usage({"usageMetadata": {"promptTokenCount": 7, "candidatesTokenCount": 3,
...                                  "thoughtsTokenCount": 2}})
(7, 5)
>>> extract_usage("no usage here") is None
True
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# (input name, output names added together): each provider's pair.
_SHAPES = (
    ("prompt_tokens", ("completion_tokens",)),  # OpenAI
    ("input_tokens", ("output_tokens",)),  # Anthropic, LangChain
    ("inputTokens", ("outputTokens",)),  # Bedrock Converse
    ("prompt_token_count", ("candidates_token_count", "thoughts_token_count")),  # Gemini SDK
    ("promptTokenCount", ("candidatesTokenCount", "thoughtsTokenCount")),  # Gemini REST
)
# Shapes whose streamed chunks carry running totals, not deltas.
_GEMINI_INPUTS = ("prompt_token_count", "promptTokenCount")
_USAGE_FIELDS = ("usage_metadata", "usageMetadata", "usage")


def _get(source: Any, name: str) -> Any:
    if isinstance(source, Mapping):
        return source.get(name)
    return getattr(source, name, None)


def _counts(usage: Any) -> tuple[int, int] | None:
    for input_name, output_names in _SHAPES:
        tokens_in = _get(usage, input_name)
        outputs = [_get(usage, name) for name in output_names]
        if _is_count(tokens_in) or any(_is_count(value) for value in outputs):
            return _whole(tokens_in), sum(_whole(value) for value in outputs)
    return None


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _whole(value: Any) -> int:
    return value if _is_count(value) else 0


def extract_usage(result: Any) -> tuple[int, int] | None:
    """``(tokens_in, tokens_out)`` from a known result shape, else None."""
    if result is None or isinstance(result, (str, bytes, int, float)):
        return None
    for field in _USAGE_FIELDS:
        usage = _get(result, field)
        if usage is not None:
            counts = _counts(usage)
            if counts is not None:
                return counts
    return _counts(result)


def _is_running_total(usage: Any) -> bool:
    """Gemini's chunks repeat the usage so far (LangChain's carry deltas)."""
    return any(_is_count(_get(usage, name)) for name in _GEMINI_INPUTS)


def _provider_usage(chunk: Any) -> Any:
    """A chunk's running-total usage: OpenAI's last chunk, Anthropic's message
    events, Bedrock's ``metadata`` event."""
    usage = _get(chunk, "usage")
    if usage is None:
        for holder in ("message", "metadata"):  # Anthropic message_start, Bedrock metadata
            inner = _get(chunk, holder)
            usage = None if inner is None else _get(inner, "usage")
            if usage is not None:
                break
    return usage


def extract_stream_usage(chunks: list[Any]) -> tuple[int, int] | None:
    """Usage of a streamed response.

    LangChain chunks carry *deltas* in ``usage_metadata`` (it adds them when
    merging chunks), so those are summed. Provider chunks carry *running
    totals* (OpenAI's ``usage`` on the last chunk with
    ``stream_options={"include_usage": True}``; Anthropic's input in
    ``message_start.message.usage``, output in ``message_delta.usage``;
    Gemini's ``usage_metadata`` on each chunk; Bedrock's ``metadata`` event),
    so the last value of each side wins.
    """
    summed: list[int] | None = None
    latest: list[int | None] = [None, None]
    for chunk in chunks:
        if chunk is None or isinstance(chunk, (str, bytes)):
            continue
        delta = _get(chunk, "usage_metadata")
        if delta is not None and not _is_running_total(delta):
            counts = _counts(delta)
            if counts is not None:
                summed = [a + b for a, b in zip(summed or [0, 0], counts, strict=True)]
                continue
        usage = delta if delta is not None else _provider_usage(chunk)
        if usage is not None:
            _keep_latest(usage, latest)
    if summed is not None:
        return summed[0], summed[1]
    if latest == [None, None]:
        return None
    return latest[0] or 0, latest[1] or 0


def _keep_latest(usage: Any, latest: list[int | None]) -> None:
    """Each side's newest running total, from whichever shape this usage has."""
    for input_name, output_names in _SHAPES:
        tokens_in = _get(usage, input_name)
        outputs = [_get(usage, name) for name in output_names]
        if _is_count(tokens_in):
            latest[0] = tokens_in
        if any(_is_count(value) for value in outputs):
            latest[1] = sum(_whole(value) for value in outputs)
