"""meter_langchain() blocks, chains and tools, concurrency, and run-state eviction."""

from __future__ import annotations

import asyncio
import contextvars
import threading
import uuid
from collections import defaultdict
from decimal import Decimal
from types import SimpleNamespace

import pytest
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnableLambda
from langchain_core.tools import tool

import agentmeter.capture.charge as charge
import agentmeter.integrations.langchain as integration
from agentmeter import AgentMeterClient, LangChainAgentMeterCallback, attribute, meter_langchain

PRICES = ("0.000003", "0.000015")
FLAT = {"input_token_price": PRICES[0], "output_token_price": PRICES[1]}


def _users(lc, client):
    return sorted((e.user_id, e.tokens_in) for e in lc.events(client))


# -------------------------------------------------------- meter_langchain


def test_meter_langchain_bills_calls_made_inside_the_block_only(client, lc):
    model = lc.TokenChat()
    with meter_langchain(client, user_id="alice", **FLAT) as handler:
        assert isinstance(handler, LangChainAgentMeterCallback)
        model.invoke("in=1 out=1")
        list(model.stream("in=2 out=1"))
        model.batch(["in=3 out=1", "in=4 out=1"])
    model.invoke("in=99 out=1")  # outside: not billed
    assert _users(lc, client) == [("alice", 1), ("alice", 2), ("alice", 3), ("alice", 4)]


def test_run_metadata_beats_the_blocks_user(client, lc):
    with meter_langchain(client, user_id="alice", **FLAT):
        lc.TokenChat().invoke("in=1 out=1", config={"metadata": {"user_id": "carol"}})
    assert _users(lc, client) == [("carol", 1)]


def test_an_attribute_block_names_the_payer_of_langchain_calls(client, lc):
    """``agentmeter.attribute`` is shared by every capture surface (issue 14)."""
    model = lc.TokenChat()
    with meter_langchain(client, user_id="alice", **FLAT):
        with attribute(user_id="dave"):
            model.invoke("in=1 out=1")
            model.invoke("in=2 out=1", config={"metadata": {"user_id": "carol"}})
        model.invoke("in=3 out=1")
    assert _users(lc, client) == [("alice", 3), ("carol", 2), ("dave", 1)]


def test_meter_langchain_blocks_nest_and_the_innermost_wins(client, lc):
    model = lc.TokenChat()
    with meter_langchain(client, user_id="alice", **FLAT):
        model.invoke("in=1 out=1")
        with meter_langchain(client, user_id="bob", **FLAT):
            model.invoke("in=2 out=1")
        model.invoke("in=3 out=1")
    assert _users(lc, client) == [("alice", 1), ("alice", 3), ("bob", 2)]


def test_an_inner_block_inside_a_running_chain_wins(client, lc):
    """A step of a chain started in alice's block opens bob's block: the model
    call it makes is bob's (the outer handler is inherited by the run, too)."""
    model = lc.TokenChat()

    def step(text: str) -> str:
        with meter_langchain(client, user_id="bob", **FLAT):
            return str(model.invoke(text).content)

    with meter_langchain(client, user_id="alice", **FLAT):
        (RunnableLambda(step) | model).invoke("in=5 out=1")
    # The inner call is bob's; the second model call (prompt "one two three") is alice's.
    billed = {e.user_id: (e.tokens_in, e.tokens_out) for e in lc.events(client)}
    assert billed == {"bob": (5, 1), "alice": lc.DEFAULT_USAGE}


def test_async_tasks_inherit_the_block(client, lc):
    model = lc.TokenChat()

    async def call(text):
        return await model.ainvoke(text)

    async def main():
        with meter_langchain(client, user_id="alice", **FLAT):
            await asyncio.gather(*(call(f"in={i} out=1") for i in range(1, 4)))
            late = asyncio.create_task(call("in=4 out=1"))
            streamed = [c async for c in model.astream("in=5 out=1")]
            await model.abatch(["in=6 out=1", "in=7 out=1"])
        await late  # created inside the block: still alice's
        assert streamed
        await call("in=50 out=1")  # outside: not billed

    asyncio.run(main())
    assert _users(lc, client) == [("alice", i) for i in range(1, 8)]


def test_concurrent_tasks_in_different_blocks_keep_their_users(client, lc):
    model = lc.TokenChat(delay=0.001)

    async def user_session(user: str, base: int):
        with meter_langchain(client, user_id=user, **FLAT):
            for i in range(5):
                await model.ainvoke(f"in={base + i} out=1")
                await asyncio.sleep(0)

    async def main():
        await asyncio.gather(*(user_session(f"u{n}", n * 100) for n in range(6)))

    asyncio.run(main())
    billed = lc.events(client)
    assert len(billed) == 30
    assert all(e.user_id == f"u{e.tokens_in // 100}" for e in billed)


