"""Every decorator on every kind of callable, billed exactly, read back from the server.

The matrix: {meter_api_request_pay, meter_token_based_pay (usage found in the
result), meter_instant_pay, meter_function (token pricing with an extractor)}
x {function, async def, method, staticmethod and classmethod (the meter above
and below the builtin), generator, async generator}. Each case calls the
metered callable twice, once with ``user_id`` by position and once by keyword,
and checks each user's meter, the events and the project's total.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest

from agentmeter import (
    AgentMeterTracker,
    PaymentType,
    meter_api_request_pay,
    meter_function,
    meter_instant_pay,
    meter_token_based_pay,
)
from agentmeter.errors import AgentMeterValidationError

KINDS = [
    "function",
    "async",
    "method",
    "staticmethod",
    "staticmethod_inner",
    "classmethod",
    "classmethod_inner",
    "generator",
    "async_generator",
]
STREAMS = {"generator", "async_generator"}

# An OpenAI-shaped answer: 100 tokens in, 50 out.
ANSWER = {
    "id": "chatcmpl-1",
    "choices": [{"message": {"content": "hi"}}],
    "usage": {"prompt_tokens": 100, "completion_tokens": 50, "total_tokens": 150},
}
# The same as a stream: usage on the last chunk only (stream_options include_usage).
CHUNKS = [
    {"id": "chatcmpl-1", "choices": [{"delta": {"content": "h"}}], "usage": None},
    {"id": "chatcmpl-1", "choices": [{"delta": {"content": "i"}}], "usage": None},
    {
        "id": "chatcmpl-1",
        "choices": [],
        "usage": {"prompt_tokens": 100, "completion_tokens": 50, "total_tokens": 150},
    },
]


def seven_and_three(*args: Any, result: Any = None, **kwargs: Any) -> tuple[int, int]:
    """A tokens_extractor: 7 tokens in, 3 out, whatever the call."""
    assert result is not None  # the result (or, for a stream, the list of chunks)
    return 7, 3


@dataclass
class Case:
    name: str
    decorate: Callable[[Any], Callable[[Any], Any]]  # client -> decorator
    cost: Decimal  # per call
    payment_type: PaymentType


CASES = [
    Case(
        "api_request",
        lambda client: meter_api_request_pay(client, unit_price="0.05"),
        Decimal("0.05"),
        PaymentType.API_REQUEST_PAY,
    ),
    Case(
        "token_auto",
        lambda client: meter_token_based_pay(
            client, input_token_price="0.001", output_token_price="0.002"
        ),
        Decimal("0.200"),  # 100 x 0.001 + 50 x 0.002
        PaymentType.TOKEN_BASED_PAY,
    ),
    Case(
        "instant",
        lambda client: meter_instant_pay(client, amount="1.25", description="report"),
        Decimal("1.25"),
        PaymentType.INSTANT_PAY,
    ),
    Case(
        "function_tokens_extractor",
        lambda client: meter_function(
            client,
            PaymentType.TOKEN_BASED_PAY,
            input_token_price="0.01",
            output_token_price="0.02",
            tokens_extractor=seven_and_three,
        ),
        Decimal("0.13"),  # 7 x 0.01 + 3 x 0.02
        PaymentType.TOKEN_BASED_PAY,
    ),
]


async def _collect(stream: Any) -> list[Any]:
    return [item async for item in stream]


def build(kind: str, decorate: Callable[[Any], Any]) -> tuple[Any, Callable[..., Any], Any]:
    """(what the user sees, ``call(*args, **kwargs) -> result``, an undecorated twin)."""
    if kind == "function":

        def answer(query, user_id):
            """Answer a query."""
            return ANSWER

        return decorate(answer), None, answer
    if kind == "async":

        async def answer(query, user_id):
            """Answer a query."""
            await asyncio.sleep(0)
            return ANSWER

        metered = decorate(answer)
        return metered, lambda *a, **k: asyncio.run(metered(*a, **k)), answer
    if kind == "method":

        class Service:
            def answer(self, query, user_id):
                """Answer a query."""
                return ANSWER

        twin = Service.answer
        Service.answer = decorate(Service.answer)
        return Service.answer, lambda *a, **k: Service().answer(*a, **k), twin
    if kind in ("staticmethod", "staticmethod_inner"):

        def answer(query, user_id):
            """Answer a query."""
            return ANSWER

        if kind == "staticmethod":  # @meter above @staticmethod
            Service = type("Service", (), {"answer": decorate(staticmethod(answer))})
        else:  # @staticmethod above @meter
            Service = type("Service", (), {"answer": staticmethod(decorate(answer))})
        return Service.answer, lambda *a, **k: Service().answer(*a, **k), answer
    if kind in ("classmethod", "classmethod_inner"):

        def answer(cls, query, user_id):
            """Answer a query."""
            assert isinstance(cls, type)
            return ANSWER

        if kind == "classmethod":
            Service = type("Service", (), {"answer": decorate(classmethod(answer))})
        else:
            Service = type("Service", (), {"answer": classmethod(decorate(answer))})
        twin = type("Twin", (), {"answer": classmethod(answer)}).answer
        return Service.answer, lambda *a, **k: Service.answer(*a, **k), twin
    if kind == "generator":

        def answer(query, user_id):
            """Answer a query."""
            yield from CHUNKS

        metered = decorate(answer)
        return metered, lambda *a, **k: list(metered(*a, **k)), answer
    if kind == "async_generator":

        async def answer(query, user_id):
            """Answer a query."""
            for chunk in CHUNKS:
                await asyncio.sleep(0)
                yield chunk

        metered = decorate(answer)
        return metered, lambda *a, **k: asyncio.run(_collect(metered(*a, **k))), answer
    raise AssertionError(kind)


def caller(kind: str, decorate: Callable[[Any], Any]) -> tuple[Any, Callable[..., Any], Any]:
    metered, call, twin = build(kind, decorate)
    return metered, call or metered, twin


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_each_decorator_bills_each_kind_exactly(case, kind, client, ledger):
    _, call, _ = caller(kind, case.decorate(client))

    first = call("weather", "u-positional")
    second = call(query="news", user_id="u-keyword")

    expected = CHUNKS if kind in STREAMS else ANSWER
    assert first == expected
    assert second == expected
    ledger.settle()
    for user in ("u-positional", "u-keyword"):
        assert ledger.usage(user) == case.cost
        (event,) = ledger.events(user)
        assert event.payment_type is case.payment_type
        assert event.total_cost == case.cost
        assert event.agent_id == "capture-agent"
        assert event.metadata["function"].endswith("answer")
        assert "status" not in event.metadata
    assert ledger.total() == 2 * case.cost


@pytest.mark.parametrize("kind", KINDS)
def test_the_metered_callable_looks_like_the_original(kind, client):
    metered, _, twin = caller(kind, meter_api_request_pay(client, unit_price="0.05"))

    assert metered.__name__ == "answer"
    assert metered.__doc__ == "Answer a query."
    assert inspect.signature(metered) == inspect.signature(twin)
    assert inspect.iscoroutinefunction(metered) is (kind == "async")
    assert inspect.isasyncgenfunction(metered) is (kind == "async_generator")
    assert inspect.isgeneratorfunction(metered) is (kind == "generator")


def test_user_id_param_names_another_argument(client, ledger):
    @meter_api_request_pay(client, unit_price="0.5", user_id_param="customer")
    def lookup(order, customer, user_id="not-this-one"):
        return order

    lookup("o-1", "cust-positional")
    lookup(order="o-2", customer="cust-keyword")
    lookup("o-3", customer=42)  # not a string: billed to its text
    ledger.settle()
    assert ledger.usage("cust-positional") == Decimal("0.5")
    assert ledger.usage("cust-keyword") == Decimal("0.5")
    assert ledger.usage("42") == Decimal("0.5")
    assert ledger.events("not-this-one") == []


def test_without_a_user_argument_the_clients_user_is_billed(make_client, ledger):
    client = make_client(user_id="the-default-user")

    @meter_api_request_pay(client, unit_price="0.25")
    def ping():
        return "pong"

    assert ping() == "pong"
    assert client.flush(timeout=10)
    assert ledger.usage("the-default-user") == Decimal("0.25")


def test_api_calls_project_and_agent_arguments(client, ledger):
    @meter_api_request_pay(client, unit_price="0.003", api_calls=7, agent_id="search-agent")
    def search(query, user_id):
        return [query]

    search("a", "u1")
    ledger.settle()
    (event,) = ledger.events("u1")
    assert event.api_calls == 7
    assert event.unit_price == Decimal("0.003")
    assert event.agent_id == "search-agent"
    assert ledger.usage("u1") == Decimal("0.021")


def test_default_prices_are_the_clients(make_client, ledger):
    client = make_client(
        api_request_unit_price="0.0123", input_token_price="0.5", output_token_price="0.25"
    )

    @meter_api_request_pay(client)
    def call(user_id):
        return None

    @meter_token_based_pay(client)
    def llm(user_id):
        return {"usage": {"input_tokens": 2, "output_tokens": 4}}

    call("u1")
    llm("u2")
    assert client.flush(timeout=10)
    assert ledger.usage("u1") == Decimal("0.0123")
    assert ledger.usage("u2") == Decimal("2.00")  # 2 x 0.5 + 4 x 0.25


def test_a_tracker_as_first_argument(client, ledger, tmp_path):
    tracker = AgentMeterTracker(
        client, agent_id="tracker-agent", auto_flush=False, outbox=tmp_path / "outbox.db"
    )
    try:

        @meter_instant_pay(tracker, amount="2.50", description="via a tracker")
        def export(user_id):
            return "done"

        export("u1")
        export(user_id="u1")
        ledger.settle(tracker)
        events = ledger.events("u1")
        assert [event.agent_id for event in events] == ["tracker-agent"] * 2
        assert {event.description for event in events} == {"via a tracker"}
        assert ledger.usage("u1") == Decimal("5.00")
    finally:
        tracker.close(timeout=5)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("premium", [True, False])
def test_condition_func_decides_the_instant_charge(kind, premium, client, ledger):
    seen = []

    def is_premium(*args, **kwargs):
        seen.append((args, kwargs))
        return "premium" in (*args, *kwargs.values())

    decorate = meter_instant_pay(
        client, amount="4.99", description="Premium", condition_func=is_premium
    )
    _, call, _ = caller(kind, decorate)

    query = "premium" if premium else "basic"
    call(query, "u-positional")
    call(query=query, user_id="u-keyword")
    ledger.settle()

    # The condition sees the call's own arguments (self or cls first for methods).
    assert seen[0][0][-2:] == (query, "u-positional")
    assert seen[1][1] == {"query": query, "user_id": "u-keyword"}
    expected = Decimal("4.99") if premium else Decimal(0)
    assert ledger.usage("u-positional") == expected
    assert ledger.usage("u-keyword") == expected
    assert len(ledger.events()) == (2 if premium else 0)


def test_condition_keyword_of_0_2_is_accepted(client, ledger):
    @meter_instant_pay(client, amount="1", condition=lambda *a, **k: k.get("premium", False))
    def feature(data, user_id, premium=False):
        return data

    feature("x", "u1", premium=True)
    feature("x", "u1")
    ledger.settle()
    assert ledger.usage("u1") == Decimal(1)


def test_generator_stopped_early_is_billed_once(client, ledger):
    @meter_api_request_pay(client, unit_price="0.1")
    def numbers(user_id):
        yield from range(100)

    stream = numbers("u1")
    assert next(stream) == 0
    assert next(stream) == 1
    stream.close()
    # Never iterated: never started, never billed.
    numbers("u2")
    ledger.settle()
    assert ledger.usage("u1") == Decimal("0.1")
    assert ledger.events("u2") == []


def test_generator_send_and_return_value_pass_through(client, ledger):
    @meter_api_request_pay(client, unit_price="0.1")
    def echo(user_id):
        total = 0
        while True:
            received = yield total
            if received is None:
                return total
            total += received

    stream = echo("u1")
    assert next(stream) == 0
    assert stream.send(5) == 5
    assert stream.send(6) == 11
    with pytest.raises(StopIteration) as stop:
        next(stream)
    assert stop.value.value == 11
    ledger.settle()
    assert ledger.usage("u1") == Decimal("0.1")


def test_async_generator_closed_early_is_billed_once(client, ledger):
    @meter_token_based_pay(client, input_token_price="1", output_token_price="1")
    async def stream(user_id):
        yield {"usage_metadata": {"input_tokens": 5, "output_tokens": 1}}
        yield {"usage_metadata": {"input_tokens": 0, "output_tokens": 1}}
        yield {"usage_metadata": {"input_tokens": 0, "output_tokens": 1}}

    async def take_two():
        chunks = stream("u1")
        first = await chunks.__anext__()
        second = await chunks.__anext__()
        await chunks.aclose()
        return first, second

    asyncio.run(take_two())
    ledger.settle()
    assert ledger.usage("u1") == Decimal(7)  # what was consumed: 5 in, 2 out


def test_concurrent_async_calls_bill_each_user(client, ledger):
    @meter_api_request_pay(client, unit_price="0.01")
    async def handle(request, user_id):
        await asyncio.sleep(0.001)
        return request

    async def main():
        return await asyncio.gather(*(handle(i, f"u{i % 5}") for i in range(50)))

    assert asyncio.run(main()) == list(range(50))
    ledger.settle()
    for user in range(5):
        assert ledger.usage(f"u{user}") == Decimal("0.10")
    assert ledger.total() == Decimal("0.50")


def test_decorating_is_validated_at_once(client):
    with pytest.raises(AgentMeterValidationError) as caught:
        meter_api_request_pay(client, unit_price="-1")
    assert caught.value.field == "unit_price"
    with pytest.raises(AgentMeterValidationError) as caught:
        meter_instant_pay(client, amount="nan")
    assert caught.value.field == "amount"
    with pytest.raises(AgentMeterValidationError) as caught:
        meter_function(client, "per_second")
    assert caught.value.field == "payment_type"
    with pytest.raises(TypeError):
        meter_api_request_pay("not a client", unit_price="1")
    with pytest.raises(TypeError):
        meter_api_request_pay(client, unit_price="1")(42)


def test_the_default_of_the_user_argument_is_the_user(client, ledger):
    @meter_api_request_pay(client, unit_price="0.5")
    def lookup(order, user_id="guest"):
        return user_id

    @meter_api_request_pay(client, unit_price="0.5")
    async def alookup(order, *, user_id="async-guest"):
        return user_id

    assert lookup("o-1") == "guest"
    assert asyncio.run(alookup("o-2")) == "async-guest"
    lookup("o-3", None)  # None passed: the client's default user, as with no argument
    ledger.settle()
    assert ledger.usage("guest") == Decimal("0.5")
    assert ledger.usage("async-guest") == Decimal("0.5")
    assert ledger.usage("anonymous") == Decimal("0.5")


def test_float_prices_are_exact(client, ledger):
    @meter_api_request_pay(client, unit_price=0.1)
    def search(user_id):
        return None

    @meter_instant_pay(client, amount=0.7)
    def fee(user_id):
        return None

    for _ in range(3):
        search("u1")
    fee("u2")
    ledger.settle()
    assert ledger.usage("u1") == Decimal("0.3")  # not 0.30000000000000004
    assert ledger.usage("u2") == Decimal("0.7")


def test_async_generator_asend_and_athrow_pass_through(client, ledger):
    cleaned = []

    @meter_api_request_pay(client, unit_price="0.1")
    async def accumulate(user_id):
        total = 0
        try:
            while True:
                try:
                    received = yield total
                except ValueError:  # thrown in by the consumer: handled here
                    received = 100
                total += received or 0
        finally:
            cleaned.append(total)

    async def main():
        stream = accumulate("u1")
        assert await stream.asend(None) == 0
        assert await stream.asend(5) == 5
        assert await stream.athrow(ValueError("reset")) == 105
        await stream.aclose()

    asyncio.run(main())
    assert cleaned == [105]
    ledger.settle()
    assert ledger.usage("u1") == Decimal("0.1")


def test_gemini_and_bedrock_results_are_billed_by_their_tokens(client, ledger):
    """Regression (issue 13): the decorators read Gemini's usage_metadata and
    Bedrock Converse's usage as 0 tokens."""
    from types import SimpleNamespace

    @meter_token_based_pay(client, input_token_price="0.001", output_token_price="0.002")
    def gemini(user_id: str) -> object:
        usage = SimpleNamespace(
            prompt_token_count=100, candidates_token_count=40, thoughts_token_count=10
        )
        return SimpleNamespace(text="hi", usage_metadata=usage)

    @meter_token_based_pay(client, input_token_price="0.001", output_token_price="0.002")
    def bedrock(user_id: str) -> dict:
        return {"output": {}, "usage": {"inputTokens": 20, "outputTokens": 5, "totalTokens": 25}}

    gemini("gem-user")
    bedrock("rock-user")
    ledger.settle()
    [gemini_event] = ledger.events("gem-user")
    [bedrock_event] = ledger.events("rock-user")
    assert (gemini_event.tokens_in, gemini_event.tokens_out) == (100, 50)
    assert gemini_event.total_cost == Decimal("0.2")
    assert (bedrock_event.tokens_in, bedrock_event.tokens_out) == (20, 5)
    assert bedrock_event.total_cost == Decimal("0.03")


