"""Cached and cache-write tokens read from each provider's usage shape, in the
wire's convention (issue 13): ``tokens_in`` holds every input token, cache
reads included; cache writes come on top. No token is counted twice."""

from __future__ import annotations

from types import SimpleNamespace

from openai.types import CompletionUsage
from openai.types.completion_usage import PromptTokensDetails
from openai.types.responses import ResponseUsage
from openai.types.responses.response_usage import InputTokensDetails, OutputTokensDetails

from agentmeter.capture.usage import TokenUsage, extract_stream_usage, extract_usage


def test_openai_cached_tokens_are_inside_prompt_tokens():
    usage = CompletionUsage(
        prompt_tokens=2000,
        completion_tokens=50,
        total_tokens=2050,
        prompt_tokens_details=PromptTokensDetails(cached_tokens=1536),
    )
    assert extract_usage(SimpleNamespace(usage=usage)) == TokenUsage(2000, 50, 1536, 0)


def test_openai_cache_writes_are_inside_prompt_tokens_and_moved_on_top():
    usage = CompletionUsage(
        prompt_tokens=2000,
        completion_tokens=50,
        total_tokens=2050,
        prompt_tokens_details=PromptTokensDetails(cached_tokens=0, cache_write_tokens=1500),
    )
    assert extract_usage(SimpleNamespace(usage=usage)) == TokenUsage(500, 50, 0, 1500)


def test_openai_responses_cache_tokens_are_inside_input_tokens():
    usage = ResponseUsage(
        input_tokens=900,
        output_tokens=40,
        total_tokens=940,
        input_tokens_details=InputTokensDetails(cached_tokens=512, cache_write_tokens=100),
        output_tokens_details=OutputTokensDetails(reasoning_tokens=30),  # inside output
    )
    assert extract_usage(SimpleNamespace(usage=usage)) == TokenUsage(800, 40, 512, 100)


def test_anthropic_cache_reads_and_writes_are_outside_input_tokens():
    body = {
        "usage": {
            "input_tokens": 20,
            "output_tokens": 300,
            "cache_read_input_tokens": 4000,
            "cache_creation_input_tokens": 1000,
        }
    }
    assert extract_usage(body) == TokenUsage(4020, 300, 4000, 1000)


def test_anthropic_without_cache_fields_is_unchanged():
    usage = SimpleNamespace(
        input_tokens=21,
        output_tokens=8,
        cache_read_input_tokens=None,
        cache_creation_input_tokens=None,
    )
    assert extract_usage(SimpleNamespace(usage=usage)) == TokenUsage(21, 8, 0, 0)


def test_anthropic_stream_reads_its_cache_tokens_from_message_start():
    events = [
        {
            "type": "message_start",
            "message": {
                "usage": {
                    "input_tokens": 10,
                    "output_tokens": 1,
                    "cache_read_input_tokens": 90,
                    "cache_creation_input_tokens": 5,
                }
            },
        },
        {"type": "content_block_delta", "delta": {"text": "hi"}},
        {"type": "message_delta", "usage": {"output_tokens": 42}},
    ]
    assert extract_stream_usage(events) == TokenUsage(100, 42, 90, 5)


def test_gemini_cached_content_is_inside_the_prompt_count():
    usage = SimpleNamespace(
        prompt_token_count=1200,
        candidates_token_count=300,
        thoughts_token_count=None,
        cached_content_token_count=1000,
    )
    assert extract_usage(SimpleNamespace(usage_metadata=usage)) == TokenUsage(1200, 300, 1000, 0)
    rest = {"usageMetadata": {"promptTokenCount": 50, "cachedContentTokenCount": 20}}
    assert extract_usage(rest) == TokenUsage(50, 0, 20, 0)


def test_bedrock_cache_reads_and_writes_are_outside_input_tokens():
    body = {
        "usage": {
            "inputTokens": 30,
            "outputTokens": 7,
            "cacheReadInputTokens": 70,
            "cacheWriteInputTokens": 11,
        }
    }
    assert extract_usage(body) == TokenUsage(100, 7, 70, 11)


def test_langchain_usage_metadata_holds_both_inside_input_tokens():
    usage = {
        "input_tokens": 1000,
        "output_tokens": 3,
        "total_tokens": 1003,
        "input_token_details": {"cache_read": 700, "cache_creation": 100},
    }
    assert extract_usage(SimpleNamespace(usage_metadata=usage)) == TokenUsage(900, 3, 700, 100)


def test_cached_tokens_never_exceed_the_input():
    usage = {"prompt_tokens": 10, "prompt_tokens_details": {"cached_tokens": 50}}
    assert extract_usage({"usage": usage}) == TokenUsage(10, 0, 10, 0)


def test_a_message_delta_without_cache_fields_keeps_message_starts_cache_counts():
    """Regression: a later total without the cache fields reset them to 0."""
    start = {
        "type": "message_start",
        "message": {
            "usage": {
                "input_tokens": 10,
                "cache_read_input_tokens": 90,
                "cache_creation_input_tokens": 20,
                "output_tokens": 1,
            }
        },
    }
    delta = {"type": "message_delta", "usage": {"input_tokens": 10, "output_tokens": 15}}
    assert extract_stream_usage([start, delta]) == TokenUsage(100, 15, 90, 20)


def test_pydantic_usage_objects_are_read_without_touching_missing_attributes():
    usage = CompletionUsage(prompt_tokens=7, completion_tokens=2, total_tokens=9)
    assert extract_usage(usage) == TokenUsage(7, 2, 0, 0)


def test_gemini_tool_use_prompt_tokens_are_input_on_top_of_the_prompt():
    body = {
        "usageMetadata": {
            "promptTokenCount": 7,
            "toolUsePromptTokenCount": 4,
            "candidatesTokenCount": 3,
        }
    }
    assert extract_usage(body) == TokenUsage(11, 3, 0, 0)
    sdk = SimpleNamespace(
        usage_metadata=SimpleNamespace(
            prompt_token_count=7, tool_use_prompt_token_count=4, candidates_token_count=3
        )
    )
    assert extract_usage(sdk) == TokenUsage(11, 3, 0, 0)