def test_threads_in_different_blocks_keep_their_users(client, lc):
    model = lc.TokenChat()
    errors = []

    def user_session(n: int):
        try:
            with meter_langchain(client, user_id=f"t{n}", **FLAT):
                for i in range(10):
                    model.invoke(f"in={n * 100 + i} out=1")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=user_session, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors
    billed = lc.events(client)
    assert len(billed) == 80
    assert all(e.user_id == f"t{e.tokens_in // 100}" for e in billed)


def test_meter_langchain_without_a_client_uses_the_environment(lc, tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'env-ledger.db'}"
    monkeypatch.setenv("AGENTMETER_BASE_URL", url)
    monkeypatch.setenv("AGENTMETER_PROJECT_ID", "env-project")
    monkeypatch.setattr(charge, "_environment_client", None)
    with meter_langchain(user_id="envy", **FLAT) as handler:
        lc.TokenChat().invoke("in=9 out=9")
    env_client = handler.client
    try:
        assert env_client.flush(timeout=30)
        with AgentMeterClient(base_url=url, project_id="env-project") as reader:
            [event] = reader.get_events()
        assert (event.user_id, event.tokens_in) == ("envy", 9)
    finally:
        env_client.close(timeout=5)


# --------------------------------------------------------- chains and tools


def test_a_chain_records_its_run_as_the_parent(client, lc):
    handler = LangChainAgentMeterCallback(client, **FLAT)
    spy = lc.Spy()
    prompt = ChatPromptTemplate.from_messages([("system", "Be brief."), ("human", "{question}")])
    chain = prompt | lc.TokenChat()
    chain.invoke(
        {"question": "in=21 out=4"},
        config={"callbacks": [handler, spy], "metadata": {"user_id": "dana"}, "tags": ["faq"]},
    )
    [model_run] = spy.ends
    chain_run = spy.chains[0]
    assert spy.ends[model_run][1]["parent_run_id"] == chain_run
    [event] = lc.events(client)
    assert (event.user_id, event.tokens_in, event.tokens_out) == ("dana", 21, 4)
    assert event.metadata["parent_run_id"] == str(chain_run)
    assert event.metadata["run_id"] == str(model_run)
    assert "faq" in event.metadata["tags"]


def test_a_tool_that_calls_a_model_is_its_parent(client, lc):
    handler = LangChainAgentMeterCallback(client, **FLAT)
    spy = lc.Spy()
    model = lc.TokenChat()

    @tool
    def summarize(text: str) -> str:
        """Summarize the text with a model."""
        return str(model.invoke(text).content)

    out = summarize.invoke(
        "in=33 out=3", config={"callbacks": [handler, spy], "metadata": {"user_id": "erin"}}
    )
    assert out == "one two three"
    [tool_run] = spy.tools
    [event] = lc.events(client)
    assert (event.user_id, event.tokens_in) == ("erin", 33)
    assert event.metadata["parent_run_id"] == str(tool_run)


# -------------------------------------------------------------- concurrency


def test_300_concurrent_calls_across_10_users_bill_exact_totals(client, lc):
    handler = LangChainAgentMeterCallback(client, user_id="nobody", **FLAT)
    model = lc.TokenChat(delay=0.0005)
    prompts, configs = [], []
    expected: dict[str, Decimal] = defaultdict(Decimal)
    tokens = [0, 0]
    for n in range(300):
        user = n % 10
        tokens_in, tokens_out = user * 1000 + n, n % 17 + 1
        prompts.append(f"in={tokens_in} out={tokens_out}")
        configs.append({"callbacks": [handler], "metadata": {"user_id": f"user-{user}"}})
        expected[f"user-{user}"] += lc.cost((tokens_in, tokens_out), PRICES)
        tokens[0] += tokens_in
        tokens[1] += tokens_out

    answers = model.batch(prompts, config=configs, max_concurrency=16)
    assert len(answers) == 300
    lc.settle(client)

    for user, total in expected.items():
        assert client.get_user_meter(user).current_usage == total, user
    stats = client.get_meter_stats(timeframe="all")
    assert stats.total_events == 300
    assert (stats.total_tokens_in, stats.total_tokens_out) == tuple(tokens)
    assert stats.total_cost == sum(expected.values())
    billed = lc.events(client)
    assert all(e.user_id == f"user-{e.tokens_in // 1000}" for e in billed)
    assert len({e.metadata["run_id"] for e in billed}) == 300
    assert handler._runs.runs == {}