def test_a_decorator_prices_by_its_model_and_records_an_unknown_one_unpriced(
    client, ledger, caplog
):
    """Issue 13: a model's list price, and never a silent wrong price in the background."""
    from agentmeter import track_token_based_pay

    @meter_token_based_pay(client, model="gpt-4")
    def known(user_id: str) -> dict:
        return {"usage": {"prompt_tokens": 1000, "completion_tokens": 1000}}

    @meter_token_based_pay(client, model="in-house-9")
    def unknown(user_id: str) -> dict:
        return {"usage": {"prompt_tokens": 5, "completion_tokens": 5}}

    known("model-user")
    unknown("unpriced-user")
    unknown("unpriced-user")  # works on, warns once
    with track_token_based_pay(client, user_id="block-user") as usage:
        usage["tokens_in"], usage["tokens_out"] = 1000, 0
        usage["metadata"]["model"] = "claude-3-opus"
    ledger.settle()
    [priced] = ledger.events("model-user")
    assert priced.total_cost == Decimal("0.09")
    assert priced.metadata["model"] == "gpt-4"
    unpriced = ledger.events("unpriced-user")
    assert [(e.tokens_in, e.total_cost, e.metadata["unpriced"]) for e in unpriced] == [
        (5, Decimal(0), True),
        (5, Decimal(0), True),
    ]
    [block] = ledger.events("block-user")
    assert block.total_cost == Decimal("0.015")
    assert len([r for r in caplog.records if "in-house-9" in r.getMessage()]) == 1


def test_a_model_name_must_be_text():
    with pytest.raises(AgentMeterValidationError, match="model"):
        meter_token_based_pay(object.__new__(AgentMeterTracker), model="")
