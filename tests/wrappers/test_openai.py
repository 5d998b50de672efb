"""``agentmeter.wrap()`` on the real ``openai`` SDK, pointed at a fake OpenAI API.

Every Chat Completions, Responses and Embeddings call is billed once, by
token class (OpenAI counts cached input and cache writes inside the prompt:
the event keeps the cached tokens inside ``tokens_in`` and moves the writes on
top), at the catalog's prices for the model the response names; streams when
they end. Chat streams get ``include_usage`` added, and its extra chunk is
hidden unless the caller asked for it.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from decimal import Decimal

import openai
import pytest
from openai import AsyncAzureOpenAI, AsyncOpenAI, AzureOpenAI, OpenAI
from openai.lib.streaming.chat import ChatCompletionStream
from openai.lib.streaming.responses import ResponseStream
from openai.types import CreateEmbeddingResponse
from openai.types.chat import ChatCompletion
from openai.types.responses import Response
from pydantic import BaseModel

import agentmeter.integrations.provider_meter as provider_meter
from agentmeter import attribute
from agentmeter.core.catalog import model_prices
from agentmeter.integrations.wrap import wrap

from .fake_openai import MODEL, OpenAIFake, error_reply

TEXT = "Hello, world"
ASK = {"messages": [{"role": "user", "content": "Say hello"}]}
EMBEDDING_MODEL = "text-embedding-3-small"
RESPONSE_EVENTS = [
    "response.created",
    "response.in_progress",
    "response.output_item.added",
    "response.content_part.added",
    "response.output_text.delta",
    "response.output_text.delta",
    "response.output_text.delta",
    "response.output_text.done",
    "response.content_part.done",
    "response.output_item.done",
    "response.completed",
]


@pytest.fixture(autouse=True)
def _fresh_warnings(monkeypatch):
    monkeypatch.setattr(provider_meter, "_warned", set())


@pytest.fixture
def api(fake_server):
    """``api(**counts)``: a fake OpenAI API, and the server it runs on."""

    def start(**options):
        fake = OpenAIFake(**options)
        return fake, fake_server(fake)

    return start


def client_of(server, cls=OpenAI, max_retries=0, **options):
    if cls in (AzureOpenAI, AsyncAzureOpenAI):
        return cls(
            api_key="test",
            api_version="2024-10-21",
            azure_endpoint=server.url,
            max_retries=max_retries,
            **options,
        )
    return cls(api_key="test", base_url=server.url + "/v1", max_retries=max_retries, **options)


def cost(model, tokens_in, tokens_out, cached=0, written=0) -> Decimal:
    """The exact cost the catalog gives (0 for a model it cannot price)."""
    p = model_prices(model)
    if p is None:
        return Decimal(0)
    return (
        (tokens_in - cached) * p.input
        + cached * (p.cached_input or p.input)
        + written * (p.cache_write or p.input)
        + tokens_out * p.output
    )


def assert_billed(event, tokens_in, tokens_out, cached=0, written=0, model=MODEL, response_id=None):
    """One event: its tokens by class, its exact cost, what it names."""
    classes = (event.tokens_in, event.tokens_out, event.cached_tokens_in, event.cache_write_tokens)
    assert classes == (tokens_in, tokens_out, cached, written)
    assert event.total_cost == cost(model, tokens_in, tokens_out, cached, written)
    assert event.metadata["provider"] == "openai"
    assert event.metadata["model"] == model
    assert event.metadata.get("response_id") == response_id


def run(coroutine):
    return asyncio.run(coroutine)


# -- Chat Completions ------------------------------------------------------------------


def test_chat_create_bills_tokens_by_class_at_the_models_prices(api, meter, events):
    fake, server = api(prompt_tokens=1000, cached_tokens=600, completion_tokens=200)
    client = wrap(client_of(server), meter)
    completion = client.chat.completions.create(model="gpt-4o", reasoning_effort="low", **ASK)
    assert isinstance(completion, ChatCompletion)
    assert completion.choices[0].message.content == TEXT
    [event] = events(meter)
    # The response's dated model is billed, not the alias asked for.
    assert_billed(event, 1000, 200, cached=600, response_id=fake.served[0])


def test_reasoning_tokens_are_inside_the_output_and_cache_writes_on_top(api, meter, events):
    fake, server = api(
        prompt_tokens=1000, cached_tokens=300, cache_write_tokens=200, reasoning_tokens=150
    )
    client = wrap(client_of(server), meter)
    client.chat.completions.create(model="gpt-4o", **ASK)
    [event] = events(meter)
    assert_billed(event, 800, 12, cached=300, written=200, response_id=fake.served[0])


def test_async_chat_create_bills_the_requested_model_when_the_response_names_none(
    api, meter, events
):
    fake, server = api(model="", prompt_tokens=300, completion_tokens=40)

    async def main():
        client = wrap(client_of(server, AsyncOpenAI), meter)
        return await client.chat.completions.create(model="gpt-4o-mini", **ASK)

    assert run(main()).usage.prompt_tokens == 300
    [event] = events(meter)
    assert_billed(event, 300, 40, model="gpt-4o-mini", response_id=fake.served[0])


def test_chat_parse_bills_the_parsed_completion(api, meter, events):
    class Answer(BaseModel):
        answer: int

    fake, server = api(text=('{"answer": 4}',), prompt_tokens=50, completion_tokens=7)
    client = wrap(client_of(server), meter)
    parsed = client.chat.completions.parse(model="gpt-4o", response_format=Answer, **ASK)
    assert parsed.choices[0].message.parsed == Answer(answer=4)
    [event] = events(meter)
    assert_billed(event, 50, 7, response_id=fake.served[0])


# -- Chat Completions streams ----------------------------------------------------------


def test_a_stream_gets_usage_added_and_the_caller_never_sees_its_chunk(api, meter, events):
    fake, server = api(prompt_tokens=120, cached_tokens=100, completion_tokens=9)
    client = wrap(client_of(server), meter)
    asked = dict(model="gpt-4o", stream=True, **ASK)
    stream = client.chat.completions.create(**asked)
    pieces = []
    for chunk in stream:
        pieces.append(chunk.choices[0].delta.content or "")  # every chunk has a choice
        assert events(meter) == []  # billed at the end, not before
    assert "".join(pieces) == TEXT
    assert len(pieces) == 4  # three pieces of text, the finish_reason chunk
    assert asked == dict(model="gpt-4o", stream=True, **ASK)  # the caller's kwargs untouched
    assert server.requests[0][2]["stream_options"] == {"include_usage": True}
    [event] = events(meter)
    assert_billed(event, 120, 9, cached=100, response_id=fake.served[0])


def test_the_callers_stream_options_are_copied_never_changed(api, meter, events):
    _, server = api()
    client = wrap(client_of(server), meter)
    options = {"include_obfuscation": False}
    stream = client.chat.completions.create(
        model="gpt-4o", stream=True, stream_options=options, **ASK
    )
    assert all(chunk.choices for chunk in stream)
    assert options == {"include_obfuscation": False}
    sent = server.requests[0][2]["stream_options"]
    assert sent == {"include_obfuscation": False, "include_usage": True}
    [event] = events(meter)
    assert_billed(event, 25, 12, response_id="chatcmpl_0001")


def test_a_stream_that_asked_for_usage_passes_every_chunk(api, meter, events):
    fake, server = api(prompt_tokens=70, completion_tokens=5)
    client = wrap(client_of(server), meter)
    stream = client.chat.completions.create(
        model="gpt-4o", stream=True, stream_options={"include_usage": True}, **ASK
    )
    chunks = list(stream)
    assert chunks[-1].choices == []
    assert chunks[-1].usage.prompt_tokens == 70
    assert len(chunks) == 5
    [event] = events(meter)
    assert_billed(event, 70, 5, response_id=fake.served[0])


def test_an_async_stream_gets_usage_added_and_hidden(api, meter, events):
    fake, server = api(prompt_tokens=64, completion_tokens=16, cached_tokens=32)

    async def main():
        client = wrap(client_of(server, AsyncOpenAI), meter)
        stream = await client.chat.completions.create(model="gpt-4o", stream=True, **ASK)
        async with stream:
            return [chunk.choices[0].delta.content or "" async for chunk in stream]

    assert "".join(run(main())) == TEXT
    assert server.requests[0][2]["stream_options"] == {"include_usage": True}
    [event] = events(meter)
    assert_billed(event, 64, 16, cached=32, response_id=fake.served[0])


def test_the_chat_stream_helper_is_metered_and_its_stream_is_the_sdks(api, meter, events):
    fake, server = api(prompt_tokens=40, completion_tokens=3)
    client = wrap(client_of(server), meter)
    with client.chat.completions.stream(model="gpt-4o", **ASK) as stream:
        assert isinstance(stream, ChatCompletionStream)
        final = stream.get_final_completion()
    assert final.choices[0].message.content == TEXT
    [event] = events(meter)
    assert_billed(event, 40, 3, response_id=fake.served[0])


def test_the_async_chat_stream_helper_is_metered(api, meter, events):
    fake, server = api(prompt_tokens=41, completion_tokens=4)

    async def main():
        client = wrap(client_of(server, AsyncOpenAI), meter)
        async with client.chat.completions.stream(model="gpt-4o", **ASK) as stream:
            return await stream.get_final_completion()

    assert run(main()).choices[0].message.content == TEXT
    [event] = events(meter)
    assert_billed(event, 41, 4, response_id=fake.served[0])


# -- streams that end early ------------------------------------------------------------


def read_one_and_close(client):
    stream = client.chat.completions.create(model="gpt-4o", stream=True, **ASK)
    for chunk in stream:
        assert chunk.choices[0].delta.content == "Hello"
        break
    stream.close()


def read_one_and_drop(client):
    stream = client.chat.completions.create(model="gpt-4o", stream=True, **ASK)
    assert next(iter(stream)).choices[0].delta.content == "Hello"
    del stream
    gc.collect()


@pytest.mark.parametrize("abandon", [read_one_and_close, read_one_and_drop])
def test_a_stream_abandoned_before_its_usage_bills_nothing_and_warns_once(
    api, meter, events, caplog, abandon
):
    _, server = api()
    client = wrap(client_of(server), meter)
    with caplog.at_level(logging.WARNING, logger="agentmeter"):
        abandon(client)
        abandon(client)
    assert events(meter) == []
    assert caplog.text.count("closed before its usage arrived") == 1
    assert [record.levelname for record in caplog.records] == ["WARNING"]


def test_an_async_stream_closed_halfway_bills_nothing_and_warns(api, meter, events, caplog):
    _, server = api()

    async def main():
        client = wrap(client_of(server, AsyncOpenAI), meter)
        stream = await client.chat.completions.create(model="gpt-4o", stream=True, **ASK)
        async for _ in stream:
            break
        await stream.close()

    with caplog.at_level(logging.WARNING, logger="agentmeter"):
        run(main())
    assert events(meter) == []
    assert caplog.text.count("closed before its usage arrived") == 1


def test_a_responses_stream_left_after_its_usage_is_billed_when_the_block_exits(api, meter, events):
    fake, server = api(prompt_tokens=90, completion_tokens=30)
    client = wrap(client_of(server), meter)
    with client.responses.stream(model="gpt-4o", input="hi") as stream:
        for event in stream:
            if event.type == "response.completed":
                break  # the stream's end is never read
        assert events(meter) == []
    assert stream is not None  # still referenced: billed by the block's exit, not by GC
    [event] = events(meter)
    assert_billed(event, 90, 30, response_id=fake.served[0])


# -- Responses -------------------------------------------------------------------------


def test_responses_create_bills_cached_input_and_reasoning(api, meter, events):
    fake, server = api(prompt_tokens=2000, cached_tokens=1500, completion_tokens=300)
    client = wrap(client_of(server), meter)
    response = client.responses.create(model="gpt-4o", input="hi")
    assert isinstance(response, Response)
    assert response.output_text == TEXT
    [event] = events(meter)
    assert_billed(event, 2000, 300, cached=1500, response_id=fake.served[0])


def test_async_responses_create_moves_cache_writes_on_top(api, meter, events):
    fake, server = api(model="", prompt_tokens=500, cached_tokens=100, cache_write_tokens=50)

    async def main():
        client = wrap(client_of(server, AsyncOpenAI), meter)
        return await client.responses.create(model="gpt-4.1", input="hi")

    assert run(main()).usage.input_tokens == 500
    [event] = events(meter)
    assert_billed(
        event, 450, 12, cached=100, written=50, model="gpt-4.1", response_id=fake.served[0]
    )


def test_a_responses_stream_passes_every_event_and_bills_at_completed(api, meter, events):
    fake, server = api(prompt_tokens=77, completion_tokens=11, cached_tokens=7)
    client = wrap(client_of(server), meter)
    stream = client.responses.create(model="gpt-4o", input="hi", stream=True)
    seen = [event.type for event in stream]
    assert seen == RESPONSE_EVENTS
    assert "stream_options" not in server.requests[0][2]
    [event] = events(meter)
    assert_billed(event, 77, 11, cached=7, response_id=fake.served[0])


def test_an_async_responses_stream_bills_at_completed(api, meter, events):
    fake, server = api(prompt_tokens=78, completion_tokens=12)

    async def main():
        client = wrap(client_of(server, AsyncOpenAI), meter)
        stream = await client.responses.create(model="gpt-4o", input="hi", stream=True)
        return [event.type async for event in stream]

    assert run(main()) == RESPONSE_EVENTS
    [event] = events(meter)
    assert_billed(event, 78, 12, response_id=fake.served[0])


@pytest.mark.parametrize("cls", [OpenAI, AsyncOpenAI])
def test_the_responses_stream_helper_is_metered(api, meter, events, cls):
    fake, server = api(prompt_tokens=33, completion_tokens=22)
    client = wrap(client_of(server, cls), meter)

    async def read_async():
        async with client.responses.stream(model="gpt-4o", input="hi") as stream:
            return await stream.get_final_response()

    if cls is OpenAI:
        with client.responses.stream(model="gpt-4o", input="hi") as stream:
            assert isinstance(stream, ResponseStream)
            final = stream.get_final_response()
    else:
        final = run(read_async())
    assert final.output_text == TEXT
    [event] = events(meter)
    assert_billed(event, 33, 22, response_id=fake.served[0])


# -- Embeddings ------------------------------------------------------------------------


@pytest.mark.parametrize("cls", [OpenAI, AsyncOpenAI])
def test_embeddings_bill_their_input_only(api, meter, events, cls):
    _, server = api(model=None, prompt_tokens=18)
    client = wrap(client_of(server, cls), meter)

    async def embed_async():
        return await client.embeddings.create(model=EMBEDDING_MODEL, input=["a", "b"])

    if cls is OpenAI:
        result = client.embeddings.create(model=EMBEDDING_MODEL, input=["a", "b"])
    else:
        result = run(embed_async())
    assert isinstance(result, CreateEmbeddingResponse)
    assert result.data[1].embedding == [0.25, -0.5, 1.0]
    [event] = events(meter)
    assert_billed(event, 18, 0, model=EMBEDDING_MODEL)  # no id in an embeddings response
    if model_prices(EMBEDDING_MODEL) is None:  # the catalog cannot price it: recorded as such
        assert event.metadata["unpriced"] is True


# -- errors and retries ----------------------------------------------------------------


def test_a_500_retried_by_the_sdk_bills_once(api, meter, events):
    fake, server = api(first=[error_reply(500, "boom", "server_error", **{"retry-after-ms": "1"})])
    client = wrap(client_of(server, max_retries=1), meter)
    client.chat.completions.create(model="gpt-4o", **ASK)
    assert len(server.requests) == 2
    [event] = events(meter)
    assert_billed(event, 25, 12, response_id=fake.served[0])


def test_a_400_raises_the_sdks_error_and_bills_nothing(api, meter, events, caplog):
    _, server = api(first=[error_reply(400, "bad model")] * 3)
    client = wrap(client_of(server), meter)
    with caplog.at_level(logging.WARNING, logger="agentmeter"):
        with pytest.raises(openai.BadRequestError, match="bad model"):
            client.chat.completions.create(model="gpt-4o", **ASK)
        with pytest.raises(openai.BadRequestError):
            client.chat.completions.create(model="gpt-4o", stream=True, **ASK)
        with pytest.raises(openai.BadRequestError):
            client.responses.create(model="gpt-4o", input="hi")
    assert events(meter) == []
    assert caplog.text == ""  # an error is neither a bill nor an abandoned stream


# -- the client ------------------------------------------------------------------------


@pytest.mark.parametrize("cls", [OpenAI, AsyncOpenAI, AzureOpenAI, AsyncAzureOpenAI])
def test_the_wrapped_client_is_a_metered_copy_and_the_original_is_unchanged(api, meter, cls):
    _, server = api()
    original = client_of(server, cls, max_retries=3, _strict_response_validation=True)
    original_create = original.chat.completions.create
    wrapped = wrap(original, meter)
    assert type(wrapped) is cls
    assert isinstance(wrapped, OpenAI if cls in (OpenAI, AzureOpenAI) else AsyncOpenAI)
    assert wrapped is not original
    assert original.chat.completions.create == original_create
    for resource in (original.chat.completions, original.responses, original.embeddings):
        assert "create" not in vars(resource)
    options = ("base_url", "max_retries", "api_key", "timeout", "_strict_response_validation")
    assert [getattr(wrapped, name) for name in options] == [
        getattr(original, name) for name in options
    ]
    # with_options() and copy() on the wrapped client are metered too; on the original, not.
    assert "create" in vars(wrapped.with_options(timeout=5).chat.completions)
    assert "create" in vars(wrapped.copy(max_retries=1).responses)
    assert "create" not in vars(original.with_options(timeout=5).chat.completions)


def test_only_the_wrapped_client_bills(api, meter, events):
    _, server = api()
    original = client_of(server)
    before = dict(vars(original))
    wrapped = wrap(original, meter)
    after = vars(original)
    assert after.keys() == before.keys()  # not even a lazy resource made on it
    assert all(after[name] is value for name, value in before.items())
    original.chat.completions.create(model="gpt-4o", **ASK)
    for _ in original.chat.completions.create(model="gpt-4o", stream=True, **ASK):
        pass
    original.embeddings.create(model=EMBEDDING_MODEL, input="a")
    assert "stream_options" not in server.requests[1][2]
    wrapped.with_options(timeout=5).chat.completions.create(model="gpt-4o", **ASK)
    [event] = events(meter)
    assert event.metadata["response_id"] == "chatcmpl_0004"


@pytest.mark.parametrize("cls", [AzureOpenAI, AsyncAzureOpenAI])
def test_azure_clients_bill_the_model_the_response_names(api, meter, events, cls):
    fake, server = api(prompt_tokens=10, completion_tokens=2)
    client = wrap(client_of(server, cls), meter)

    async def read_async():
        stream = await client.chat.completions.create(model="my-deployment", stream=True, **ASK)
        return [chunk async for chunk in stream]

    if cls is AzureOpenAI:
        chunks = list(client.chat.completions.create(model="my-deployment", stream=True, **ASK))
    else:
        chunks = run(read_async())
    assert all(chunk.choices for chunk in chunks)
    assert server.requests[0][1].startswith("/openai/deployments/my-deployment/chat/completions")
    [event] = events(meter)
    assert_billed(event, 10, 2, response_id=fake.served[0])


def test_with_raw_response_passes_through_unbilled_and_unchanged(api, meter, events):
    _, server = api()
    client = wrap(client_of(server), meter)
    raw = client.chat.completions.with_raw_response.create(model="gpt-4o", stream=True, **ASK)
    chunks = list(raw.parse())
    assert "stream_options" not in server.requests[0][2]  # no usage added behind its back
    assert len(chunks) == 4
    assert events(meter) == []


def test_wrap_names_what_it_supports():
    with pytest.raises(TypeError, match=r"object.*openai\.OpenAI, AsyncOpenAI, AzureOpenAI"):
        wrap(object())


# -- who pays --------------------------------------------------------------------------


def test_attribute_blocks_pick_the_payer_and_openais_own_params_reach_the_api(api, meter, events):
    _, server = api()
    client = wrap(client_of(server), meter, user_id="default-user", metadata={"app": "chat"})
    with attribute(user_id="alice", metadata={"session": "s1"}):
        client.chat.completions.create(
            model="gpt-4o", user="end-user-7", metadata={"ticket": "T-1"}, **ASK
        )
        for _ in client.chat.completions.create(model="gpt-4o", stream=True, **ASK):
            pass
        client.responses.create(model="gpt-4o", input="hi", user="end-user-8")
    client.embeddings.create(model=EMBEDDING_MODEL, input="a", user="end-user-9")
    first, second, third, fourth = events(meter)
    assert (first.user_id, first.metadata["session"], first.metadata["app"]) == (
        "alice",
        "s1",
        "chat",
    )
    assert "ticket" not in first.metadata  # OpenAI's metadata is OpenAI's
    assert (second.user_id, third.user_id) == ("alice", "alice")
    assert fourth.user_id == "default-user"
    assert "session" not in fourth.metadata
    sent = [request[2] for request in server.requests]
    assert (sent[0]["user"], sent[0]["metadata"]) == ("end-user-7", {"ticket": "T-1"})
    assert (sent[2]["user"], sent[3]["user"]) == ("end-user-8", "end-user-9")


def test_attribute_blocks_follow_each_async_task(api, meter, events):
    _, server = api()

    async def call(client, user_id):
        with attribute(user_id=user_id):
            await client.chat.completions.create(model="gpt-4o", **ASK)
            stream = await client.chat.completions.create(model="gpt-4o", stream=True, **ASK)
            async for _ in stream:
                await asyncio.sleep(0)  # let the other task run in between

    async def main():
        client = wrap(client_of(server, AsyncOpenAI), meter, user_id="default-user")
        await asyncio.gather(call(client, "alice"), call(client, "bob"))
        await client.responses.create(model="gpt-4o", input="hi")

    run(main())
    billed = events(meter)
    assert sorted(event.user_id for event in billed[:4]) == ["alice", "alice", "bob", "bob"]
    assert billed[4].user_id == "default-user"


def test_a_stream_is_billed_to_whoever_paid_when_its_request_was_made(api, meter, events):
    _, server = api()
    client = wrap(client_of(server), meter, user_id="default-user")
    with attribute(user_id="alice"):
        stream = client.chat.completions.create(model="gpt-4o", stream=True, **ASK)
        helper = client.responses.stream(model="gpt-4o", input="hi")  # no request yet
    with attribute(user_id="bob"):
        assert "".join(chunk.choices[0].delta.content or "" for chunk in stream) == TEXT
        with helper as started:  # the helper's request is made here
            started.until_done()
    assert [event.user_id for event in events(meter)] == ["alice", "bob"]
