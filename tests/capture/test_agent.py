"""meter_agent: the listed methods, or every public one, never a private one."""

from __future__ import annotations

import asyncio
from collections import Counter
from decimal import Decimal

import pytest

from agentmeter import PaymentType, meter_agent, meter_api_request_pay
from agentmeter.errors import AgentMeterValidationError


def make_agent_class():
    class SearchAgent:
        """Every kind of attribute a class may have."""

        label = "search"

        def __init__(self):
            self.calls = []

        def search(self, query, user_id):
            self.calls.append(("search", query))
            return f"results for {query}"

        def recommend(self, user_id):
            return ["a", "b"]

        async def answer(self, question, user_id):
            return question.upper()

        def stream(self, user_id):
            yield from "xyz"

        @staticmethod
        def normalize(text, user_id):
            return text.strip()

        @classmethod
        def build(cls, user_id):
            return cls()

        @property
        def status(self):
            return "ready"

        def _internal(self, user_id):
            return "private"

        def __len__(self):
            return 0

        class Config:  # a nested class is not a method
            pass

    return SearchAgent


def billed_functions(ledger) -> Counter:
    return Counter(event.metadata["function"].rsplit(".", 1)[-1] for event in ledger.events())


def exercise(agent_class) -> None:
    agent = agent_class()
    agent.search("q", "u1")
    agent.recommend("u1")
    asyncio.run(agent.answer("q", user_id="u1"))
    list(agent.stream("u1"))
    agent_class.normalize(" q ", "u1")
    agent.normalize(" q ", "u1")
    agent_class.build("u1")
    assert agent.status == "ready"
    assert agent._internal("u1") == "private"
    assert len(agent) == 0


def test_listed_methods_only(client, ledger):
    agent_class = meter_agent(
        client,
        PaymentType.API_REQUEST_PAY,
        unit_price="0.1",
        methods_to_meter=["search", "recommend"],
    )(make_agent_class())

    exercise(agent_class)

    ledger.settle()
    assert billed_functions(ledger) == Counter({"search": 1, "recommend": 1})
    assert ledger.usage("u1") == Decimal("0.2")


def test_listed_methods_in_the_0_2_positional_order(client, ledger):
    agent_class = meter_agent(client, PaymentType.INSTANT_PAY, ["build"], amount="2")(
        make_agent_class()
    )
    exercise(agent_class)
    ledger.settle()
    assert billed_functions(ledger) == Counter({"build": 1})
    assert ledger.usage("u1") == Decimal(2)


def test_by_default_every_public_method(client, ledger):
    agent_class = meter_agent(client, "api_request_pay", unit_price="0.01")(make_agent_class())

    exercise(agent_class)

    ledger.settle()
    assert billed_functions(ledger) == Counter(
        {"search": 1, "recommend": 1, "answer": 1, "stream": 1, "normalize": 2, "build": 1}
    )
    assert ledger.usage("u1") == Decimal("0.07")
    # The class keeps working as a class; the kinds of its methods are kept.
    assert isinstance(agent_class.__dict__["normalize"], staticmethod)
    assert isinstance(agent_class.__dict__["build"], classmethod)
    assert isinstance(agent_class.__dict__["status"], property)
    assert asyncio.iscoroutinefunction(agent_class.answer)


def test_token_priced_agent_finds_usage_in_results(client, ledger):
    @meter_agent(
        client, PaymentType.TOKEN_BASED_PAY, input_token_price="0.01", output_token_price="0.03"
    )
    class Writer:
        def draft(self, topic, user_id):
            return {"usage": {"prompt_tokens": 10, "completion_tokens": 20}}

    Writer().draft("t", "u1")
    ledger.settle()
    assert ledger.usage("u1") == Decimal("0.70")


def test_inherited_public_methods_are_metered_on_the_subclass_only(client, ledger):
    class Base:
        def ping(self, user_id):
            return "pong"

    @meter_agent(client, unit_price="0.5")
    class Child(Base):
        pass

    Child().ping("u1")
    Base().ping("u2")
    ledger.settle()
    assert ledger.usage("u1") == Decimal("0.5")
    assert ledger.events("u2") == []


def test_a_method_metered_already_is_not_billed_twice(client, ledger):
    @meter_agent(client, unit_price="1")
    class Agent:
        @meter_api_request_pay(client, unit_price="0.25")
        def act(self, user_id):
            return "acted"

        @staticmethod
        @meter_api_request_pay(client, unit_price="0.25")
        def helper(user_id):
            return "helped"

    Agent().act("u1")
    Agent.helper("u1")
    ledger.settle()
    assert ledger.costs("u1") == [Decimal("0.25"), Decimal("0.25")]


def test_private_or_missing_names_are_refused(client):
    with pytest.raises(AgentMeterValidationError) as caught:
        meter_agent(client, methods_to_meter=["_internal"])(make_agent_class())
    assert caught.value.field == "methods_to_meter"
    with pytest.raises(AgentMeterValidationError):
        meter_agent(client, methods_to_meter=["__len__"])(make_agent_class())
    with pytest.raises(AgentMeterValidationError):
        meter_agent(client, methods_to_meter=["missing"])(make_agent_class())
    with pytest.raises(AgentMeterValidationError):
        meter_agent(client, methods_to_meter=["status"])(make_agent_class())  # a property


def test_a_single_name_as_a_string(client, ledger):
    agent_class = meter_agent(client, methods_to_meter="recommend", unit_price="0.3")(
        make_agent_class()
    )
    exercise(agent_class)
    ledger.settle()
    assert billed_functions(ledger) == Counter({"recommend": 1})
