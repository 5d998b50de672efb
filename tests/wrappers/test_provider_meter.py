"""The wrappers' shared core (issue 14): one event per call, named after the
response, paid by the right user; streams billed once, whatever their end."""

from __future__ import annotations

import asyncio
import gc
import logging
from decimal import Decimal

import pytest

import agentmeter.integrations.provider_meter as provider_meter
from agentmeter import attribute
from agentmeter.capture.usage import TokenUsage
from agentmeter.core.catalog import model_prices
from agentmeter.integrations.provider_meter import ModelCall, ProviderMeter


@pytest.fixture(autouse=True)
def _fresh_warnings(monkeypatch):
    monkeypatch.setattr(provider_meter, "_warned", set())


def observe_usage(chunk, call: ModelCall) -> None:
    if "usage" in chunk:
        call.usage = TokenUsage(*chunk["usage"])
        call.response_id = chunk["id"]


CHUNKS = [{"text": "a"}, {"text": "b"}, {"id": "r-1", "usage": (100, 20, 0, 0)}]


def test_a_call_is_billed_once_however_often_it_is_reported(meter, events):
    billing = ProviderMeter("openai", meter, user_id="alice", metadata={"team": "a"})
    call = ModelCall("gpt-4o", "gpt-4o-2024-08-06", TokenUsage(1000, 100), "chatcmpl-1")
    first, again = billing.bill(call), billing.bill(call)
    assert first == again
    [event] = events(meter)
    prices = model_prices("gpt-4o")
    assert event.total_cost == 1000 * prices.input + 100 * prices.output
    assert event.user_id == "alice"
    assert event.metadata == {
        "team": "a",
        "provider": "openai",
        "model": "gpt-4o-2024-08-06",
        "response_id": "chatcmpl-1",
    }


def test_the_block_beats_the_wrap_time_defaults(meter, events):
    billing = ProviderMeter("openai", meter, user_id="default-user", agent_id="bot")
    with attribute(user_id="alice", metadata={"session": "s1"}):
        billing.bill(ModelCall("gpt-4o", usage=TokenUsage(1, 1), response_id="r1"))
    billing.bill(ModelCall("gpt-4o", usage=TokenUsage(1, 1), response_id="r2"))
    first, second = events(meter)
    assert (first.user_id, first.agent_id, first.metadata["session"]) == ("alice", "bot", "s1")
    assert (second.user_id, second.agent_id) == ("default-user", "bot")


def test_billing_never_raises_into_the_call(meter, caplog):
    billing = ProviderMeter("openai", meter)
    bad = ModelCall("gpt-4o", usage=TokenUsage(-5, 1), response_id="r1")  # invalid counts
    with caplog.at_level(logging.ERROR, logger="agentmeter"):
        assert billing.bill(bad) is None
    assert "could not bill a openai call" in caplog.text


def test_a_call_without_usage_bills_nothing_and_warns_once(meter, events, caplog):
    billing = ProviderMeter("openai", meter)
    with caplog.at_level(logging.WARNING, logger="agentmeter"):
        assert billing.bill(ModelCall("gpt-4o")) is None
        assert billing.bill(ModelCall("gpt-4o")) is None
    assert caplog.text.count("reported no token usage") == 1
    assert events(meter) == []


def test_a_stream_passes_chunks_through_hides_what_it_must_and_bills_at_its_end(meter, events):
    billing = ProviderMeter("openai", meter)
    stream = billing.stream(
        iter(CHUNKS), ModelCall("gpt-4o"), observe_usage, hide=lambda c: "usage" in c
    )
    seen = list(stream)
    assert seen == CHUNKS[:2]
    stream.close()  # closing after the end bills nothing more
    [event] = events(meter)
    assert (event.tokens_in, event.tokens_out, event.metadata["response_id"]) == (100, 20, "r-1")


def test_a_stream_closed_before_its_usage_bills_nothing_and_warns_once(meter, events, caplog):
    billing = ProviderMeter("openai", meter)
    with caplog.at_level(logging.WARNING, logger="agentmeter"):
        for _ in range(2):
            stream = billing.stream(iter(CHUNKS), ModelCall("gpt-4o"), observe_usage)
            next(stream)
            stream.close()
    assert caplog.text.count("closed before its usage arrived") == 1
    assert events(meter) == []


