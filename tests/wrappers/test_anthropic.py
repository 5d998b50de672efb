"""``agentmeter.wrap()`` on the real ``anthropic`` SDK, pointed at a fake Messages API.

Every call is billed once, by token class (Anthropic's ``input_tokens``
leaves out cache reads and writes: the event's ``tokens_in`` adds the reads
back, the writes are billed on top), at the catalog's prices for the model
the response names; streams when they end, early ends for what arrived.
"""

from __future__ import annotations

import asyncio
import logging
from decimal import Decimal

import anthropic
import pytest
from anthropic import Anthropic, AsyncAnthropic
from anthropic.lib.streaming import AsyncMessageStream, MessageStream
from anthropic.resources.messages import AsyncMessages, Messages
from anthropic.types import Message
from pydantic import BaseModel

import agentmeter.integrations.provider_meter as provider_meter
from agentmeter import attribute, wrap
from agentmeter.core.catalog import model_prices

from .fake_anthropic import MODEL, AnthropicFake, error_reply

TEXT = "Hello, world"
ASK = {"max_tokens": 64, "messages": [{"role": "user", "content": "Say hello"}]}
STREAM_TYPES = [
    "message_start",
    "content_block_start",
    "content_block_delta",
    "content_block_delta",
    "content_block_delta",
    "content_block_stop",
    "message_delta",
    "message_stop",
]


@pytest.fixture(autouse=True)
def _fresh_warnings(monkeypatch):
    monkeypatch.setattr(provider_meter, "_warned", set())


@pytest.fixture
def api(fake_server):
    """``api(**counts)``: a fake Messages API, and the server it runs on."""

    def start(**options):
        fake = AnthropicFake(**options)
        return fake, fake_server(fake)

    return start


def client_of(server, cls=Anthropic, max_retries=0, **options):
    return cls(api_key="test", base_url=server.url, max_retries=max_retries, **options)


def cost(model, tokens_in, tokens_out, cached=0, written=0) -> Decimal:
    p = model_prices(model)
    return (
        (tokens_in - cached) * p.input
        + cached * p.cached_input
        + written * (p.cache_write or p.input)
        + tokens_out * p.output
    )


def assert_billed(event, tokens_in, tokens_out, cached=0, written=0, model=MODEL, response_id=None):
    """One event: its tokens by class, its exact cost, what it names."""
    classes = (event.tokens_in, event.tokens_out, event.cached_tokens_in, event.cache_write_tokens)
    assert classes == (tokens_in, tokens_out, cached, written)
    assert event.total_cost == cost(model, tokens_in, tokens_out, cached, written)
    assert event.metadata["provider"] == "anthropic"
    assert event.metadata["model"] == model
    if response_id is not None:
        assert event.metadata["response_id"] == response_id


# -- one call, one event ------------------------------------------------------


def test_create_bills_the_message_with_its_cache_reads_and_writes(api, meter, events):
    fake, server = api(input_tokens=10, cache_read_input_tokens=90, cache_creation_input_tokens=20)
    client = wrap(client_of(server), meter)
    message = client.messages.create(model="claude-3-5-sonnet-latest", **ASK)
    assert isinstance(message, Message)
    assert message.content[0].text == TEXT
    [event] = events(meter)
    # The response's dated model is billed, not the alias asked for.
    assert_billed(event, 100, 12, cached=90, written=20, response_id=fake.served[0])


def test_async_create_bills_the_message(api, meter, events):
    fake, server = api(input_tokens=300, output_tokens=40, model=None)

    async def main():
        client = wrap(client_of(server, AsyncAnthropic), meter)
        return await client.messages.create(model="claude-3-5-haiku-20241022", **ASK)

    message = asyncio.run(main())
    assert message.usage.input_tokens == 300
    [event] = events(meter)
    assert_billed(event, 300, 40, model="claude-3-5-haiku-20241022", response_id=fake.served[0])


