"""agentmeter + LangChain: bill every model call by its tokens, to the right user.

Runs offline: a fake chat model stands in for a real one (it reports token
usage the way ChatOpenAI does), and with neither AGENTMETER_API_KEY nor
AGENTMETER_BASE_URL set the client records to the embedded ledger file
~/.agentmeter/ledger.db (it says so in one warning). Swap in a real model and
point AGENTMETER_BASE_URL at a server, and the same code bills through it.

    pip install 'agentmeter[langchain]'
    python examples/langchain_integration.py
"""

import logging
import uuid

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage
from langchain_core.prompts import ChatPromptTemplate

from agentmeter import AgentMeterClient, LangChainAgentMeterCallback, meter_langchain

logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")

MODEL = "gpt-4o-mini-2024-07-18"  # priced by the default table's "gpt-4o-mini" entry


def answer(text, tokens_in, tokens_out):
    """A reply as a provider returns it: the text, its usage and the model's name."""
    return AIMessage(
        text,
        usage_metadata={
            "input_tokens": tokens_in,
            "output_tokens": tokens_out,
            "total_tokens": tokens_in + tokens_out,
        },
        response_metadata={"model_name": MODEL},
    )


model = GenericFakeChatModel(
    messages=iter(
        [
            answer("Your order ships tomorrow.", 1200, 80),
            answer("Refunds take 5 days.", 900, 45),
            answer("Here is a summary.", 3000, 250),
        ]
    )
)
prompt = ChatPromptTemplate.from_messages(
    [("system", "You are a support agent."), ("human", "{question}")]
)
chain = prompt | model
run = uuid.uuid4().hex[:8]  # marks this run's events in the (shared) ledger file

with AgentMeterClient(project_id="langchain-example", agent_id="support-bot") as client:
    # 1. One handler for the app; the user of each call comes from its config.
    handler = LangChainAgentMeterCallback(client, user_id="anonymous", metadata={"run": run})
    chain.invoke(
        {"question": "Where is my order?"},
        config={"callbacks": [handler], "metadata": {"user_id": "alice"}},
    )
    chain.invoke(
        {"question": "How do refunds work?"},
        config={"callbacks": [handler], "metadata": {"user_id": "bob"}},
    )

    # 2. Or a block: every model call inside it is billed to its user.
    with meter_langchain(client, user_id="alice", metadata={"run": run}):
        model.invoke("Summarize my tickets.")

    # Events are queued and sent in the background: deliver them before exiting.
    if not client.flush(timeout=10):
        print("not every event was delivered; the rest stays in the outbox")

    billed = [e for e in client.get_events(limit=1000) if e.metadata.get("run") == run]
    for event in reversed(billed):
        print(
            f"{event.user_id:>6}: {event.metadata['model']} "
            f"{event.tokens_in} in + {event.tokens_out} out = {event.total_cost}"
        )
    for user in ("alice", "bob"):
        total = sum(e.total_cost for e in billed if e.user_id == user)
        meter = client.get_user_meter(user)
        print(f"{user:>6}: billed {total} in this run, {meter.current_usage} in all")
