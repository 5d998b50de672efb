"""agentmeter basic usage: decorators, with-blocks, a metered class, a budget.

Runs as is, with no server and no key: the client records to the embedded
ledger file ~/.agentmeter/ledger.db (it says so in one warning). Set
AGENTMETER_BASE_URL (and AGENTMETER_API_KEY) to bill through a server instead.

    python examples/basic_usage.py

Decorators and with-blocks never wait for the network: they hand each event
to the client's background tracker. ``client.flush()`` delivers what it holds;
call it (or ``client.close()``) before a short-lived process exits.
"""

from __future__ import annotations

import asyncio
import logging

from agentmeter import (
    AgentMeterClient,
    BudgetExceededError,
    PaymentType,
    meter_agent,
    meter_api_request_pay,
    meter_instant_pay,
    meter_token_based_pay,
    track_api_request_pay,
    track_instant_pay,
    track_token_based_pay,
)

logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")

PROJECT = "basic-usage"
AGENT = "demo-agent"
client = AgentMeterClient(project_id=PROJECT, agent_id=AGENT)


# 1. Per API request: every successful call costs unit_price. The user is the
#    argument named user_id, passed by position or by keyword.
@meter_api_request_pay(client, unit_price="0.02")
def search(query: str, user_id: str) -> list[str]:
    return [f"{query}: result {number}" for number in range(3)]


# 2. Per token. Without an extractor the usage is found in the result: OpenAI
#    (usage.prompt_tokens / completion_tokens), Anthropic (usage.input_tokens /
#    output_tokens) or a LangChain AIMessage (usage_metadata).
@meter_token_based_pay(client, input_token_price="0.000003", output_token_price="0.000015")
def chat(prompt: str, user_id: str) -> dict:
    # A stand-in for an OpenAI chat completion.
    return {
        "choices": [{"message": {"role": "assistant", "content": f"About {prompt!r}..."}}],
        "usage": {"prompt_tokens": 1200, "completion_tokens": 300, "total_tokens": 1500},
    }


# ...or with an extractor, called as extractor(*args, result=result, **kwargs).
def summary_tokens(*args, result=None, **kwargs) -> tuple[int, int]:
    return result["tokens_read"], result["tokens_written"]


@meter_token_based_pay(
    client,
    input_token_price="0.000003",
    output_token_price="0.000015",
    tokens_extractor=summary_tokens,
)
async def summarize(document: str, user_id: str) -> dict:
    await asyncio.sleep(0)  # async functions are metered the same way
    return {"summary": document[:40], "tokens_read": 800, "tokens_written": 200}


# 3. Instant charges, here only when condition_func says so.
def wants_premium(*args, **kwargs) -> bool:
    return bool(kwargs.get("premium", False))


@meter_instant_pay(
    client, amount="4.99", description="Premium PDF export", condition_func=wants_premium
)
def export_report(report_id: str, user_id: str, premium: bool = False) -> str:
    return f"{report_id}.pdf" if premium else f"{report_id}.txt"


# 4. A class: every public method is metered (or only methods_to_meter=[...]);
#    _private ones never are.
@meter_agent(client, PaymentType.API_REQUEST_PAY, unit_price="0.01")
class ResearchAgent:
    def find_papers(self, topic: str, user_id: str) -> list[str]:
        return self._lookup(topic)

    def cite(self, paper: str, user_id: str) -> str:
        return f"[1] {paper}"

    def _lookup(self, topic: str) -> list[str]:
        return [f"A survey of {topic}"]


# 5. A budget: enforce_budget=True checks the user's meter before the work
#    runs and raises BudgetExceededError instead of running it.
@meter_api_request_pay(client, unit_price="0.02", enforce_budget=True)
def guarded_lookup(term: str, user_id: str) -> str:
    return term.upper()


def main() -> None:
    search("python tutorials", "alice")
    search(query="agent frameworks", user_id="alice")
    chat("Explain metering", "alice")

    # with-blocks: the usage object is filled in while the block runs; the
    # event is made when it ends (and not at all if the block raises).
    with track_api_request_pay(client, PROJECT, AGENT, user_id="alice", unit_price="0.02") as usage:
        usage["api_calls"] = 3
        usage["metadata"]["operation"] = "batch search"
    with track_token_based_pay(
        client,
        PROJECT,
        AGENT,
        user_id="alice",
        input_token_price="0.000003",
        output_token_price="0.000015",
    ) as usage:
        usage["tokens_in"] = 2000
        usage["tokens_out"] = 500
        usage["metadata"]["model"] = "gpt-4o-mini"

    export_report("q3", "bob")  # not premium: not charged
    export_report("q3", "bob", premium=True)
    asyncio.run(summarize("A long annual report about metering ...", user_id="bob"))

    async def onboarding() -> None:
        async with track_instant_pay(client, PROJECT, AGENT, user_id="bob") as usage:
            usage["amount"] = "1.50"
            usage["description"] = "Onboarding session"

    asyncio.run(onboarding())

    agent = ResearchAgent()
    agent.find_papers("usage-based billing", "dave")
    agent.cite("A survey of usage-based billing", user_id="dave")

    client.set_user_meter(threshold_amount="0.05", user_id="carol")
    for term in ("alpha", "beta", "gamma"):
        try:
            guarded_lookup(term, "carol")
            print(f"carol looked up {term!r}")
        except BudgetExceededError as exc:
            print(
                f"carol refused {term!r}: usage {exc.current_usage} + {exc.requested_cost} "
                f"> threshold {exc.threshold_amount}"
            )

    # Deliver everything tracked so far, then read back what was billed.
    if not client.flush(timeout=10):
        raise SystemExit("some events could not be delivered")
    for user in ("alice", "bob", "carol", "dave"):
        events = client.get_events(user_id=user)
        meter = client.get_user_meter(user_id=user)
        print(f"{user:>6}: {len(events)} events, billed {meter.current_usage}")
        for event in reversed(events):
            print(f"          {event.payment_type.value:<16} {event.total_cost}")
    stats = client.get_meter_stats(timeframe="all")
    print(f" total: {stats.total_events} events, {stats.total_cost}")


if __name__ == "__main__":
    try:
        main()
    finally:
        client.close()
