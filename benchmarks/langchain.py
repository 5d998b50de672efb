"""What LangChainAgentMeterCallback adds to a model call, in microseconds.

A fake chat model (a real ``BaseChatModel`` whose ``_generate`` returns a
message with ``usage_metadata``, no I/O) is invoked ``--calls`` times each way,
in interleaved rounds so drift hits every variant alike:

- ``bare``: no callbacks at all;
- ``no-op handler``: a ``BaseCallbackHandler`` that does nothing, with the
  same ``metadata`` (LangChain's own cost of a handler: run managers, dispatch);
- ``agentmeter``: ``LangChainAgentMeterCallback`` (start: store the run's
  context; end: read usage, price, build and queue the event);
- ``meter_langchain``: the same handler attached by a ``with meter_langchain()``
  block instead of ``config["callbacks"]``.

Each call is timed with ``perf_counter_ns``; the table shows p50/p99 and the
handler's overhead over the no-op handler and over bare. Then the handler's own
callbacks are timed directly (``on_chat_model_start`` + ``on_llm_end`` with a
prepared response), from 1 and from 4 threads (the run table's lock).

Events go to a tracker on an embedded ledger in a temporary directory (its
background thread writes them while the clock runs, as in an app); at the end
the ledger must hold exactly the events and tokens billed.

    python benchmarks/langchain.py               # the figures in docs/benchmarks.md
    python benchmarks/langchain.py --calls 2000  # quicker
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.outputs import ChatGeneration, ChatResult, LLMResult

from agentmeter import AgentMeterClient, LangChainAgentMeterCallback, meter_langchain
from agentmeter.tracker import AgentMeterTracker

USAGE = {"input_tokens": 120, "output_tokens": 30, "total_tokens": 150}


class FakeChat(BaseChatModel):
    """Answers at once, with usage and a model name, as a provider would."""

    model_name: str = "gpt-4o-mini"

    @property
    def _llm_type(self) -> str:
        return "bench-chat"

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: Any = None,
        **kwargs: Any,
    ) -> ChatResult:
        message = AIMessage(
            "ok", usage_metadata=USAGE, response_metadata={"model_name": "gpt-4o-mini-2024-07-18"}
        )
        return ChatResult(generations=[ChatGeneration(message=message)])


class NoOp(BaseCallbackHandler):
    run_inline = True


def percentiles(samples_ns: list[int]) -> tuple[float, float]:
    ordered = sorted(samples_ns)
    p50 = ordered[len(ordered) // 2]
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return p50 / 1000, p99 / 1000


def time_calls(call: Callable[[], Any], count: int) -> list[int]:
    samples = []
    for _ in range(count):
        start = time.perf_counter_ns()
        call()
        samples.append(time.perf_counter_ns() - start)
    return samples


def bench_invoke(
    handler: LangChainAgentMeterCallback, calls: int, rounds: int
) -> tuple[dict[str, Any], int]:
    """Per-variant (p50, p99) in us, and how many calls were billed."""
    model = FakeChat()
    prompt = [HumanMessage("hello")]
    noop = NoOp()
    variants: dict[str, Callable[[], Any]] = {
        "bare": lambda: model.invoke(prompt),
        # The same metadata as the agentmeter variant: LangChain's cost of it is not ours.
        "no-op handler": lambda: model.invoke(
            prompt, config={"callbacks": [noop], "metadata": {"user_id": "bench-user"}}
        ),
        "agentmeter": lambda: model.invoke(
            prompt, config={"callbacks": [handler], "metadata": {"user_id": "bench-user"}}
        ),
    }

    def in_block() -> Any:
        return model.invoke(prompt)

    for call in variants.values():  # warm up imports, caches, the tracker's thread
        time_calls(call, 200)
    samples: dict[str, list[int]] = {name: [] for name in [*variants, "meter_langchain"]}
    per_round = max(1, calls // rounds)
    billed = 200 + 2 * per_round * rounds
    for _ in range(rounds):
        for name, call in variants.items():
            samples[name] += time_calls(call, per_round)
        with meter_langchain(handler.client, user_id="bench-user") as scoped:
            samples["meter_langchain"] += time_calls(in_block, per_round)
        assert not scoped._runs.runs
    return {name: percentiles(values) for name, values in samples.items()}, billed


def bench_ainvoke(handler: LangChainAgentMeterCallback, calls: int) -> dict[str, Any]:
    model = FakeChat()
    prompt = [HumanMessage("hello")]
    noop = NoOp()

    async def run(config: dict[str, Any]) -> list[int]:
        samples = []
        for _ in range(calls):
            start = time.perf_counter_ns()
            await model.ainvoke(prompt, config=config)
            samples.append(time.perf_counter_ns() - start)
        return samples

    async def main() -> dict[str, Any]:
        user = {"user_id": "bench-user"}
        await run({"callbacks": [noop], "metadata": user})  # warm up (not billed)
        noop_samples = await run({"callbacks": [noop], "metadata": user})
        ours = await run({"callbacks": [handler], "metadata": {"user_id": "bench-user"}})
        return {"no-op handler": percentiles(noop_samples), "agentmeter": percentiles(ours)}

    return asyncio.run(main())


def bench_callbacks(
    handler: LangChainAgentMeterCallback, calls: int, threads: int
) -> tuple[tuple[float, float], tuple[float, float]]:
    """The handler's own start and end callbacks, called directly."""
    response = LLMResult(
        generations=[
            [
                ChatGeneration(
                    message=AIMessage(
                        "ok",
                        usage_metadata=USAGE,
                        response_metadata={"model_name": "gpt-4o-mini-2024-07-18"},
                    )
                )
            ]
        ]
    )
    metadata = {"user_id": "bench-user", "ls_model_name": "gpt-4o-mini", "ls_provider": "x"}
    params = {"model": "gpt-4o-mini", "_type": "bench-chat"}
    starts: list[int] = []
    ends: list[int] = []
    lock = threading.Lock()

    def worker() -> None:
        run_ids = [uuid.uuid4() for _ in range(calls)]
        mine_start, mine_end = [], []
        for run_id in run_ids:
            t0 = time.perf_counter_ns()
            handler.on_chat_model_start(
                {}, [[]], run_id=run_id, tags=["t"], metadata=metadata, invocation_params=params
            )
            t1 = time.perf_counter_ns()
            handler.on_llm_end(response, run_id=run_id)
            t2 = time.perf_counter_ns()
            mine_start.append(t1 - t0)
            mine_end.append(t2 - t1)
        with lock:
            starts.extend(mine_start)
            ends.extend(mine_end)

    workers = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    return percentiles(starts), percentiles(ends)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=10_000, help="model calls per variant")
    parser.add_argument("--rounds", type=int, default=10, help="interleaved rounds")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        url = f"sqlite:///{Path(scratch) / 'ledger.db'}"
        client = AgentMeterClient(base_url=url, project_id="bench", agent_id="bench")
        tracker = AgentMeterTracker(client, outbox=Path(scratch) / "outbox.db")
        handler = LangChainAgentMeterCallback(tracker)

        print(f"Python {sys.version.split()[0]}, calls per variant: {args.calls}")
        invoke, billed = bench_invoke(handler, args.calls, args.rounds)
        print("\ninvoke() of a fake chat model, per call (us):")
        print(f"  {'variant':<16} {'p50':>8} {'p99':>8}")
        for name, (p50, p99) in invoke.items():
            print(f"  {name:<16} {p50:>8.1f} {p99:>8.1f}")
        base_noop = invoke["no-op handler"][0]
        print(
            f"  handler overhead (p50): {invoke['agentmeter'][0] - base_noop:.1f} us over a no-op "
            f"handler, {invoke['agentmeter'][0] - invoke['bare'][0]:.1f} us over no callbacks"
        )

        async_calls = max(1000, args.calls // 2)
        ainvoke = bench_ainvoke(handler, async_calls)
        billed += async_calls
        print("\nainvoke(), per call (us):")
        for name, (p50, p99) in ainvoke.items():
            print(f"  {name:<16} {p50:>8.1f} {p99:>8.1f}")

        print("\nthe handler's own callbacks, called directly (us):")
        print(f"  {'threads':<8} {'start p50':>10} {'start p99':>10} {'end p50':>9} {'end p99':>9}")
        for threads in (1, 4):
            (s50, s99), (e50, e99) = bench_callbacks(handler, args.calls, threads)
            billed += args.calls * threads
            print(f"  {threads:<8} {s50:>10.1f} {s99:>10.1f} {e50:>9.1f} {e99:>9.1f}")

        if not tracker.flush(timeout=120):
            print("flush timed out", file=sys.stderr)
            return 1
        stats = client.get_meter_stats(timeframe="all")
        print(
            f"\nledger: {stats.total_events} events, {stats.total_tokens_in} tokens in, "
            f"{stats.total_tokens_out} out, cost {stats.total_cost}"
        )
        ok = (
            stats.total_events == billed
            and stats.total_tokens_in == stats.total_events * USAGE["input_tokens"]
            and stats.total_tokens_out == stats.total_events * USAGE["output_tokens"]
            and len(handler._runs.runs) == 0
        )
        tracker.close(timeout=10)
        client.close(timeout=10)
        if not ok:
            print("the ledger does not hold exactly what was billed", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
