"""``agentmeter.wrap()`` on the real ``google-genai`` SDK, pointed at a fake Gemini API.

Every request the SDK sends is billed once, by token class (Gemini's
``prompt_token_count`` includes the cached content; thoughts are output on
top of the candidates), at the catalog's prices for the model the response
names; streams from the running totals their last chunk reported.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import types
from decimal import Decimal

import pytest
from google import genai
from google.genai import errors
from google.genai.types import GenerateContentConfig, HttpOptions, HttpRetryOptions

import agentmeter.integrations.provider_meter as provider_meter
from agentmeter import attribute, wrap
from agentmeter.core.catalog import model_prices

from .fake_gemini import MODEL_VERSION, GeminiFake, error_reply

MODEL = "gemini-1.5-flash"
TEXT = "Hello, world"


@pytest.fixture(autouse=True)
def _fresh_warnings(monkeypatch):
    monkeypatch.setattr(provider_meter, "_warned", set())


@pytest.fixture
def api(fake_server):
    """``api(**options)``: a fake Gemini API, and the server it runs on."""

    def start(**options):
        fake = GeminiFake(**options)
        return fake, fake_server(fake)

    return start


def client_of(server, retries=None):
    options = HttpOptions(base_url=server.url, retry_options=retries)
    return genai.Client(api_key="test", http_options=options)


def cost(model, tokens_in, tokens_out, cached=0) -> Decimal:
    p = model_prices(model, prompt_tokens=tokens_in)
    cached_price = p.cached_input if p.cached_input is not None else p.input
    return (tokens_in - cached) * p.input + cached * cached_price + tokens_out * p.output


def assert_billed(event, tokens_in, tokens_out, cached=0, model=MODEL_VERSION, response_id=None):
    """One event: its tokens by class, its exact cost, what it names."""
    classes = (event.tokens_in, event.tokens_out, event.cached_tokens_in, event.cache_write_tokens)
    assert classes == (tokens_in, tokens_out, cached, 0)
    assert event.total_cost == cost(model, tokens_in, tokens_out, cached)
    assert event.metadata["provider"] == "gemini"
    assert event.metadata["model"] == model
    if response_id is not None:
        assert event.metadata["response_id"] == response_id


# -- one call, one event ------------------------------------------------------------


def test_generate_content_bills_cached_content_and_thoughts(api, meter, events):
    fake, server = api(
        prompt_tokens=1200, cached_tokens=1000, candidates_tokens=40, thoughts_tokens=25
    )
    client = wrap(client_of(server), meter)
    response = client.models.generate_content(model=MODEL, contents="Say hello")
    assert response.text == TEXT
    assert response.usage_metadata.thoughts_token_count == 25
    [event] = events(meter)
    # The dated model the response names is billed; thoughts are output.
    assert_billed(event, 1200, 65, cached=1000, response_id=fake.served[0])
    p = model_prices(MODEL)
    assert event.total_cost == 200 * p.input + 1000 * p.cached_input + 65 * p.output


def test_async_generate_content_bills_the_response(api, meter, events):
    fake, server = api(prompt_tokens=300, candidates_tokens=40, cached_tokens=100)

    async def main():
        client = wrap(client_of(server), meter)
        return await client.aio.models.generate_content(model=MODEL, contents="Say hello")

    assert asyncio.run(main()).text == TEXT
    [event] = events(meter)
    assert_billed(event, 300, 40, cached=100, response_id=fake.served[0])


def test_the_requested_model_and_a_fresh_id_when_the_response_names_neither(api, meter, events):
    _, server = api(model_version=None, response_ids=False, prompt_tokens=10, candidates_tokens=2)
    client = wrap(client_of(server), meter)
    for _ in range(2):
        client.models.generate_content(model="models/gemini-1.5-flash", contents="Say hello")
    first, second = events(meter)  # two calls, two events: no id to merge them
    assert first.id != second.id
    assert "response_id" not in first.metadata
    assert_billed(first, 10, 2, model="models/gemini-1.5-flash")


def test_a_prompt_above_128k_tokens_is_billed_at_the_higher_tier(api, meter, events):
    _, server = api(
        model_version="gemini-1.5-pro-002", prompt_tokens=200_000, candidates_tokens=1000
    )
    client = wrap(client_of(server), meter)
    client.models.generate_content(model="gemini-1.5-pro", contents="A long document")
    [event] = events(meter)
    higher = model_prices("gemini-1.5-pro", prompt_tokens=200_000)
    assert higher.input > model_prices("gemini-1.5-pro").input
    assert event.total_cost == 200_000 * higher.input + 1000 * higher.output
    assert_billed(event, 200_000, 1000, model="gemini-1.5-pro-002")


def test_a_raw_http_response_is_billed_from_its_body(api, meter, events):
    fake, server = api(prompt_tokens=50, cached_tokens=20, candidates_tokens=5)
    client = wrap(client_of(server), meter)
    config = GenerateContentConfig(should_return_http_response=True)
    response = client.models.generate_content(model=MODEL, contents="Hi", config=config)
    assert response.usage_metadata is None
    assert '"promptTokenCount": 50' in response.sdk_http_response.body
    [event] = events(meter)
    assert_billed(event, 50, 5, cached=20, response_id=fake.served[0])


def test_a_response_without_usage_is_returned_and_not_billed(api, meter, events, caplog):
    _, server = api(usage_on="none")
    client = wrap(client_of(server), meter)
    with caplog.at_level(logging.WARNING, logger="agentmeter"):
        response = client.models.generate_content(model=MODEL, contents="Hi")
    assert (response.text, response.usage_metadata) == (TEXT, None)
    assert events(meter) == []
    assert "reported no token usage" in caplog.text


# -- streams --------------------------------------------------------------------------


def test_a_stream_passes_every_chunk_and_bills_its_last_totals_at_its_end(api, meter, events):
    fake, server = api(
        prompt_tokens=500, cached_tokens=400, candidates_tokens=30, thoughts_tokens=6
    )
    client = wrap(client_of(server), meter)
    stream = client.models.generate_content_stream(model=MODEL, contents="Say hello")
    assert isinstance(stream, types.GeneratorType)  # the SDK's own generator
    seen = []
    for chunk in stream:
        seen.append(chunk)
        if len(seen) == 3:
            assert events(meter) == []  # the stream has not ended yet
    assert "".join(chunk.text for chunk in seen) == TEXT
    assert [chunk.usage_metadata.candidates_token_count for chunk in seen] == [10, 20, 30]
    [event] = events(meter)  # the running totals are not added up
    assert_billed(event, 500, 36, cached=400, response_id=fake.served[0])


def test_an_async_stream_keeps_its_shape_and_bills_at_its_end(api, meter, events):
    fake, server = api(prompt_tokens=70, candidates_tokens=12, thoughts_tokens=4)

    async def main():
        client = wrap(client_of(server), meter)
        stream = await client.aio.models.generate_content_stream(model=MODEL, contents="Hi")
        return [chunk.text async for chunk in stream]

    assert "".join(asyncio.run(main())) == TEXT
    [event] = events(meter)
    assert_billed(event, 70, 16, response_id=fake.served[0])


def test_a_stream_closed_halfway_bills_the_totals_its_last_chunk_reported(api, meter, events):
    _, server = api(prompt_tokens=90, cached_tokens=30, candidates_tokens=30)
    client = wrap(client_of(server), meter)
    stream = client.models.generate_content_stream(model=MODEL, contents="Say hello")
    assert next(stream).text == "Hello"
    stream.close()
    [event] = events(meter)
    assert_billed(event, 90, 10, cached=30)  # the first chunk's totals: 10 of 30 out


def test_an_async_stream_abandoned_halfway_bills_what_it_reported(api, meter, events):
    _, server = api(prompt_tokens=90, candidates_tokens=30)

    async def main():
        client = wrap(client_of(server), meter)
        stream = await client.aio.models.generate_content_stream(model=MODEL, contents="Hi")
        async for _ in stream:
            break
        await stream.aclose()

    asyncio.run(main())
    [event] = events(meter)
    assert_billed(event, 90, 10)


def test_a_stream_closed_before_any_usage_bills_nothing_and_warns_once(api, meter, events, caplog):
    _, server = api(usage_on="last")
    client = wrap(client_of(server), meter)
    with caplog.at_level(logging.WARNING, logger="agentmeter"):
        for _ in range(2):
            stream = client.models.generate_content_stream(model=MODEL, contents="Hi")
            next(stream)
            stream.close()
    assert events(meter) == []
    assert caplog.text.count("closed before its usage arrived") == 1
    for _ in client.models.generate_content_stream(model=MODEL, contents="Hi"):
        pass  # read to its end, the usage on its last chunk is billed
    [event] = events(meter)
    assert_billed(event, 20, 9)


# -- every request the SDK sends --------------------------------------------------------


def test_automatic_function_calling_bills_each_request(api, meter, events):
    calls = []

    def get_time() -> str:
        """The time now."""
        calls.append(1)
        return "noon"

    fake, server = api(function_call="get_time", prompt_tokens=40, candidates_tokens=6)
    client = wrap(client_of(server), meter)
    config = GenerateContentConfig(tools=[get_time])
    response = client.models.generate_content(model=MODEL, contents="What time?", config=config)
    assert (response.text, len(calls), len(server.requests)) == (TEXT, 1, 2)
    first, second = events(meter)
    assert_billed(first, 40, 6, response_id=fake.served[0])
    assert_billed(second, 40, 6, response_id=fake.served[1])


def test_a_chat_bills_each_message(api, meter, events):
    fake, server = api()
    client = wrap(client_of(server), meter)
    chat = client.chats.create(model=MODEL)
    chat.send_message("Hi")
    assert "".join(chunk.text for chunk in chat.send_message_stream("Again")) == TEXT
    assert [event.metadata["response_id"] for event in events(meter)] == fake.served[:2]


# -- errors and retries -------------------------------------------------------------------


def test_a_500_retried_by_the_sdk_bills_once(api, meter, events):
    fake, server = api(first=[error_reply(500, "boom")])
    retries = HttpRetryOptions(attempts=2, initial_delay=0, max_delay=0, jitter=0)
    client = wrap(client_of(server, retries), meter)
    client.models.generate_content(model=MODEL, contents="Hi")
    assert len(server.requests) == 2
    [event] = events(meter)
    assert_billed(event, 20, 9, response_id=fake.served[0])


def test_a_400_raises_the_sdks_error_and_bills_nothing(api, meter, events, caplog):
    _, server = api(first=[error_reply(400, "bad request")] * 3)
    client = wrap(client_of(server), meter)
    with caplog.at_level(logging.WARNING, logger="agentmeter"):
        with pytest.raises(errors.ClientError, match="bad request"):
            client.models.generate_content(model=MODEL, contents="Hi")

        async def main(stream):
            if stream:
                await client.aio.models.generate_content_stream(model=MODEL, contents="Hi")
            await client.aio.models.generate_content(model=MODEL, contents="Hi")

        for stream in (False, True):
            with pytest.raises(errors.ClientError, match="bad request"):
                asyncio.run(main(stream))
        gc.collect()
    assert len(server.requests) == 3
    assert events(meter) == []
    assert caplog.text == ""  # an error is neither a response without usage nor an abandoned stream


def test_a_sync_stream_that_fails_bills_nothing_and_does_not_warn(api, meter, events, caplog):
    _, server = api(first=[error_reply(400, "bad request")])
    client = wrap(client_of(server), meter)
    with caplog.at_level(logging.WARNING, logger="agentmeter"):
        with pytest.raises(errors.ClientError, match="bad request"):
            list(client.models.generate_content_stream(model=MODEL, contents="Hi"))
        gc.collect()
    assert events(meter) == []
    assert caplog.text == ""


# -- the client --------------------------------------------------------------------------


def test_the_wrapped_client_is_a_metered_copy_and_the_original_is_unchanged(api, meter, events):
    fake, server = api()
    original = client_of(server)
    models, aio_models = original.models, original.aio.models
    wrapped = wrap(original, meter)
    assert isinstance(wrapped, genai.Client)
    assert wrapped is not original
    assert (type(wrapped).__name__, type(wrapped).__module__) == ("Client", "google.genai.client")
    assert (original.models, original.aio.models) == (models, aio_models)
    assert "_generate_content" not in vars(models)
    assert "_generate_content" not in vars(aio_models)
    assert wrapped.models is not models
    assert wrapped.aio.models is not aio_models
    assert wrapped.aio is not original.aio
    original.models.generate_content(model=MODEL, contents="Hi")
    wrapped.models.generate_content(model=MODEL, contents="Hi")
    [event] = events(meter)
    assert event.metadata["response_id"] == fake.served[1]


def test_either_client_works_after_the_other_is_dropped(api, meter, events):
    """They share one connection pool; dropping one must not close it."""
    _, server = api()
    wrapped = wrap(client_of(server), meter)  # the original is dropped at once
    gc.collect()
    wrapped.models.generate_content(model=MODEL, contents="Hi")
    original = client_of(server)
    wrap(original, meter).models.generate_content(model=MODEL, contents="Hi")
    gc.collect()
    original.models.generate_content(model=MODEL, contents="Hi")
    assert len(events(meter)) == 2


def test_wrapping_a_wrapped_client_meters_it_once(api, meter, events):
    _, server = api()
    wrapped = wrap(wrap(client_of(server), meter, user_id="first"), meter, user_id="second")
    wrapped.models.generate_content(model=MODEL, contents="Hi")
    [event] = events(meter)
    assert event.user_id == "second"


# -- who pays -----------------------------------------------------------------------------


def test_attribute_blocks_pick_the_payer(api, meter, events):
    _, server = api()
    client = wrap(client_of(server), meter, user_id="default-user", metadata={"app": "chat"})
    with attribute(user_id="alice", metadata={"session": "s1"}):
        client.models.generate_content(model=MODEL, contents="Hi")
        for _ in client.models.generate_content_stream(model=MODEL, contents="Hi"):
            pass
    client.models.generate_content(model=MODEL, contents="Hi")
    first, second, third = events(meter)
    assert (first.user_id, first.metadata["session"]) == ("alice", "s1")
    assert first.metadata["app"] == "chat"
    assert second.user_id == "alice"
    assert (third.user_id, "session" in third.metadata) == ("default-user", False)


def test_attribute_blocks_follow_each_async_task(api, meter, events):
    _, server = api()

    async def call(client, user_id):
        with attribute(user_id=user_id):
            await client.aio.models.generate_content(model=MODEL, contents="Hi")
            async for _ in await client.aio.models.generate_content_stream(
                model=MODEL, contents="Hi"
            ):
                await asyncio.sleep(0)  # let the other task run in between

    async def main():
        client = wrap(client_of(server), meter, user_id="default-user")
        await asyncio.gather(call(client, "alice"), call(client, "bob"))
        await client.aio.models.generate_content(model=MODEL, contents="Hi")

    asyncio.run(main())
    billed = events(meter)
    assert sorted(event.user_id for event in billed[:4]) == ["alice", "alice", "bob", "bob"]
    assert billed[4].user_id == "default-user"
