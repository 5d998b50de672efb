"""Find token usage in the result of a model call, whatever client made it.

Recognised shapes (objects or dicts):

- OpenAI: ``result.usage.prompt_tokens`` / ``completion_tokens``
- Anthropic: ``result.usage.input_tokens`` / ``output_tokens``
- LangChain ``AIMessage``: ``result.usage_metadata["input_tokens"]`` / ``["output_tokens"]``
- Gemini: ``result.usage_metadata.prompt_token_count`` (plus
  ``tool_use_prompt_token_count``) / ``candidates_token_count``, plus
  ``thoughts_token_count`` (billed as output, on top of the candidates);
  the REST body's ``usageMetadata`` with camelCase names too
- Bedrock Converse: ``result["usage"]["inputTokens"]`` / ``["outputTokens"]``
  (a ConverseStream ``metadata`` event holds the same under ``metadata``)
- the usage object itself, with any of those names

The same tokens are never counted twice: each shape is read from one place.
Cache tokens follow the wire's convention whatever the provider's:
``tokens_in`` counts every input token, cache reads included
(``cached_tokens_in``), and cache writes (``cache_write_tokens``) come on top.
OpenAI (``prompt_tokens_details.cached_tokens`` and ``cache_write_tokens``,
or the Responses API's ``input_tokens_details``) counts both inside its
input, Gemini (``cached_content_token_count``) its cache reads; Anthropic and Bedrock count cache
reads and writes apart from it; LangChain's ``usage_metadata`` counts both
inside ``input_tokens`` (``input_token_details``).

>>> extract_usage({"usage": {"prompt_tokens": 12, "completion_tokens": 5}})
TokenUsage(tokens_in=12, tokens_out=5, cached_tokens_in=0, cache_write_tokens=0)
>>> extract_usage({"usage": {"input_tokens": 10, "output_tokens": 5,
...                          "cache_read_input_tokens": 90, "cache_creation_input_tokens": 20}})
TokenUsage(tokens_in=100, tokens_out=5, cached_tokens_in=90, cache_write_tokens=20)
>>> extract_usage({"usageMetadata": {"promptTokenCount": 7, "candidatesTokenCount": 3,
...                                  "thoughtsTokenCount": 2}})
TokenUsage(tokens_in=7, tokens_out=5, cached_tokens_in=0, cache_write_tokens=0)
>>> extract_usage("no usage here") is None
True
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

# (input name, output names added together): each provider's pair.
_SHAPES = (
    ("prompt_tokens", ("completion_tokens",)),  # OpenAI
    ("input_tokens", ("output_tokens",)),  # Anthropic, LangChain, OpenAI Responses
    ("inputTokens", ("outputTokens",)),  # Bedrock Converse
    ("prompt_token_count", ("candidates_token_count", "thoughts_token_count")),  # Gemini SDK
    ("promptTokenCount", ("candidatesTokenCount", "thoughtsTokenCount")),  # Gemini REST
)
# Shapes whose streamed chunks carry running totals, not deltas.
_GEMINI_INPUTS = ("prompt_token_count", "promptTokenCount")
_USAGE_FIELDS = ("usage_metadata", "usageMetadata", "usage")
# Cache reads counted inside the input: (holder of the detail or None, its name).
_CACHED_INSIDE = {
    "prompt_tokens": ("prompt_tokens_details", "cached_tokens"),
    "prompt_token_count": (None, "cached_content_token_count"),
    "promptTokenCount": (None, "cachedContentTokenCount"),
}


# Gemini's tool-use prompt tokens: billed as input, counted apart from the prompt.
_TOOL_USE_PROMPT = {
    "prompt_token_count": "tool_use_prompt_token_count",
    "promptTokenCount": "toolUsePromptTokenCount",
}
# Every usage field a streamed chunk may carry, merged field by field.
_STREAM_FIELDS = tuple(
    dict.fromkeys(
        [name for input_name, outputs in _SHAPES for name in (input_name, *outputs)]
        + [
            "prompt_tokens_details",
            "input_tokens_details",
            "input_token_details",
            "cache_read_input_tokens",
            "cache_creation_input_tokens",
            "cacheReadInputTokens",
            "cacheWriteInputTokens",
            "cached_content_token_count",
            "cachedContentTokenCount",
            *_TOOL_USE_PROMPT.values(),
        ]
    )
)


class TokenUsage(NamedTuple):
    """The tokens of one model call, by class (see the module's convention)."""

    tokens_in: int
    tokens_out: int
    cached_tokens_in: int = 0
    cache_write_tokens: int = 0


def _get(source: Any, name: str) -> Any:
    if type(source) is dict or isinstance(source, Mapping):
        return source.get(name)
    if hasattr(type(source), "__pydantic_fields__"):
        # An SDK's pydantic object: fields in __dict__, extras aside. getattr()
        # of a name it lacks raises inside pydantic, at ~1 us a miss.
        fields = source.__dict__
        if name in fields:
            return fields[name]
        extra = source.__pydantic_extra__
        return extra.get(name) if extra else None
    return getattr(source, name, None)


def _counts(usage: Any) -> TokenUsage | None:
    for input_name, output_names in _SHAPES:
        tokens_in = _get(usage, input_name)
        outputs = [_get(usage, name) for name in output_names]
        if _is_count(tokens_in) or any(_is_count(value) for value in outputs):
            tokens_out = sum(_whole(value) for value in outputs)
            return _input_classes(usage, input_name, _whole(tokens_in), tokens_out)
    return None


def _input_classes(usage: Any, input_name: str, tokens_in: int, tokens_out: int) -> TokenUsage:
    """The input side by class, in the wire's convention (cache reads inside)."""
    cached = written = 0
    if input_name in _TOOL_USE_PROMPT:  # Gemini: tool-use prompt tokens are input too
        tokens_in += _whole(_get(usage, _TOOL_USE_PROMPT[input_name]))
    if input_name in _CACHED_INSIDE:
        holder, name = _CACHED_INSIDE[input_name]
        source = usage if holder is None else _get(usage, holder)
        if source is not None:
            cached = _whole(_get(source, name))
            written = _whole(_get(source, "cache_write_tokens"))  # OpenAI's, inside too
            tokens_in = max(tokens_in - written, 0)
    elif input_name == "inputTokens":  # Bedrock: cache reads and writes apart
        cached = _whole(_get(usage, "cacheReadInputTokens"))
        written = _whole(_get(usage, "cacheWriteInputTokens"))
        tokens_in += cached
    else:
        tokens_in, cached, written = _input_tokens_classes(usage, tokens_in)
    return TokenUsage(tokens_in, tokens_out, min(cached, tokens_in), written)


def _input_tokens_classes(usage: Any, tokens_in: int) -> tuple[int, int, int]:
    """``input_tokens``: LangChain's (all inside), Anthropic's (all apart) or
    OpenAI Responses' (cache reads inside, under ``input_tokens_details``)."""
    langchain = _get(usage, "input_token_details")
    if langchain is not None:
        written = _whole(_get(langchain, "cache_creation"))
        return max(tokens_in - written, 0), _whole(_get(langchain, "cache_read")), written
    responses = _get(usage, "input_tokens_details")
    if responses is not None:  # both inside the input
        written = _whole(_get(responses, "cache_write_tokens"))
        return max(tokens_in - written, 0), _whole(_get(responses, "cached_tokens")), written
    cached = _whole(_get(usage, "cache_read_input_tokens"))
    written = _whole(_get(usage, "cache_creation_input_tokens"))
    return tokens_in + cached, cached, written


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _whole(value: Any) -> int:
    return value if _is_count(value) else 0


def extract_usage(result: Any) -> TokenUsage | None:
    """The tokens of a known result shape, by class; else None."""
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


def extract_stream_usage(chunks: list[Any]) -> TokenUsage | None:
    """Usage of a streamed response.

    LangChain chunks carry *deltas* in ``usage_metadata`` (it adds them when
    merging chunks), so those are summed. Provider chunks carry *running
    totals* (OpenAI's ``usage`` on the last chunk with
    ``stream_options={"include_usage": True}``; Anthropic's input in
    ``message_start.message.usage``, output and later totals in
    ``message_delta.usage``; Gemini's ``usage_metadata`` on each chunk;
    Bedrock's ``metadata`` event), so they are merged field by field, the
    latest value of each field winning and a field a chunk leaves out keeping
    the earlier one (as the SDKs accumulate them).
    """
    summed: TokenUsage | None = None
    merged: dict[str, Any] = {}
    for chunk in chunks:
        if chunk is None or isinstance(chunk, (str, bytes)):
            continue
        delta = _get(chunk, "usage_metadata")
        if delta is not None and not _is_running_total(delta):
            counts = _counts(delta)
            if counts is not None:
                before = summed or TokenUsage(0, 0)
                summed = TokenUsage(*(a + b for a, b in zip(before, counts, strict=True)))
                continue
        usage = delta if delta is not None else _provider_usage(chunk)
        if usage is not None:
            merge_usage(merged, usage)
    if summed is not None:
        return summed
    return _counts(merged) if merged else None


def merge_usage(merged: dict[str, Any], usage: Any) -> None:
    """Lay one chunk's usage over the fields seen so far (None keeps the earlier)."""
    for name in _STREAM_FIELDS:
        value = _get(usage, name)
        if value is not None:
            merged[name] = value
