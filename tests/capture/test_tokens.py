"""meter_token_based_pay: usage found in each result shape, or given by an extractor.

Prices are 0.001 per input token and 0.002 per output token throughout, so a
call's cost is ``tokens_in x 0.001 + tokens_out x 0.002``, checked exactly
on the server. OpenAI and LangChain results are the real classes; Anthropic's
(not a dependency) are stand-ins with its SDK's field names and raw dicts.
"""

from __future__ import annotations

import asyncio
import logging
from decimal import Decimal
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

from agentmeter import meter_token_based_pay
from agentmeter.capture.charge import metering_errors

PRICES = {"input_token_price": "0.001", "output_token_price": "0.002"}


def cost(tokens_in: int, tokens_out: int) -> Decimal:
    return tokens_in * Decimal("0.001") + tokens_out * Decimal("0.002")


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


def anthropic_message(tokens_in: int, tokens_out: int) -> Any:
    usage = SimpleNamespace(
        input_tokens=tokens_in,
        output_tokens=tokens_out,
        cache_creation_input_tokens=None,
        cache_read_input_tokens=None,
    )
    return SimpleNamespace(id="msg_1", type="message", role="assistant", content=[], usage=usage)


RESULTS = {
    "openai_object": (openai_completion(120, 30), (120, 30)),
    "openai_dict": (
        {"choices": [], "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}},
        (11, 7),
    ),
    "anthropic_object": (anthropic_message(250, 40), (250, 40)),
    "anthropic_dict": (
        {"type": "message", "usage": {"input_tokens": 33, "output_tokens": 4}},
        (33, 4),
    ),
    "langchain_ai_message": (
        AIMessage(
            content="hello",
            usage_metadata={"input_tokens": 64, "output_tokens": 16, "total_tokens": 80},
        ),
        (64, 16),
    ),
}

STREAMS = {
    "openai_chunks": (
        [
            openai_chunk("Hel"),
            openai_chunk("lo"),
            openai_chunk(
                None, CompletionUsage(prompt_tokens=17, completion_tokens=2, total_tokens=19)
            ),
        ],
        (17, 2),
    ),
    "anthropic_events": (
        [
            {
                "type": "message_start",
                "message": {"id": "msg_1", "usage": {"input_tokens": 25, "output_tokens": 1}},
            },
            {"type": "content_block_delta", "index": 0, "delta": {"text": "Hi"}},
            {"type": "message_delta", "usage": {"output_tokens": 9}},
            {"type": "content_block_delta", "index": 0, "delta": {"text": "!"}},
            {"type": "message_delta", "usage": {"output_tokens": 15}},
            {"type": "message_stop"},
        ],
        (25, 15),
    ),
    "langchain_chunks": (
        [
            AIMessageChunk(
                content="Hi",
                usage_metadata={"input_tokens": 8, "output_tokens": 1, "total_tokens": 9},
            ),
            AIMessageChunk(content=" there"),
            AIMessageChunk(
                content="!",
                usage_metadata={"input_tokens": 0, "output_tokens": 5, "total_tokens": 5},
            ),
        ],
        (8, 6),
    ),
}


@pytest.mark.parametrize("shape", list(RESULTS))
def test_usage_is_found_in_each_result_shape(shape, client, ledger):
    result, (tokens_in, tokens_out) = RESULTS[shape]

    @meter_token_based_pay(client, **PRICES)
    def llm(prompt, user_id):
        return result

    @meter_token_based_pay(client, **PRICES)
    async def allm(prompt, user_id):
        return result

    assert llm("hi", "u-sync") is result
    assert asyncio.run(allm("hi", user_id="u-async")) is result
    ledger.settle()
    for user in ("u-sync", "u-async"):
        (event,) = ledger.events(user)
        assert (event.tokens_in, event.tokens_out) == (tokens_in, tokens_out)
        assert ledger.usage(user) == cost(tokens_in, tokens_out)


@pytest.mark.parametrize("shape", list(STREAMS))
def test_usage_is_found_in_each_stream_shape(shape, client, ledger):
    chunks, (tokens_in, tokens_out) = STREAMS[shape]

    @meter_token_based_pay(client, **PRICES)
    def stream(prompt, user_id):
        yield from chunks

    @meter_token_based_pay(client, **PRICES)
    async def astream(prompt, user_id):
        for chunk in chunks:
            yield chunk

    async def consume():
        return [chunk async for chunk in astream("hi", user_id="u-async")]

    assert list(stream("hi", "u-sync")) == chunks
    assert asyncio.run(consume()) == chunks
    ledger.settle()
    for user in ("u-sync", "u-async"):
        (event,) = ledger.events(user)
        assert (event.tokens_in, event.tokens_out) == (tokens_in, tokens_out)
        assert ledger.usage(user) == cost(tokens_in, tokens_out)


def test_extractor_is_called_with_the_arguments_and_the_result(client, ledger):
    calls = []

    def extract(*args, result=None, **kwargs):
        calls.append((args, result, kwargs))
        return len(args[0]), len(result)

    @meter_token_based_pay(client, tokens_extractor=extract, **PRICES)
    def summarize(text, user_id, style="short"):
        return text[:5]

    summarize("a long text", "u1", style="bullet")
    ledger.settle()
    assert calls == [(("a long text", "u1"), "a lon", {"style": "bullet"})]
    assert ledger.usage("u1") == cost(11, 5)


def test_extractor_wins_over_the_result_shape(client, ledger):
    @meter_token_based_pay(client, tokens_extractor=lambda *a, result=None, **k: (1, 1), **PRICES)
    def llm(user_id):
        return {"usage": {"prompt_tokens": 1000, "completion_tokens": 1000}}

    llm("u1")
    ledger.settle()
    assert ledger.usage("u1") == cost(1, 1)


def test_extractor_of_a_stream_gets_the_list_of_chunks(client, ledger):
    seen = []

    def extract(*args, result=None, **kwargs):
        seen.append(list(result))
        return sum(len(chunk) for chunk in result), 0

    @meter_token_based_pay(client, tokens_extractor=extract, **PRICES)
    def words(user_id):
        yield "ab"
        yield "cde"

    assert list(words("u1")) == ["ab", "cde"]
    ledger.settle()
    assert seen == [["ab", "cde"]]
    assert ledger.usage("u1") == cost(5, 0)


def test_extract_tokens_function_of_0_2(client, ledger):
    @meter_token_based_pay(client, extract_tokens=lambda *a, result=None, **k: (3, 2), **PRICES)
    def llm(user_id):
        return "text"

    llm("u1")
    ledger.settle()
    assert ledger.usage("u1") == cost(3, 2)


def test_unknown_shape_records_zero_tokens_and_logs_once_at_debug(client, ledger, caplog):
    @meter_token_based_pay(client, **PRICES)
    def llm(prompt, user_id):
        return "just text"

    with caplog.at_level(logging.DEBUG, logger="agentmeter"):
        assert llm("a", "u1") == "just text"
        assert llm("b", "u1") == "just text"
    ledger.settle()
    notes = [r for r in caplog.records if "no token usage found" in r.getMessage()]
    assert len(notes) == 1
    assert notes[0].levelno == logging.DEBUG
    events = ledger.events("u1")
    assert [(e.tokens_in, e.tokens_out) for e in events] == [(0, 0), (0, 0)]
    assert ledger.usage("u1") == Decimal(0)


@pytest.mark.parametrize(
    "extractor",
    [
        lambda *a, result=None, **k: 1 / 0,  # raises
        lambda *a, result=None, **k: None,  # not a pair
        lambda *a, result=None, **k: (-5, 1),  # negative
        lambda *a, result=None, **k: ("many", 1),  # not a count
    ],
    ids=["raises", "none", "negative", "not-a-count"],
)
def test_a_bad_extractor_is_a_metering_fault_not_the_callers(extractor, client, ledger, caplog):
    @meter_token_based_pay(client, tokens_extractor=extractor, **PRICES)
    def llm(user_id):
        return "answer"

    before = metering_errors.value
    with caplog.at_level(logging.WARNING, logger="agentmeter"):
        assert llm("u1") == "answer"
    assert metering_errors.value == before + 1
    assert any("metering billing of" in r.getMessage() for r in caplog.records)
    ledger.settle()
    assert ledger.events("u1") == []


def test_a_bad_extractor_raises_with_strict(client, ledger):
    @meter_token_based_pay(
        client, tokens_extractor=lambda *a, result=None, **k: 1 / 0, strict=True, **PRICES
    )
    def llm(user_id):
        return "answer"

    with pytest.raises(ZeroDivisionError):
        llm("u1")
    ledger.settle()
    assert ledger.events("u1") == []
