"""What is billed once, or not at all: errors, cache hits, duplicated callbacks, faults."""

from __future__ import annotations

import asyncio
import logging

import pytest
from langchain_core.caches import InMemoryCache
from langchain_core.globals import get_llm_cache, set_llm_cache

from agentmeter import LangChainAgentMeterCallback

PRICES = ("0.000002", "0.000008")


def handler_for(client, **options):
    options.setdefault("input_token_price", PRICES[0])
    options.setdefault("output_token_price", PRICES[1])
    return LangChainAgentMeterCallback(client, **options)


# ------------------------------------------------------------------- errors


def test_a_failed_call_bills_nothing(client, lc):
    handler = handler_for(client)
    with pytest.raises(RuntimeError, match="failed"):
        lc.TokenChat(fail=True).invoke("in=5 out=5", config={"callbacks": [handler]})
    with pytest.raises(RuntimeError, match="mid-stream"):
        list(lc.TokenChat(fail_mid_stream=True).stream("in=5", config={"callbacks": [handler]}))
    assert lc.events(client) == []
    assert handler._runs.runs == {}


def test_bill_errors_bills_the_partial_usage_of_a_failed_stream(client, lc):
    handler = handler_for(client, bill_errors=True)
    spy = lc.Spy()
    model = lc.TokenChat(fail_mid_stream=True)
    with pytest.raises(RuntimeError, match="mid-stream"):
        list(model.stream("in=25 out=9", config={"callbacks": [handler, spy]}))
    [event] = lc.events(client)
    # The first chunk reported the prompt and 1 output token before the failure.
    assert (event.tokens_in, event.tokens_out) == (25, 1)
    assert event.metadata["status"] == "error"
    assert event.metadata["error"] == "RuntimeError"


def test_bill_errors_bills_nothing_without_partial_usage(client, lc):
    handler = handler_for(client, bill_errors=True)
    with pytest.raises(RuntimeError):
        lc.TokenChat(fail=True).invoke("in=5 out=5", config={"callbacks": [handler]})

    async def main():
        with pytest.raises(RuntimeError):
            await lc.TokenChat(fail=True).ainvoke("in=5 out=5", config={"callbacks": [handler]})

    asyncio.run(main())
    assert lc.events(client) == []
    assert handler._runs.runs == {}


def test_errors_in_a_batch_bill_only_the_calls_that_succeeded(client, lc):
    handler = handler_for(client)
    good, bad = lc.TokenChat(), lc.TokenChat(fail=True)
    good.batch(["in=1 out=1", "in=2 out=2"], config={"callbacks": [handler]})
    out = bad.batch(["in=3 out=3"], config={"callbacks": [handler]}, return_exceptions=True)
    assert isinstance(out[0], RuntimeError)
    assert sorted(e.tokens_in for e in lc.events(client)) == [1, 2]


# --------------------------------------------------------------- cache hits


@pytest.fixture
def llm_cache():
    previous = get_llm_cache()
    cache = InMemoryCache()
    set_llm_cache(cache)
    yield cache
    set_llm_cache(previous)


def test_a_cache_hit_bills_nothing(client, lc, llm_cache):
    handler = handler_for(client)
    spy = lc.Spy()
    model = lc.TokenChat()
    config = {"callbacks": [handler, spy]}
    first = model.invoke("in=60 out=6", config=config)
    second = model.invoke("in=60 out=6", config=config)
    assert first.content == second.content
    # The hit repeats the usage, with total_cost 0.
    hit = [r.generations[0][0].message.usage_metadata for r, _ in spy.ends.values()][1]
    assert hit["input_tokens"] == 60
    assert hit["total_cost"] == 0
    [event] = lc.events(client)
    assert (event.tokens_in, event.tokens_out) == (60, 6)


def test_bill_cache_hits_bills_them(client, lc, llm_cache):
    handler = handler_for(client, bill_cache_hits=True)
    model = lc.TokenChat()
    for _ in range(2):
        model.invoke("in=60 out=6", config={"callbacks": [handler]})
    assert [(e.tokens_in, e.tokens_out) for e in lc.events(client)] == [(60, 6), (60, 6)]


def test_an_async_cache_hit_bills_nothing(client, lc, llm_cache):
    handler = handler_for(client)
    model = lc.TokenChat()

    async def main():
        for _ in range(3):
            await model.ainvoke("in=61 out=6", config={"callbacks": [handler]})

    asyncio.run(main())
    assert len(lc.events(client)) == 1


# ------------------------------------------------------------- once only


