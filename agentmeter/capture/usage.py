"""Find token usage in the result of a model call, whatever client made it.

Recognised shapes (objects or dicts):

- OpenAI: ``result.usage.prompt_tokens`` / ``completion_tokens``
- Anthropic: ``result.usage.input_tokens`` / ``output_tokens``
- LangChain ``AIMessage``: ``result.usage_metadata["input_tokens"]`` / ``["output_tokens"]``
- the usage object itself, with either pair of names

>>> extract_usage({"usage": {"prompt_tokens": 12, "completion_tokens": 5}})
(12, 5)
>>> extract_usage("no usage here") is None
True
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

_PAIRS = (("prompt_tokens", "completion_tokens"), ("input_tokens", "output_tokens"))


def _get(source: Any, name: str) -> Any:
    if isinstance(source, Mapping):
        return source.get(name)
    return getattr(source, name, None)


def _counts(usage: Any) -> tuple[int, int] | None:
    for input_name, output_name in _PAIRS:
        tokens_in, tokens_out = _get(usage, input_name), _get(usage, output_name)
        if isinstance(tokens_in, int) or isinstance(tokens_out, int):
            return _whole(tokens_in), _whole(tokens_out)
    return None


def _whole(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def extract_usage(result: Any) -> tuple[int, int] | None:
    """``(tokens_in, tokens_out)`` from a known result shape, else None."""
    if result is None or isinstance(result, (str, bytes, int, float)):
        return None
    for field in ("usage_metadata", "usage"):
        usage = _get(result, field)
        if usage is not None:
            counts = _counts(usage)
            if counts is not None:
                return counts
    return _counts(result)


def extract_stream_usage(chunks: list[Any]) -> tuple[int, int] | None:
    """Usage of a streamed response.

    LangChain chunks carry *deltas* in ``usage_metadata`` (it adds them when
    merging chunks), so those are summed. Provider chunks carry *running
    totals* in ``usage`` (OpenAI on the last chunk with
    ``stream_options={"include_usage": True}``; Anthropic's input in
    ``message_start.message.usage``, output in ``message_delta.usage``), so
    the last value of each field wins.
    """
    summed: list[int] | None = None
    latest: list[int | None] = [None, None]
    for chunk in chunks:
        if chunk is None or isinstance(chunk, (str, bytes)):
            continue
        delta = _get(chunk, "usage_metadata")
        counts = _counts(delta) if delta is not None else None
        if counts is not None:
            summed = [a + b for a, b in zip(summed or [0, 0], counts, strict=True)]
            continue
        usage = _get(chunk, "usage")
        if usage is None:  # Anthropic's message_start holds it in its message
            message = _get(chunk, "message")
            usage = None if message is None else _get(message, "usage")
        if usage is not None:
            for position, names in enumerate(zip(*_PAIRS, strict=True)):
                for name in names:
                    value = _get(usage, name)
                    if isinstance(value, int) and not isinstance(value, bool):
                        latest[position] = value
    if summed is not None:
        return summed[0], summed[1]
    if latest == [None, None]:
        return None
    return latest[0] or 0, latest[1] or 0
