"""``agentmeter.wrap()`` on the real ``boto3`` SDK, pointed at a fake Bedrock Runtime.

Every Converse call is billed once, by token class (Bedrock's ``inputTokens``
leaves out cache reads and writes: the event's ``tokens_in`` adds the reads
back, the writes are billed on top), at the catalog's prices for the model
id asked for; streams from their final ``metadata`` event.
"""

from __future__ import annotations

import logging
from decimal import Decimal

import boto3
import pytest
from botocore.config import Config
from botocore.eventstream import EventStream, EventStreamBuffer
from botocore.exceptions import ClientError

import agentmeter.integrations.provider_meter as provider_meter
from agentmeter import attribute, wrap
from agentmeter.core.catalog import model_prices

from .conftest import Reply
from .fake_bedrock import MODEL_ID, BedrockFake, error_reply, event_frame

TEXT = "Hello, world"
ASK = {"modelId": MODEL_ID, "messages": [{"role": "user", "content": [{"text": "Say hello"}]}]}
STREAM_KEYS = [
    "messageStart",
    "contentBlockDelta",
    "contentBlockDelta",
    "contentBlockDelta",
    "contentBlockStop",
    "messageStop",
    "metadata",
]


@pytest.fixture(autouse=True)
def _fresh_warnings(monkeypatch):
    monkeypatch.setattr(provider_meter, "_warned", set())


@pytest.fixture
def api(fake_server):
    """``api(**counts)``: a fake Bedrock Runtime, and the server it runs on."""

    def start(**options):
        fake = BedrockFake(**options)
        return fake, fake_server(fake)

    return start


def client_of(server, max_attempts=1):
    return boto3.client(
        "bedrock-runtime",
        region_name="us-east-1",
        endpoint_url=server.url,
        aws_access_key_id="x",
        aws_secret_access_key="x",
        config=Config(retries={"max_attempts": max_attempts, "mode": "standard"}),
    )


def cost(model, tokens_in, tokens_out, cached=0, written=0) -> Decimal:
    p = model_prices(model)
    return (
        (tokens_in - cached) * p.input
        + cached * p.cached_input
        + written * (p.cache_write or p.input)
        + tokens_out * p.output
    )


def assert_billed(event, tokens_in, tokens_out, cached=0, written=0, response_id=None):
    """One event: its tokens by class, its exact cost, what it names."""
    classes = (event.tokens_in, event.tokens_out, event.cached_tokens_in, event.cache_write_tokens)
    assert classes == (tokens_in, tokens_out, cached, written)
    assert event.total_cost == cost(MODEL_ID, tokens_in, tokens_out, cached, written)
    assert event.metadata["provider"] == "bedrock"
    assert event.metadata["model"] == MODEL_ID
    if response_id is not None:
        assert event.metadata["response_id"] == response_id


def test_the_fakes_frames_are_what_botocore_decodes():
    buffer = EventStreamBuffer()
    buffer.add_data(event_frame("metadata", {"usage": {"inputTokens": 3}}))
    [message] = list(buffer)
    assert message.headers == {
        ":event-type": "metadata",
        ":content-type": "application/json",
        ":message-type": "event",
    }
    assert message.payload == b'{"usage": {"inputTokens": 3}}'


# -- one call, one event ------------------------------------------------------------


def test_converse_bills_the_usage_with_its_cache_reads_and_writes(api, meter, events):
    fake, server = api(input_tokens=10, output_tokens=40, cache_read=900, cache_write=300)
    client = wrap(client_of(server), meter)
    response = client.converse(**ASK)
    assert response["output"]["message"]["content"] == [{"text": TEXT}]
    assert response["usage"]["cacheReadInputTokens"] == 900
    [event] = events(meter)
    assert_billed(event, 910, 40, cached=900, written=300, response_id=fake.served[0])
    p = model_prices(MODEL_ID)
    assert (
        event.total_cost
        == 10 * p.input + 900 * p.cached_input + 300 * p.cache_write + 40 * p.output
    )


@pytest.mark.parametrize(
    "model_id",
    [
        f"arn:aws:bedrock:us-east-1::foundation-model/{MODEL_ID}",
        f"arn:aws:bedrock:us-east-1:123456789012:inference-profile/{MODEL_ID}",
    ],
)
def test_a_model_arn_is_billed_as_its_model(api, meter, events, model_id):
    fake, server = api(input_tokens=100, output_tokens=10)
    client = wrap(client_of(server), meter)
    client.converse(**{**ASK, "modelId": model_id})
    assert fake.models == [model_id]  # what the API was asked for is untouched
    [event] = events(meter)
    assert_billed(event, 100, 10)


# -- streams --------------------------------------------------------------------------


def test_converse_stream_passes_every_event_and_bills_at_its_end(api, meter, events):
    fake, server = api(input_tokens=8, output_tokens=30, cache_read=1000, cache_write=200)
    client = wrap(client_of(server), meter)
    response = client.converse_stream(**ASK)
    assert response["ResponseMetadata"]["RequestId"] == fake.served[0]
    seen = []
    for event in response["stream"]:
        seen.append(event)
        if "metadata" in event:
            assert events(meter) == []  # the stream has not ended yet
    assert [next(iter(event)) for event in seen] == STREAM_KEYS
    text = "".join(
        e["contentBlockDelta"]["delta"]["text"] for e in seen if "contentBlockDelta" in e
    )
    assert text == TEXT
    response["stream"].close()  # after its end: nothing more is billed
    [event] = events(meter)
    assert_billed(event, 1008, 30, cached=1000, written=200, response_id=fake.served[0])


