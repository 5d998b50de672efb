"""agentmeter quick start: no server, no key.

With neither AGENTMETER_API_KEY nor AGENTMETER_BASE_URL set, the client
records to the embedded ledger file ~/.agentmeter/ledger.db (it says so in
one warning). Point AGENTMETER_BASE_URL at a server and the same code bills
through it.

    python examples/quickstart.py
"""

import logging

from agentmeter import AgentMeterClient

logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")

with AgentMeterClient(project_id="quickstart", agent_id="support-bot") as client:
    # 1. Per API request: 3 calls at 0.02 each.
    search = client.record_api_request_pay(api_calls=3, unit_price="0.02", user_id="alice")
    # 2. Per token: prices are per single token.
    llm = client.record_token_based_pay(
        tokens_in=1000,
        tokens_out=500,
        input_token_price="0.000004",
        output_token_price="0.000012",
        user_id="alice",
        metadata={"model": "gpt-4o-mini"},
    )
    # 3. Instant: a one-off charge.
    report = client.record_instant_pay(amount="4.99", description="PDF report", user_id="bob")
    for name, answer in [("search", search), ("llm", llm), ("report", report)]:
        print(f"{name:>7}: event {answer.event_id} cost {answer.cost}")

    # A budget for alice: usage so far against a 10.00 threshold.
    meter = client.set_user_meter(threshold_amount="10.00", user_id="alice")
    print(
        f"  alice: used {meter.current_usage} of {meter.threshold_amount} "
        f"({meter.usage_percentage}%), over limit: {meter.is_over_limit}"
    )

    stats = client.get_meter_stats(timeframe="24 hours")
    print(
        f"24 hours: {stats.total_events} events, {stats.total_api_calls} API calls, "
        f"{stats.total_tokens} tokens, total cost {stats.total_cost}"
    )
