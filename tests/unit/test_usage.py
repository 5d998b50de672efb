"""Token usage found in model results and streams (agentmeter.capture.usage).

OpenAI and LangChain shapes are the real classes (``openai``, ``langchain_core``);
the Anthropic SDK is not a dependency, so its shapes are stand-ins with the
SDK's field names (``Message.usage``, ``RawMessageStartEvent.message.usage``,
``RawMessageDeltaEvent.usage``), as objects and as the dicts of the raw API.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest
from langchain_core.messages import AIMessage, AIMessageChunk
from openai.types import CompletionUsage
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from openai.types.chat.chat_completion import Choice
from openai.types.chat.chat_completion_chunk import Choice as ChunkChoice
from openai.types.chat.chat_completion_chunk import ChoiceDelta
from openai.types.chat.chat_completion_message import ChatCompletionMessage
from openai.types.responses import ResponseUsage
from openai.types.responses.response_usage import InputTokensDetails, OutputTokensDetails

from agentmeter.capture.usage import extract_stream_usage, extract_usage

# ------------------------------------------------------------------ shapes


def openai_completion(prompt: int, completion: int) -> ChatCompletion:
    return ChatCompletion(
        id="chatcmpl-1",
        object="chat.completion",
        created=1700000000,
        model="gpt-4o-mini",
        choices=[
            Choice(
                index=0,
                finish_reason="stop",
                message=ChatCompletionMessage(role="assistant", content="hello"),
            )
        ],
        usage=CompletionUsage(
            prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion
        ),
    )


def openai_chunk(text: str | None, usage: CompletionUsage | None = None) -> ChatCompletionChunk:
    choices = [] if text is None else [ChunkChoice(index=0, delta=ChoiceDelta(content=text))]
    return ChatCompletionChunk(
        id="chatcmpl-1",
        object="chat.completion.chunk",
        created=1700000000,
        model="gpt-4o-mini",
        choices=choices,
        usage=usage,
    )


@dataclass
class AnthropicUsage:  # anthropic.types.Usage / MessageDeltaUsage
    input_tokens: int | None
    output_tokens: int
    cache_creation_input_tokens: int | None = None
    cache_read_input_tokens: int | None = None


@dataclass
class AnthropicMessage:  # anthropic.types.Message
    usage: AnthropicUsage
    id: str = "msg_1"
    type: str = "message"
    role: str = "assistant"
    content: list[Any] = field(default_factory=list)


@dataclass
class MessageStart:  # anthropic.types.RawMessageStartEvent
    message: AnthropicMessage
    type: str = "message_start"


@dataclass
class ContentDelta:  # anthropic.types.RawContentBlockDeltaEvent
    delta: Any
    index: int = 0
    type: str = "content_block_delta"


@dataclass
class MessageDelta:  # anthropic.types.RawMessageDeltaEvent
    usage: AnthropicUsage
    delta: Any = None
    type: str = "message_delta"


@dataclass
class MessageStop:
    type: str = "message_stop"


# ------------------------------------------------------------- one result


def test_openai_chat_completion_object():
    assert extract_usage(openai_completion(12, 5))[:2] == (12, 5)


def test_openai_dict():
    assert extract_usage({"usage": {"prompt_tokens": 12, "completion_tokens": 5}})[:2] == (12, 5)


def test_openai_responses_api_usage():
    usage = ResponseUsage(
        input_tokens=30,
        output_tokens=9,
        total_tokens=39,
        input_tokens_details=InputTokensDetails.model_construct(cached_tokens=0),
        output_tokens_details=OutputTokensDetails.model_construct(reasoning_tokens=0),
    )
    assert extract_usage(SimpleNamespace(id="resp_1", usage=usage))[:2] == (30, 9)


def test_anthropic_message_object_and_dict():
    assert extract_usage(AnthropicMessage(AnthropicUsage(21, 8)))[:2] == (21, 8)
    raw = {"id": "msg_1", "type": "message", "usage": {"input_tokens": 21, "output_tokens": 8}}
    assert extract_usage(raw)[:2] == (21, 8)


def test_langchain_ai_message():
    message = AIMessage(
        content="hi", usage_metadata={"input_tokens": 40, "output_tokens": 2, "total_tokens": 42}
    )
    assert extract_usage(message)[:2] == (40, 2)


def test_langchain_usage_metadata_wins_over_provider_usage():
    result = {
        "usage_metadata": {"input_tokens": 1, "output_tokens": 2},
        "usage": {"prompt_tokens": 100, "completion_tokens": 200},
    }
    assert extract_usage(result)[:2] == (1, 2)


def test_the_usage_object_itself():
    assert extract_usage(CompletionUsage(prompt_tokens=3, completion_tokens=4, total_tokens=7))[
        :2
    ] == (
        3,
        4,
    )
    assert extract_usage({"input_tokens": 5, "output_tokens": 6})[:2] == (5, 6)


def test_one_side_missing_counts_zero():
    assert extract_usage({"usage": {"prompt_tokens": 9}})[:2] == (9, 0)
    assert extract_usage({"usage": {"output_tokens": 9, "input_tokens": None}})[:2] == (0, 9)


@pytest.mark.parametrize(
    "result",
    [
        None,
        "plain text",
        b"bytes",
        42,
        1.5,
        [1, 2, 3],
        {"answer": "no usage"},
        {"usage": None},
        {"usage": {"total_tokens": 10}},
        AIMessage(content="no usage"),
        SimpleNamespace(usage="not a usage"),
    ],
)
def test_unknown_shapes_give_none(result):
    assert extract_usage(result) is None


def test_booleans_are_not_counts():
    assert extract_usage({"usage": {"prompt_tokens": True, "completion_tokens": 3}})[:2] == (0, 3)


# ----------------------------------------------------------------- streams


def test_openai_stream_usage_on_the_final_chunk():
    chunks = [
        openai_chunk("Hel"),
        openai_chunk("lo"),
        openai_chunk(None, CompletionUsage(prompt_tokens=17, completion_tokens=2, total_tokens=19)),
    ]
    assert extract_stream_usage(chunks)[:2] == (17, 2)


def test_openai_stream_without_include_usage_is_unknown():
    assert extract_stream_usage([openai_chunk("Hel"), openai_chunk("lo")]) is None


def test_anthropic_stream_objects():
    """Input on message_start (inside ``message``), running output totals on message_delta."""
    events = [
        MessageStart(AnthropicMessage(AnthropicUsage(25, 1))),
        ContentDelta({"type": "text_delta", "text": "Hi"}),
        MessageDelta(AnthropicUsage(None, 7)),
        ContentDelta({"type": "text_delta", "text": " there"}),
        MessageDelta(AnthropicUsage(None, 15)),  # cumulative, not a delta
        MessageStop(),
    ]
    assert extract_stream_usage(events)[:2] == (25, 15)


def test_anthropic_stream_raw_dicts():
    events = [
        {
            "type": "message_start",
            "message": {"id": "msg_1", "usage": {"input_tokens": 25, "output_tokens": 1}},
        },
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text"}},
        {"type": "content_block_delta", "index": 0, "delta": {"text": "Hi"}},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn"},
            "usage": {"output_tokens": 15},
        },
        {"type": "message_stop"},
    ]
    assert extract_stream_usage(events)[:2] == (25, 15)


def test_anthropic_stream_with_cumulative_input_on_message_delta():
    events = [
        {"type": "message_start", "message": {"usage": {"input_tokens": 10, "output_tokens": 1}}},
        {"type": "message_delta", "usage": {"input_tokens": 12, "output_tokens": 30}},
    ]
    assert extract_stream_usage(events)[:2] == (12, 30)


def test_langchain_chunk_deltas_are_summed():
    chunks = [
        AIMessageChunk(
            content="", usage_metadata={"input_tokens": 25, "output_tokens": 1, "total_tokens": 26}
        ),
        AIMessageChunk(content="Hi"),
        AIMessageChunk(
            content=" there",
            usage_metadata={"input_tokens": 0, "output_tokens": 14, "total_tokens": 14},
        ),
    ]
    assert extract_stream_usage(chunks)[:2] == (25, 15)
    merged = chunks[0] + chunks[1] + chunks[2]  # what LangChain itself makes of them
    assert extract_usage(merged)[:2] == (25, 15)


def test_stream_of_text_is_unknown():
    assert extract_stream_usage(["Hel", "lo", None, b"!"]) is None
    assert extract_stream_usage([]) is None


def test_stream_with_one_side_only():
    assert extract_stream_usage([{"usage": {"completion_tokens": 4}}])[:2] == (0, 4)


# ------------------------------------------- Gemini and Bedrock (issue 13)
# Stand-ins with the SDKs' field names: google-genai's GenerateContentResponse
# (``usage_metadata``), the Gemini REST body (``usageMetadata``), and the dicts
# boto3's bedrock-runtime returns for Converse and ConverseStream.


def gemini_response(prompt: int, candidates: int, thoughts: int | None = None, cached: int = 0):
    usage = SimpleNamespace(
        prompt_token_count=prompt,
        candidates_token_count=candidates,
        thoughts_token_count=thoughts,
        cached_content_token_count=cached or None,
        total_token_count=prompt + candidates + (thoughts or 0),
    )
    return SimpleNamespace(text="hi", usage_metadata=usage)


def test_gemini_sdk_response():
    """Regression: read as 0 tokens (only OpenAI, Anthropic and LangChain names were known)."""
    assert extract_usage(gemini_response(1200, 300))[:2] == (1200, 300)


def test_gemini_thinking_tokens_are_output_on_top_of_the_candidates():
    assert extract_usage(gemini_response(1200, 300, thoughts=500))[:2] == (1200, 800)


def test_gemini_cached_tokens_are_inside_the_prompt_count_not_added():
    assert extract_usage(gemini_response(1200, 300, cached=1000))[:2] == (1200, 300)


def test_gemini_rest_body():
    body = {
        "candidates": [],
        "usageMetadata": {
            "promptTokenCount": 40,
            "candidatesTokenCount": 9,
            "thoughtsTokenCount": 11,
            "totalTokenCount": 60,
        },
    }
    assert extract_usage(body)[:2] == (40, 20)


def test_bedrock_converse_response():
    """Regression: read as 0 tokens."""
    response = {
        "output": {"message": {"role": "assistant", "content": [{"text": "hi"}]}},
        "stopReason": "end_turn",
        "usage": {"inputTokens": 25, "outputTokens": 7, "totalTokens": 32},
        "metrics": {"latencyMs": 300},
    }
    assert extract_usage(response)[:2] == (25, 7)


def test_gemini_stream_repeats_running_totals_so_the_last_wins():
    chunks = [gemini_response(50, 5), gemini_response(50, 12), gemini_response(50, 20, thoughts=4)]
    assert extract_stream_usage(chunks)[:2] == (50, 24)


def test_bedrock_converse_stream_usage_is_in_its_metadata_event():
    events = [
        {"messageStart": {"role": "assistant"}},
        {"contentBlockDelta": {"delta": {"text": "hi"}, "contentBlockIndex": 0}},
        {"messageStop": {"stopReason": "end_turn"}},
        {"metadata": {"usage": {"inputTokens": 30, "outputTokens": 8}, "metrics": {}}},
    ]
    assert extract_stream_usage(events)[:2] == (30, 8)