def test_parse_bills_the_parsed_message(api, meter, events):
    class Answer(BaseModel):
        answer: int

    fake, server = api(text=('{"answer": 4}',), input_tokens=50, output_tokens=7)
    client = wrap(client_of(server), meter)
    parsed = client.messages.parse(model=MODEL, output_format=Answer, **ASK)
    assert parsed.parsed_output == Answer(answer=4)
    [event] = events(meter)
    assert_billed(event, 50, 7, response_id=fake.served[0])


# -- streams --------------------------------------------------------------------


def test_a_raw_stream_passes_every_event_and_bills_at_its_end(api, meter, events):
    fake, server = api(
        input_tokens=8, cache_read_input_tokens=1000, cache_creation_input_tokens=200
    )
    client = wrap(client_of(server), meter)
    stream = client.messages.create(model="claude-3-5-sonnet-latest", stream=True, **ASK)
    seen = []
    for event in stream:
        seen.append(event)
        if event.type == "message_stop":
            assert events(meter) == []  # the stream has not ended yet
    assert [event.type for event in seen] == STREAM_TYPES
    assert "".join(e.delta.text for e in seen if e.type == "content_block_delta") == TEXT
    stream.close()  # after its end: nothing more is billed
    [event] = events(meter)  # for the model message_start names
    assert_billed(event, 1008, 12, cached=1000, written=200, response_id=fake.served[0])


def test_an_async_raw_stream_bills_at_its_end(api, meter, events):
    fake, server = api(input_tokens=5, cache_read_input_tokens=60, output_tokens=30)

    async def main():
        client = wrap(client_of(server, AsyncAnthropic), meter)
        stream = await client.messages.create(model=MODEL, stream=True, **ASK)
        async with stream:
            return [event.type async for event in stream]

    assert asyncio.run(main()) == STREAM_TYPES
    [event] = events(meter)
    assert_billed(event, 65, 30, cached=60, response_id=fake.served[0])


@pytest.mark.parametrize(
    ("delta_counts", "delta_input_tokens", "billed_input"),
    [
        ("output", None, 25 + 40),  # older API versions: message_start's input stands
        ("all", 70, 70 + 40),  # running totals (server tools add input): the last wins
    ],
)
def test_message_delta_counts_are_running_totals(
    api, meter, events, delta_counts, delta_input_tokens, billed_input
):
    _, server = api(
        cache_read_input_tokens=40,
        delta_counts=delta_counts,
        delta_input_tokens=delta_input_tokens,
    )
    client = wrap(client_of(server), meter)
    for _ in client.messages.create(model=MODEL, stream=True, **ASK):
        pass
    [event] = events(meter)
    assert_billed(event, billed_input, 12, cached=40)


def test_messages_stream_hands_over_the_sdks_stream_and_bills_when_the_block_exits(
    api, meter, events
):
    fake, server = api(input_tokens=12, cache_read_input_tokens=500, cache_creation_input_tokens=64)
    client = wrap(client_of(server), meter)
    with client.messages.stream(model=MODEL, **ASK) as stream:
        assert isinstance(stream, MessageStream)
        assert "".join(stream.text_stream) == TEXT
        final = stream.get_final_message()
        assert events(meter) == []  # billed when the block exits, not before
    assert final.usage.output_tokens == 12
    [event] = events(meter)
    assert_billed(event, 512, 12, cached=500, written=64, response_id=fake.served[0])


def test_async_messages_stream_bills_when_the_block_exits(api, meter, events):
    fake, server = api(input_tokens=9, cache_creation_input_tokens=1000, output_tokens=3)

    async def main():
        client = wrap(client_of(server, AsyncAnthropic), meter)
        async with client.messages.stream(model=MODEL, **ASK) as stream:
            assert isinstance(stream, AsyncMessageStream)
            text = "".join([piece async for piece in stream.text_stream])
            final = await stream.get_final_message()
        return text, final

    text, final = asyncio.run(main())
    assert (text, final.id) == (TEXT, fake.served[0])
    [event] = events(meter)
    assert_billed(event, 9, 3, written=1000, response_id=fake.served[0])


