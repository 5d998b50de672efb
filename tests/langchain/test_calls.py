"""One token event per successful model call, under every way LangChain calls a model.

Real langchain-core drives fake models (see conftest.py) against the real
reference server; every figure is checked against what the server stored.
"""

from __future__ import annotations

import asyncio
import logging
from decimal import Decimal

from langchain_core.language_models.fake import FakeListLLM, FakeStreamingListLLM
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage

from agentmeter import LangChainAgentMeterCallback

PRICES = ("0.000003", "0.000015")


def handler_for(client, **options):
    options.setdefault("input_token_price", PRICES[0])
    options.setdefault("output_token_price", PRICES[1])
    return LangChainAgentMeterCallback(client, user_id="default-user", **options)


def test_invoke_bills_one_event_with_the_runs_context(client, lc):
    handler = handler_for(client, metadata={"app": "support"})
    model = lc.TokenChat(response_model="fake-chat-2025")
    answer = model.invoke(
        "in=120 out=33",
        config={
            "callbacks": [handler],
            "metadata": {"user_id": "alice", "session": "s-1"},
            "tags": ["checkout"],
        },
    )
    assert answer.content == "one two three"

    [event] = lc.events(client)
    assert (event.tokens_in, event.tokens_out) == (120, 33)
    assert event.user_id == "alice"
    assert event.agent_id == "lc-agent"
    assert event.total_cost == lc.cost((120, 33), PRICES)
    assert (event.input_token_price, event.output_token_price) == tuple(map(Decimal, PRICES))
    metadata = event.metadata
    assert metadata["model"] == "fake-chat-2025"
    assert metadata["source"] == "langchain"
    assert metadata["session"] == "s-1"
    assert metadata["app"] == "support"
    assert metadata["tags"] == ["checkout"]
    assert metadata["parent_run_id"] is None
    assert "user_id" not in metadata
    assert not any(key.startswith(("ls_", "lc_")) for key in metadata)
    assert client.get_user_meter("alice").current_usage == event.total_cost


def test_run_id_is_recorded_and_gives_the_event_id(client, lc):
    spy = lc.Spy()
    handler = handler_for(client)
    lc.TokenChat().invoke("hi", config={"callbacks": [handler, spy]})
    [run_id] = spy.ends
    [event] = lc.events(client)
    assert event.metadata["run_id"] == str(run_id)
    from agentmeter.core.ids import derived_event_id

    assert event.id == derived_event_id("langchain-run", str(run_id))


def test_user_falls_back_to_the_handlers_then_the_clients(client, lc):
    lc.TokenChat().invoke("in=1 out=1", config={"callbacks": [handler_for(client)]})
    bare = LangChainAgentMeterCallback(client, input_token_price=1, output_token_price=1)
    lc.TokenChat().invoke("in=1 out=2", config={"callbacks": [bare]})
    users = {(e.tokens_in, e.tokens_out): e.user_id for e in lc.events(client)}
    assert users == {(1, 1): "default-user", (1, 2): "anonymous"}


def test_user_id_key_is_configurable(client, lc):
    handler = handler_for(client, user_id_key="customer")
    lc.TokenChat().invoke("hi", config={"callbacks": [handler], "metadata": {"customer": "c-9"}})
    [event] = lc.events(client)
    assert event.user_id == "c-9"
    assert "customer" not in event.metadata


def test_ainvoke_bills_like_invoke(client, lc):
    handler = handler_for(client)
    model = lc.TokenChat()

    async def main():
        return await model.ainvoke(
            "in=40 out=4", config={"callbacks": [handler], "metadata": {"user_id": "bob"}}
        )

    assert asyncio.run(main()).content == "one two three"
    [event] = lc.events(client)
    assert (event.user_id, event.tokens_in, event.tokens_out) == ("bob", 40, 4)
    assert event.total_cost == lc.cost((40, 4), PRICES)


def test_stream_bills_once_the_usage_summed_across_chunks(client, lc):
    """LangChain merges the chunks and sums their usage; the handler bills that, once."""
    spy = lc.Spy()
    handler = handler_for(client)
    model = lc.TokenChat(split_stream_usage=True, response_model="fake-stream-1")
    config = {"callbacks": [handler, spy], "metadata": {"user_id": "carol"}}
    chunks = list(model.stream("in=30 out=9", config=config))
    assert "".join(str(chunk.content) for chunk in chunks) == "one two three"

    # What LangChain hands on_llm_end: the chunks merged, usage_metadata summed.
    [(response, _)] = spy.ends.values()
    assert response.generations[0][0].message.usage_metadata == lc.usage_metadata(30, 9)

    [event] = lc.events(client)
    assert (event.user_id, event.tokens_in, event.tokens_out) == ("carol", 30, 9)
    assert event.metadata["model"] == "fake-stream-1"


def test_astream_and_streaming_invoke_bill_the_last_chunks_usage(client, lc):
    handler = handler_for(client)
    model = lc.TokenChat()

    async def main():
        return [c async for c in model.astream("in=7 out=3", config={"callbacks": [handler]})]

    assert len(asyncio.run(main())) >= 3
    # invoke() streams too when the model is set to: billed once, from on_llm_end.
    streaming = lc.TokenChat(streaming=True)
    streaming.invoke("in=8 out=2", config={"callbacks": [handler]})
    billed = sorted((e.tokens_in, e.tokens_out) for e in lc.events(client))
    assert billed == [(7, 3), (8, 2)]