def test_a_duplicated_on_llm_end_bills_once(client, lc):
    handler = handler_for(client)
    spy = lc.Spy()
    lc.TokenChat().invoke("in=12 out=3", config={"callbacks": [handler, spy]})
    [(response, kwargs)] = spy.ends.values()
    handler.on_llm_end(response, **kwargs)  # LangChain (or a retry) calls it again
    handler.on_llm_end(response, **kwargs)
    lc.settle(client)
    [event] = lc.events(client)
    assert (event.tokens_in, event.tokens_out) == (12, 3)
    assert client.get_meter_stats(timeframe="all").total_tokens_in == 12


def test_two_handlers_on_one_run_bill_it_once(client, lc):
    one, two = handler_for(client), handler_for(client)
    lc.TokenChat().invoke("in=12 out=3", config={"callbacks": [one, two]})
    assert len(lc.events(client)) == 1


def test_a_duplicate_delivered_by_a_new_client_is_stored_once(client, live_server, project, lc):
    """The once-only guarantee is the server's: the id, not the handler's memory."""
    spy = lc.Spy()
    lc.TokenChat().invoke("in=12 out=3", config={"callbacks": [handler_for(client), spy]})
    [(response, kwargs)] = spy.ends.values()
    with live_server.client(project.key, project_id=project.id) as other:
        handler_for(other).on_llm_end(response, **kwargs)
        assert other.flush(timeout=30)
    assert len(lc.events(client)) == 1


# ------------------------------------------------------------------ faults


def test_a_broken_tracker_never_breaks_the_chain(client, lc, monkeypatch, caplog):
    handler = handler_for(client)

    def broken(*args, **kwargs):
        raise RuntimeError("tracker is broken")

    monkeypatch.setattr(client.tracker, "track_token_based_pay", broken)
    with caplog.at_level(logging.ERROR, logger="agentmeter"):
        answer = lc.TokenChat().invoke("hi", config={"callbacks": [handler]})
        chunks = list(lc.TokenChat().stream("hi", config={"callbacks": [handler]}))

        async def main():
            return await lc.TokenChat().ainvoke("hi", config={"callbacks": [handler]})

        assert asyncio.run(main()).content == "one two three"
    assert answer.content == "one two three"
    assert len(chunks) >= 3
    assert any("failed to bill" in r.getMessage() for r in caplog.records)
    assert handler._runs.runs == {}


def test_faults_at_start_and_with_odd_inputs_never_break_the_chain(client, lc, caplog):
    handler = handler_for(client)

    class Unprintable:
        def __str__(self):
            raise ValueError("no text")

    with caplog.at_level(logging.ERROR, logger="agentmeter"):
        # A user id that is not a string, that cannot be made one, and metadata
        # LangChain passes through untouched.
        lc.TokenChat().invoke("hi", config={"callbacks": [handler], "metadata": {"user_id": 42}})
        lc.TokenChat().invoke(
            "hi", config={"callbacks": [handler], "metadata": {"user_id": Unprintable()}}
        )
        # Callbacks called out of order, or with nothing LangChain would send.
        import uuid

        from langchain_core.outputs import LLMResult

        handler.on_llm_end(LLMResult(generations=[]), run_id=uuid.uuid4())
        handler.on_llm_end(LLMResult(generations=[[]]), run_id=uuid.uuid4())
        handler.on_llm_error(RuntimeError("x"), run_id=uuid.uuid4())
        handler.on_llm_new_token("x", run_id=uuid.uuid4())
    users = sorted(e.user_id for e in lc.events(client))
    assert "42" in users
    assert len(users) == 2  # the unprintable user fell back to the default user


def test_the_handler_refuses_what_is_not_a_client_at_once():
    with pytest.raises(TypeError):
        LangChainAgentMeterCallback("not a client")


def test_a_stream_stopped_early_is_an_error_to_langchain(client, lc):
    """Breaking out of stream() closes it: LangChain reports on_llm_error with
    what was read; billed only with bill_errors=True, if that carried usage."""
    model = lc.TokenChat(split_stream_usage=True, answer="a b c d")
    plain, billing = handler_for(client), handler_for(client, bill_errors=True)
    for handler in (plain, billing):
        stream = model.stream("in=30 out=9", config={"callbacks": [handler]})
        for _chunk in stream:
            break
        stream.close()
    [event] = lc.events(client)
    assert (event.tokens_in, event.tokens_out) == (30, 1)  # what the first chunk reported
    assert event.metadata["error"] == "GeneratorExit"
    assert plain._runs.runs == {}
    assert billing._runs.runs == {}