# -- streams that end early -------------------------------------------------------


def test_a_raw_stream_closed_halfway_bills_the_tokens_reported_so_far(api, meter, events):
    """After message_start, before message_delta: the whole input, and the
    output message_start counted (Anthropic charges for both)."""
    _, server = api(input_tokens=30, cache_read_input_tokens=70, start_output_tokens=1)
    client = wrap(client_of(server), meter)
    stream = client.messages.create(model=MODEL, stream=True, **ASK)
    for event in stream:
        if event.type == "content_block_delta":
            break
    stream.close()
    [event] = events(meter)
    assert_billed(event, 100, 1, cached=70)


def fail_on_the_first_text(stream):
    for _ in stream.text_stream:
        raise RuntimeError("user code failed")


def test_an_exception_in_a_messages_stream_block_bills_what_arrived(api, meter, events):
    _, server = api(input_tokens=40, cache_creation_input_tokens=10, start_output_tokens=2)
    client = wrap(client_of(server), meter)
    with (
        pytest.raises(RuntimeError, match="user code failed"),
        client.messages.stream(model=MODEL, **ASK) as stream,
    ):
        fail_on_the_first_text(stream)
    [event] = events(meter)
    assert_billed(event, 40, 2, written=10)


def test_an_async_exception_in_a_messages_stream_block_bills_what_arrived(api, meter, events):
    _, server = api(input_tokens=40, start_output_tokens=2)

    async def main():
        client = wrap(client_of(server, AsyncAnthropic), meter)
        async with client.messages.stream(model=MODEL, **ASK) as stream:
            async for _ in stream.text_stream:
                raise RuntimeError("user code failed")

    with pytest.raises(RuntimeError, match="user code failed"):
        asyncio.run(main())
    [event] = events(meter)
    assert_billed(event, 40, 2)


def test_a_stream_closed_before_message_start_bills_nothing_and_warns_once(
    api, meter, events, caplog
):
    _, server = api()
    client = wrap(client_of(server), meter)
    with caplog.at_level(logging.WARNING, logger="agentmeter"):
        for _ in range(2):
            with client.messages.stream(model=MODEL, **ASK):
                pass  # the block ends before message_start was read
        client.messages.create(model=MODEL, stream=True, **ASK).close()
    assert events(meter) == []
    assert caplog.text.count("closed before its usage arrived") == 1
    assert [record.levelname for record in caplog.records] == ["WARNING"]


# -- errors and retries -------------------------------------------------------------


def test_a_500_retried_by_the_sdk_bills_once(api, meter, events):
    fake, server = api(first=[error_reply(500, "api_error", "boom", **{"retry-after-ms": "1"})])
    client = wrap(client_of(server, max_retries=1), meter)
    client.messages.create(model=MODEL, **ASK)
    assert len(server.requests) == 2
    [event] = events(meter)
    assert_billed(event, 25, 12, response_id=fake.served[0])


def test_a_400_raises_the_sdks_error_and_bills_nothing(api, meter, events, caplog):
    _, server = api(first=[error_reply(400, "invalid_request_error", "bad")] * 2)
    client = wrap(client_of(server), meter)
    with pytest.raises(anthropic.BadRequestError, match="bad"):
        client.messages.create(model=MODEL, **ASK)
    with (
        caplog.at_level(logging.WARNING, logger="agentmeter"),
        pytest.raises(anthropic.BadRequestError),
        client.messages.stream(model=MODEL, **ASK),
    ):
        pytest.fail("the block must not run")
    assert events(meter) == []
    assert caplog.text == ""  # an error is not an abandoned stream


