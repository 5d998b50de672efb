"""Many callers at once through one wrapped OpenAI client: each call billed to its own payer.

200 calls over 5 users, each made inside its own ``attribute(user_id=...)``
block, from threads (``OpenAI``) and from asyncio tasks (``AsyncOpenAI``);
a quarter of them streamed. The fake reports usage read from the request's
text, so each user's totals are exact and differ from every other user's.
"""

from __future__ import annotations

import asyncio
import socketserver
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
from openai import AsyncOpenAI, OpenAI

from agentmeter import attribute
from agentmeter.integrations.wrap import wrap

from .fake_openai import MODEL, Counts, OpenAIFake
from .test_openai import cost

USERS = ["ana", "ben", "chloe", "dev", "eli"]
CALLS = 200


@pytest.fixture(autouse=True)
def _room_to_connect(monkeypatch):
    """The fake's listen backlog (socketserver's default: 5) would reset some
    of 200 connections opened at once; a real API's is far larger."""
    monkeypatch.setattr(socketserver.TCPServer, "request_queue_size", 256)


def counts_in_text(body) -> Counts:
    """``"tokens <prompt> <cached> <completion>"``: the usage the fake reports."""
    _, prompt, cached, completion = body["messages"][-1]["content"].split()
    return Counts(prompt=int(prompt), cached=int(cached), completion=int(completion))


def planned_calls() -> list[tuple[str, Counts, bool]]:
    """(payer, usage, streamed) of each call: distinct totals per user."""
    plan = []
    for n in range(CALLS):
        user = n % len(USERS)
        counts = Counts(prompt=100 * (user + 1) + n, cached=n % 50, completion=user + 1 + n % 7)
        plan.append((USERS[user], counts, n % 4 == 0))
    return plan


def ask(counts: Counts) -> dict:
    text = f"tokens {counts.prompt} {counts.cached} {counts.completion}"
    return {"model": "gpt-4o", "messages": [{"role": "user", "content": text}]}


def expected_totals(plan) -> dict[str, tuple[int, int, int, int, Decimal]]:
    totals: dict[str, list] = defaultdict(lambda: [0, 0, 0, 0, Decimal(0)])
    for user, c, _ in plan:
        row = totals[user]
        row[0] += 1
        row[1] += c.prompt
        row[2] += c.cached
        row[3] += c.completion
        row[4] += cost(MODEL, c.prompt, c.completion, c.cached)
    return {user: tuple(row) for user, row in totals.items()}


def billed_totals(billed) -> dict[str, tuple[int, int, int, int, Decimal]]:
    totals: dict[str, list] = defaultdict(lambda: [0, 0, 0, 0, Decimal(0)])
    for event in billed:
        row = totals[event.user_id]
        row[0] += 1
        row[1] += event.tokens_in
        row[2] += event.cached_tokens_in
        row[3] += event.tokens_out
        row[4] += event.total_cost
    return {user: tuple(row) for user, row in totals.items()}


def test_threads_each_in_their_own_block_bill_exact_totals_per_user(fake_server, meter, events):
    server = fake_server(OpenAIFake(counts=counts_in_text))
    client = wrap(OpenAI(api_key="test", base_url=server.url + "/v1", max_retries=0), meter)
    plan = planned_calls()

    def call(user: str, counts: Counts, streamed: bool) -> None:
        with attribute(user_id=user):
            if streamed:
                for _ in client.chat.completions.create(stream=True, **ask(counts)):
                    pass
            else:
                client.chat.completions.create(**ask(counts))

    with ThreadPoolExecutor(max_workers=16) as pool:
        for future in [pool.submit(call, *planned) for planned in plan]:
            future.result()
    billed = events(meter)
    assert len(billed) == CALLS
    assert len({event.metadata["response_id"] for event in billed}) == CALLS
    assert billed_totals(billed) == expected_totals(plan)


def test_asyncio_tasks_each_in_their_own_block_bill_exact_totals_per_user(
    fake_server, meter, events
):
    server = fake_server(OpenAIFake(counts=counts_in_text))
    plan = planned_calls()

    async def call(client: AsyncOpenAI, user: str, counts: Counts, streamed: bool) -> None:
        with attribute(user_id=user):
            if streamed:
                stream = await client.chat.completions.create(stream=True, **ask(counts))
                async for _ in stream:
                    await asyncio.sleep(0)  # let other tasks run in between
            else:
                await client.chat.completions.create(**ask(counts))

    async def main() -> None:
        client = wrap(
            AsyncOpenAI(api_key="test", base_url=server.url + "/v1", max_retries=0), meter
        )
        await asyncio.gather(*(call(client, *planned) for planned in plan))

    asyncio.run(main())
    billed = events(meter)
    assert len(billed) == CALLS
    assert billed_totals(billed) == expected_totals(plan)