# ----------------------------------------------------------------- eviction


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch):
    fake = _Clock()
    # The integration's own clock only: the tracker's waits keep the real one.
    monkeypatch.setattr(integration, "time", SimpleNamespace(monotonic=fake.monotonic))
    return fake


def _start(handler, run_id, user="u"):
    handler.on_chat_model_start(
        {}, [[]], run_id=run_id, metadata={"user_id": user, "ls_model_name": "m"}
    )


def test_runs_that_never_end_are_evicted_under_load(client, clock):
    handler = LangChainAgentMeterCallback(client, run_ttl=10)
    for _ in range(5000):
        _start(handler, uuid.uuid4())
        clock.now += 0.1  # 100 starts within a ttl
    # At most a ttl's worth of starts, plus those since the last sweep.
    assert len(handler._runs.runs) <= 100 + 256


def test_runs_that_never_end_are_evicted_after_the_ttl_even_when_quiet(client, clock):
    handler = LangChainAgentMeterCallback(client, run_ttl=10)
    for _ in range(5):
        _start(handler, uuid.uuid4())
    clock.now += 60  # long after the ttl, one more run starts
    fresh = uuid.uuid4()
    _start(handler, fresh)
    assert list(handler._runs.runs) == [fresh]


def test_a_live_run_survives_eviction_and_is_billed_to_its_user(client, clock, lc):
    from langchain_core.messages import AIMessage
    from langchain_core.outputs import ChatGeneration, LLMResult

    handler = LangChainAgentMeterCallback(client, run_ttl=10, **FLAT)
    live = uuid.uuid4()
    _start(handler, live, user="keeper")
    for _ in range(600):
        _start(handler, uuid.uuid4())
        clock.now += 0.001
    response = LLMResult(
        generations=[
            [ChatGeneration(message=AIMessage("x", usage_metadata=lc.usage_metadata(3, 1)))]
        ]
    )
    handler.on_llm_end(response, run_id=live)
    [event] = lc.events(client)
    assert (event.user_id, event.tokens_in, event.metadata["model"]) == ("keeper", 3, "m")


def test_an_explicit_handler_inside_a_block_bills_once_as_the_explicit_one(client, lc):
    explicit = LangChainAgentMeterCallback(client, user_id="explicit", **FLAT)
    with meter_langchain(client, user_id="block", input_token_price=1, output_token_price=1):
        lc.TokenChat().invoke("in=2 out=1", config={"callbacks": [explicit]})
    [event] = lc.events(client)
    assert event.user_id == "explicit"
    assert event.total_cost == lc.cost((2, 1), PRICES)


def test_reports_group_the_calls_by_user_and_model(client, lc):
    handler = LangChainAgentMeterCallback(client, **FLAT)
    for user, model, prompt in [
        ("a", "gpt-4o", "in=1 out=1"),
        ("a", "gpt-4o", "in=2 out=1"),
        ("a", "o3-mini", "in=4 out=1"),
        ("b", "gpt-4o", "in=8 out=1"),
    ]:
        lc.TokenChat(response_model=model).invoke(
            prompt, config={"callbacks": [handler], "metadata": {"user_id": user}}
        )
    lc.settle(client)
    rows = client.get_report(granularity="month", group_by=["user", "model"])
    tokens = {(r.user_id, r.model): r.tokens_in for r in rows}
    assert tokens == {("a", "gpt-4o"): 3, ("a", "o3-mini"): 4, ("b", "gpt-4o"): 8}


def test_a_block_in_a_generator_resumed_in_other_contexts_does_not_raise(client, lc):
    """Starlette streams a sync generator by running each next() in a thread
    pool, each in a fresh copy of the caller's context: the block then ends in
    another context than it began in."""
    model = lc.TokenChat()

    def stream_answer():
        with meter_langchain(client, user_id="alice", **FLAT):
            for chunk in model.stream("in=3 out=2"):
                yield chunk.content

    chunks = stream_answer()
    received = []
    while True:
        step = contextvars.copy_context()  # as anyio.to_thread.run_sync does
        try:
            received.append(step.run(next, chunks))
        except StopIteration:
            break
    assert "".join(received) == "one two three"
    assert _users(lc, client) == [("alice", 3)]
    assert integration._current_handler.get() is None