def test_a_stream_dropped_after_its_usage_is_billed(meter, events):
    billing = ProviderMeter("openai", meter)
    stream = billing.stream(iter(CHUNKS), ModelCall("gpt-4o"), observe_usage)
    for _ in range(3):
        next(stream)  # the usage chunk was read, but the loop never saw the end
    del stream
    gc.collect()
    [event] = events(meter)
    assert event.tokens_in == 100


def test_the_streams_own_attributes_are_reached_through_the_wrapper(meter):
    class SdkStream:
        response = "the http response"

        def __init__(self) -> None:
            self.closed = False

        def __iter__(self):
            return iter(CHUNKS)

        def close(self) -> None:
            self.closed = True

    inner = SdkStream()
    with ProviderMeter("openai", meter).stream(inner, ModelCall("gpt-4o"), observe_usage) as stream:
        assert stream.response == "the http response"
    assert inner.closed


def test_an_async_stream_is_billed_once_at_its_end(meter, events):
    async def chunks():
        for chunk in CHUNKS:
            yield chunk

    async def main() -> list:
        stream = ProviderMeter("openai", meter).astream(
            chunks(), ModelCall("gpt-4o"), observe_usage
        )
        seen = [chunk async for chunk in stream]
        await stream.close()
        return seen

    assert asyncio.run(main()) == CHUNKS
    [event] = events(meter)
    assert (
        event.total_cost
        == Decimal(100) * model_prices("gpt-4o").input + 20 * model_prices("gpt-4o").output
    )


def test_wrap_refuses_what_it_does_not_support(meter):
    from agentmeter import wrap

    with pytest.raises(TypeError, match=r"does not support object .*openai\.OpenAI"):
        wrap(object(), meter)
    with pytest.raises(TypeError, match="AgentMeterClient"):
        ProviderMeter("openai", meter="not a client")  # type: ignore[arg-type]


def test_a_stream_is_billed_to_the_payer_of_the_block_it_was_opened_in(meter, events):
    billing = ProviderMeter("openai", meter, user_id="default-user")
    with attribute(user_id="alice"):
        stream = billing.stream(iter(CHUNKS), ModelCall("gpt-4o"), observe_usage)
    list(stream)  # read to its end outside the block
    [event] = events(meter)
    assert event.user_id == "alice"


def test_the_event_id_is_the_readable_response_id_or_a_uuid_of_an_odd_one(meter, events):
    billing = ProviderMeter("openai", meter)
    assert billing.bill(ModelCall("gpt-4o", usage=TokenUsage(1, 1), response_id="chatcmpl-9")) == (
        "openai:chatcmpl-9"
    )
    odd = billing.bill(ModelCall("gpt-4o", usage=TokenUsage(1, 1), response_id="id with spaces"))
    assert odd is not None
    assert len(odd) == 36
    assert {event.id for event in events(meter)} == {"openai:chatcmpl-9", odd}


def test_a_stream_whose_provider_raises_bills_nothing_and_warns_nothing(meter, events, caplog):
    def failing():
        yield {"text": "a"}
        raise ConnectionError("the provider went away")

    billing = ProviderMeter("openai", meter)
    stream = billing.stream(failing(), ModelCall("gpt-4o"), observe_usage)
    with caplog.at_level(logging.WARNING, logger="agentmeter"), pytest.raises(ConnectionError):
        list(stream)
    del stream
    gc.collect()
    assert caplog.text == ""
    assert events(meter) == []


def test_an_async_generator_is_closed_with_aclose(meter):
    closed = []

    async def chunks():
        try:
            for chunk in CHUNKS:
                yield chunk
        finally:
            closed.append(True)

    async def main() -> None:
        stream = ProviderMeter("openai", meter).astream(
            chunks(), ModelCall("gpt-4o"), observe_usage
        )
        await stream.__anext__()
        await stream.close()

    asyncio.run(main())
    assert closed == [True]
