"""``attribute()``: who pays for the metered calls inside a block (issue 14)."""

from __future__ import annotations

import asyncio
import contextvars
import subprocess
import sys
import threading

import pytest

from agentmeter import (
    AgentMeterClient,
    AgentMeterTracker,
    AgentMeterValidationError,
    attribute,
    meter_api_request_pay,
)
from agentmeter.capture.attribution import current_attribution


def test_blocks_nest_and_the_inner_one_wins_field_by_field():
    with attribute(user_id="alice", agent_id="support", metadata={"plan": "pro", "tier": 1}):
        with attribute(user_id="bob", metadata={"tier": 2}) as inner:
            assert inner.user_id == "bob"
            assert inner.agent_id == "support"
            assert dict(inner.metadata) == {"plan": "pro", "tier": 2}
        assert current_attribution().user_id == "alice"
    assert current_attribution() is None


@pytest.mark.parametrize("bad", [{"user_id": ""}, {"agent_id": "x" * 300}, {"user_id": 7}])
def test_a_bad_id_raises_when_the_block_opens(bad):
    with pytest.raises(AgentMeterValidationError), attribute(**bad):
        pass
    assert current_attribution() is None


def test_each_asyncio_task_keeps_its_own_payer():
    async def work(user: str) -> str | None:
        with attribute(user_id=user):
            await asyncio.sleep(0.01)  # the other tasks run their blocks meanwhile
            return current_attribution().user_id

    async def main() -> list[str | None]:
        return await asyncio.gather(*(work(f"u{n}") for n in range(20)))

    assert asyncio.run(main()) == [f"u{n}" for n in range(20)]


def test_a_thread_gets_the_attribution_only_through_a_copied_context():
    seen: dict[str, object] = {}
    with attribute(user_id="alice"):
        plain = threading.Thread(target=lambda: seen.update(plain=current_attribution()))
        context = contextvars.copy_context()
        carried = threading.Thread(
            target=context.run, args=(lambda: seen.update(carried=current_attribution().user_id),)
        )
        for thread in (plain, carried):
            thread.start()
            thread.join()
    assert seen == {"plain": None, "carried": "alice"}


def test_a_decorated_call_without_a_user_bills_the_attributed_one(tmp_path):
    client = AgentMeterClient(base_url=f"sqlite:///{tmp_path / 'l.db'}", project_id="p")
    client._tracker = AgentMeterTracker(client, outbox=None)

    @meter_api_request_pay(client, unit_price="0.5")
    def search(query: str, user_id: str | None = None) -> str:
        return query

    with attribute(user_id="alice"):
        search("a")
        search("b", user_id="bob")  # a user named on the call wins
    search("c")  # outside: the tracker's default user
    assert client.flush(timeout=10)
    users = sorted(event.user_id for event in client.get_events())
    assert users == ["alice", "anonymous", "bob"]
    client.close()


def test_importing_agentmeter_loads_no_provider_sdk_nor_langchain():
    code = (
        "import sys, agentmeter; agentmeter.wrap; agentmeter.attribute; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'openai', 'anthropic', 'google', 'boto3', 'botocore', 'langchain_core'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