def test_the_stream_reaches_the_sdks_event_stream(api, meter):
    _, server = api()
    stream = wrap(client_of(server), meter).converse_stream(**ASK)["stream"]
    # The EventStream's own methods, through the wrapper.
    assert stream.get_initial_response.__self__.__class__ is EventStream
    stream.close()


def test_a_stream_closed_before_its_metadata_bills_nothing_and_warns_once(
    api, meter, events, caplog
):
    _, server = api()
    client = wrap(client_of(server), meter)
    with caplog.at_level(logging.WARNING, logger="agentmeter"):
        for _ in range(2):
            stream = client.converse_stream(**ASK)["stream"]
            for event in stream:
                if "contentBlockDelta" in event:
                    break
            stream.close()
    assert events(meter) == []
    assert caplog.text.count("closed before its usage arrived") == 1
    stream = client.converse_stream(**ASK)["stream"]
    for event in stream:
        if "metadata" in event:
            break
    stream.close()  # closed after the metadata event: billed
    [event] = events(meter)
    assert_billed(event, 25, 12)


# -- errors and retries ---------------------------------------------------------------


def test_a_500_retried_by_botocore_bills_once(api, meter, events):
    fake, server = api(input_tokens=60, cache_read=40)
    client = wrap(client_of(server, max_attempts=2), meter)
    fake.first.append(error_reply(500, "InternalServerException", "boom"))
    response = client.converse(**ASK)
    assert (response["ResponseMetadata"]["RetryAttempts"], len(server.requests)) == (1, 2)
    fake.first.append(error_reply(500, "InternalServerException", "boom"))
    streamed = client.converse_stream(**ASK)
    assert (streamed["ResponseMetadata"]["RetryAttempts"], len(server.requests)) == (1, 4)
    assert [next(iter(event)) for event in streamed["stream"]] == STREAM_KEYS
    first, second = events(meter)
    assert_billed(first, 100, 12, cached=40, response_id=fake.served[0])
    assert_billed(second, 100, 12, cached=40, response_id=fake.served[1])


def test_a_400_raises_the_sdks_error_and_bills_nothing(api, meter, events, caplog):
    _, server = api(first=[error_reply(400, "ValidationException", "bad model")] * 2)
    client = wrap(client_of(server), meter)
    with caplog.at_level(logging.WARNING, logger="agentmeter"):
        with pytest.raises(client.exceptions.ValidationException, match="bad model"):
            client.converse(**ASK)
        with pytest.raises(ClientError, match="ValidationException"):
            client.converse_stream(**ASK)
    assert events(meter) == []
    assert caplog.text == ""


def test_a_response_without_usage_is_returned_and_not_billed(api, meter, events, caplog):
    answer = {"output": {"message": {"role": "assistant", "content": []}}, "stopReason": "end_turn"}
    _, server = api(first=[Reply(body=answer)])
    client = wrap(client_of(server), meter)
    with caplog.at_level(logging.WARNING, logger="agentmeter"):
        response = client.converse(**ASK)
    assert "usage" not in response
    assert events(meter) == []
    assert "reported no token usage" in caplog.text


# -- the client ------------------------------------------------------------------------


def test_the_wrapped_client_is_a_metered_copy_and_the_original_is_unchanged(api, meter, events):
    fake, server = api()
    original = client_of(server)
    wrapped = wrap(original, meter)
    assert type(wrapped) is type(original)
    assert wrapped is not original
    assert "converse" not in vars(original)
    assert "converse_stream" not in vars(original)
    assert wrapped.meta is original.meta  # everything else is shared
    assert wrapped.exceptions is original.exceptions
    assert wrapped.converse.__doc__ == original.converse.__doc__
    original.converse(**ASK)
    for _ in original.converse_stream(**ASK)["stream"]:
        pass
    wrapped.converse(**ASK)
    [event] = events(meter)
    assert event.metadata["response_id"] == fake.served[2]


def test_wrapping_a_wrapped_client_meters_it_once(api, meter, events):
    _, server = api()
    wrapped = wrap(wrap(client_of(server), meter, user_id="first"), meter, user_id="second")
    wrapped.converse(**ASK)
    [event] = events(meter)
    assert event.user_id == "second"


def test_other_clients_are_refused(meter):
    s3 = boto3.client(
        "s3", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    with pytest.raises(TypeError, match="bedrock-runtime"):
        wrap(s3, meter)


# -- who pays -----------------------------------------------------------------------------


def test_attribute_blocks_pick_the_payer(api, meter, events):
    _, server = api()
    client = wrap(client_of(server), meter, user_id="default-user", metadata={"app": "chat"})
    with attribute(user_id="alice", agent_id="helper", metadata={"session": "s1"}):
        client.converse(**ASK)
        for _ in client.converse_stream(**ASK)["stream"]:
            pass
    client.converse(**ASK)
    first, second, third = events(meter)
    assert (first.user_id, first.agent_id) == ("alice", "helper")
    assert (first.metadata["session"], first.metadata["app"]) == ("s1", "chat")
    assert second.user_id == "alice"
    assert third.user_id == "default-user"
    assert "session" not in third.metadata