def test_stream_without_usage_is_not_billed_and_warns_once(client, lc, caplog):
    """GenericFakeChatModel.stream() drops usage, as OpenAI does without stream_usage."""
    handler = handler_for(client)
    answers = [AIMessage("a b", usage_metadata=lc.usage_metadata(5, 2)) for _ in range(3)]
    model = GenericFakeChatModel(messages=iter(answers))
    with caplog.at_level(logging.WARNING, logger="agentmeter"):
        for _ in range(2):
            assert list(model.stream("hi", config={"callbacks": [handler]}))
        model.invoke("hi", config={"callbacks": [handler]})  # not streamed: has usage
    warnings = [r for r in caplog.records if "stream_usage=True" in r.getMessage()]
    assert len(warnings) == 1
    assert [(e.tokens_in, e.tokens_out) for e in lc.events(client)] == [(5, 2)]


def test_legacy_llm_output_shape(client, lc):
    handler = handler_for(client)
    model = lc.TokenChat(shape="llm_output", response_model="legacy-model-1")
    model.invoke("in=50 out=20", config={"callbacks": [handler]})
    [event] = lc.events(client)
    assert (event.tokens_in, event.tokens_out) == (50, 20)
    assert event.metadata["model"] == "legacy-model-1"


def test_plain_llm_without_usage_bills_nothing(client, lc, caplog):
    handler = handler_for(client)
    llm = FakeListLLM(responses=["fine"])
    streaming = FakeStreamingListLLM(responses=["fine"])
    with caplog.at_level(logging.WARNING, logger="agentmeter"):
        assert llm.invoke("hi", config={"callbacks": [handler]}) == "fine"
        assert list(streaming.stream("hi", config={"callbacks": [handler]})) == list("fine")
    assert lc.events(client) == []
    assert not [r for r in caplog.records if r.name == "agentmeter"]
    assert handler._runs.runs == {}


def test_plain_llm_with_llm_output_usage(client, lc):
    handler = handler_for(client)
    lc.TokenLLM().invoke(
        "in=9 out=4", config={"callbacks": [handler], "metadata": {"user_id": "d"}}
    )
    [event] = lc.events(client)
    assert (event.user_id, event.tokens_in, event.tokens_out) == ("d", 9, 4)
    assert event.metadata["model"] == "fake-llm"


def test_plain_llm_batch_bills_the_batch_total_once(client, lc):
    """BaseLLM.batch() makes one generate() call: LangChain puts the whole
    batch's usage on the first run (and empties it on the others)."""
    handler = handler_for(client)
    prompts = ["in=1 out=2", "in=10 out=20", "in=100 out=200"]
    configs = [{"callbacks": [handler], "metadata": {"user_id": f"u{i}"}} for i in range(3)]
    assert len(lc.TokenLLM().batch(prompts, config=configs)) == 3
    billed = lc.events(client)
    assert sum(e.tokens_in for e in billed) == 111
    assert sum(e.tokens_out for e in billed) == 222
    assert len(billed) == 1  # the first run carries it all


def test_n_greater_than_one_is_not_double_counted(client, lc):
    handler = handler_for(client)
    spy = lc.Spy()
    lc.TokenChat(n=3).invoke("in=11 out=6", config={"callbacks": [handler, spy]})
    [(response, _)] = spy.ends.values()
    assert len(response.generations[0]) == 3  # each repeats the full usage
    [event] = lc.events(client)
    assert (event.tokens_in, event.tokens_out) == (11, 6)


def test_chatopenai_shape_is_read_from_one_place(client, lc):
    """usage_metadata, llm_output["token_usage"], response_metadata["token_usage"]:
    the same numbers three times, billed once."""
    handler = handler_for(client)
    spy = lc.Spy()
    lc.TokenChat(shape="openai", response_model="gpt-x").invoke(
        "in=70 out=30", config={"callbacks": [handler, spy]}
    )
    [(response, _)] = spy.ends.values()
    message = response.generations[0][0].message
    assert message.usage_metadata["input_tokens"] == 70
    assert message.response_metadata["token_usage"]["prompt_tokens"] == 70
    assert response.llm_output["token_usage"]["prompt_tokens"] == 70
    [event] = lc.events(client)
    assert (event.tokens_in, event.tokens_out) == (70, 30)


def test_cached_input_tokens_are_not_added_again(client, lc):
    """input_tokens already includes input_token_details["cache_read"]."""
    handler = handler_for(client)
    usage = lc.usage_metadata(1000, 10, input_token_details={"cache_read": 800})
    model = GenericFakeChatModel(messages=iter([AIMessage("ok", usage_metadata=usage)]))
    model.invoke("hi", config={"callbacks": [handler]})
    [event] = lc.events(client)
    assert (event.tokens_in, event.tokens_out) == (1000, 10)


def test_abatch_and_batch_bill_each_call(client, lc):
    handler = handler_for(client)
    model = lc.TokenChat()
    prompts = [f"in={i} out={i + 1}" for i in range(1, 6)]
    config = {"callbacks": [handler]}
    model.batch(prompts[:2], config=config)

    async def main():
        return await model.abatch(prompts[2:], config=config)

    assert len(asyncio.run(main())) == 3
    billed = sorted((e.tokens_in, e.tokens_out) for e in lc.events(client))
    assert billed == [(i, i + 1) for i in range(1, 6)]
    assert handler._runs.runs == {}


def test_astream_events_bills_once(client, lc):
    handler = handler_for(client)
    model = lc.TokenChat(split_stream_usage=True)

    async def main():
        return [
            event
            async for event in model.astream_events(
                "in=30 out=9", version="v2", config={"callbacks": [handler]}
            )
        ]

    kinds = {event["event"] for event in asyncio.run(main())}
    assert "on_chat_model_stream" in kinds
    [event] = lc.events(client)
    assert (event.tokens_in, event.tokens_out) == (30, 9)