def test_a_message_without_usage_is_returned_and_not_billed(api, meter, events, caplog):
    _, server = api(usage=False)
    client = wrap(client_of(server), meter)
    with caplog.at_level(logging.WARNING, logger="agentmeter"):
        message = client.messages.create(model=MODEL, **ASK)
    assert message.content[0].text == TEXT
    assert events(meter) == []
    assert "reported no token usage" in caplog.text


# -- the client ------------------------------------------------------------------------


@pytest.mark.parametrize("cls", [Anthropic, AsyncAnthropic])
def test_the_wrapped_client_is_a_metered_copy_and_the_original_is_unchanged(api, meter, cls):
    _, server = api()
    original = client_of(server, cls, max_retries=3, _strict_response_validation=True)
    original_create = original.messages.create
    wrapped = wrap(original, meter)
    assert type(wrapped) is cls
    assert wrapped is not original
    assert isinstance(wrapped.messages, Messages if cls is Anthropic else AsyncMessages)
    assert original.messages.create == original_create
    assert "create" not in vars(original.messages)
    options = ("base_url", "max_retries", "api_key", "timeout", "_strict_response_validation")
    assert [getattr(wrapped, name) for name in options] == [
        getattr(original, name) for name in options
    ]
    # with_options() on the wrapped client is metered too; on the original, not.
    assert "create" in vars(wrapped.with_options(timeout=5).messages)
    assert "create" not in vars(original.with_options(timeout=5).messages)


def test_only_the_wrapped_client_bills(api, meter, events):
    _, server = api()
    original = client_of(server)
    wrapped = wrap(original, meter)
    original.messages.create(model=MODEL, **ASK)
    wrapped.with_options(timeout=5).messages.create(model=MODEL, **ASK)
    [event] = events(meter)
    assert event.metadata["response_id"] == "msg_0002"


def test_with_raw_response_passes_through_unbilled(api, meter, events):
    _, server = api()
    client = wrap(client_of(server), meter)
    raw = client.messages.with_raw_response.create(model=MODEL, **ASK)
    assert raw.parse().content[0].text == TEXT
    assert events(meter) == []


# -- who pays -----------------------------------------------------------------------------


def test_attribute_blocks_pick_the_payer_and_anthropics_metadata_reaches_the_api(
    api, meter, events
):
    _, server = api()
    client = wrap(client_of(server), meter, user_id="default-user", metadata={"app": "chat"})
    with attribute(user_id="alice", metadata={"session": "s1"}):
        client.messages.create(model=MODEL, metadata={"user_id": "end-user-7"}, **ASK)
        with client.messages.stream(model=MODEL, **ASK) as stream:
            stream.until_done()
    client.messages.create(model=MODEL, **ASK)
    first, second, third = events(meter)
    assert (first.user_id, first.metadata["session"], first.metadata["app"]) == (
        "alice",
        "s1",
        "chat",
    )
    assert second.user_id == "alice"
    assert third.user_id == "default-user"
    assert "session" not in third.metadata
    assert server.requests[0][2]["metadata"] == {"user_id": "end-user-7"}


def test_attribute_blocks_follow_each_async_task(api, meter, events):
    _, server = api()

    async def call(client, user_id):
        with attribute(user_id=user_id):
            await client.messages.create(model=MODEL, **ASK)
            stream = await client.messages.create(model=MODEL, stream=True, **ASK)
            async for _ in stream:
                await asyncio.sleep(0)  # let the other task run in between

    async def main():
        client = wrap(client_of(server, AsyncAnthropic), meter, user_id="default-user")
        await asyncio.gather(call(client, "alice"), call(client, "bob"))
        await client.messages.create(model=MODEL, **ASK)

    asyncio.run(main())
    billed = events(meter)
    payers = sorted(event.user_id for event in billed[:4])
    assert payers == ["alice", "alice", "bob", "bob"]
    assert billed[4].user_id == "default-user"
