"""What ``agentmeter.wrap()`` adds to an OpenAI call: the wrapper's overhead, per call.

``python benchmarks/wrappers.py`` times non-streamed
``client.chat.completions.create`` calls (each on its own,
``time.perf_counter_ns``) in interleaved rounds, against the stand-in OpenAI
server of ``examples/openai_wrapper.py``, run in a process of its own on
127.0.0.1 (so it does not compete for this one's GIL) and kept alive between
calls (so no call pays for a new connection):

- the bare SDK client,
- the same client wrapped (``agentmeter.wrap``): the SDK's call, then the
  response's usage read, the payer picked and one token event queued.

A round trip to a local server takes a millisecond or so and moves by tens
of microseconds from run to run, more than the wrapper adds; so the
wrapper's own part is also timed alone: the metered ``create`` around a
stand-in for the SDK's method that returns the same parsed
``ChatCompletion`` at once, in a tight loop (its code and data stay in the
CPU's caches). Last, ``ProviderMeter.bill()`` is timed inside real wrapped
calls, where it runs with caches cold from the HTTP call before it: that is
nearer to what a call through ``wrap()`` costs in a program.

The tracker queues and never sends: its worker thread is kept from starting
and there is no outbox, so only the caller's work is timed, not a batch
being written beside it; the queue is emptied between rounds, untimed, as
the worker would. Prints p50 and p99 in microseconds, and the p50
difference.
"""

from __future__ import annotations

import argparse
import logging
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from openai import OpenAI, Stream
from openai.types.chat import ChatCompletion

import agentmeter
from agentmeter import AgentMeterClient, AgentMeterTracker
from agentmeter.integrations.openai_wrapper import _observe_chunk, _sync_call, wrap_client
from agentmeter.integrations.provider_meter import ModelCall, ProviderMeter

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "openai_wrapper.py"
ASK = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}]}


SERVE = """
import importlib.util, sys
from http.server import ThreadingHTTPServer
spec = importlib.util.spec_from_file_location("example", sys.argv[1])
example = importlib.util.module_from_spec(spec)
spec.loader.exec_module(example)

class KeepAlive(example.FakeOpenAI):
    protocol_version = "HTTP/1.1"  # its replies carry a Content-Length
    disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms wait

server = ThreadingHTTPServer(("127.0.0.1", 0), KeepAlive)
server.daemon_threads = True
print(server.server_address[1], flush=True)
server.serve_forever()
"""


def start_server() -> tuple[subprocess.Popen[str], str]:
    """The example's fake OpenAI in a process of its own (not competing for this one's GIL)."""
    process = subprocess.Popen(
        [sys.executable, "-c", SERVE, str(EXAMPLE)], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    port = int(process.stdout.readline())
    return process, f"http://127.0.0.1:{port}/v1"


class TimedMeter(ProviderMeter):
    """Bills as the wrapper's own meter does, and keeps how long each bill() took."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.taken: list[int] = []

    def bill(self, call: ModelCall) -> str | None:
        started = time.perf_counter_ns()
        try:
            return super().bill(call)
        finally:
            self.taken.append(time.perf_counter_ns() - started)


def percentile(samples: list[int], share: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))] / 1000


def timed_rounds(
    variants: dict[str, Callable[[], object]],
    rounds: int,
    per_round: int,
    tracker: AgentMeterTracker,
) -> tuple[dict[str, list[int]], int]:
    """Each variant's per-call times, and how many events the calls queued."""
    samples: dict[str, list[int]] = {name: [] for name in variants}
    queued = 0
    for _ in range(rounds):
        for name, call in variants.items():
            for _ in range(per_round):
                started = time.perf_counter_ns()
                call()
                samples[name].append(time.perf_counter_ns() - started)
            queued += len(tracker._queue.drain())  # untimed, as the worker would
    return samples, queued


def report(title: str, samples: dict[str, list[int]], baseline: str) -> None:
    p50s = {name: statistics.median(taken) / 1000 for name, taken in samples.items()}
    print(f"\n{title}")
    print(f"{'variant':34} {'p50 us':>9} {'p99 us':>9} {'+p50 us':>9}")
    for name, taken in samples.items():
        extra = p50s[name] - p50s[baseline]
        print(f"{name:34} {p50s[name]:9.2f} {percentile(taken, 0.99):9.2f} {extra:+9.2f}")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=4000, help="timed HTTP calls per variant")
    parser.add_argument("--local-calls", type=int, default=40_000, help="timed, no HTTP")
    parser.add_argument("--rounds", type=int, default=40)
    options = parser.parse_args()
    per_round = max(1, options.calls // options.rounds)
    local_per_round = max(1, options.local_calls // options.rounds)

    folder = Path(tempfile.mkdtemp())
    meter = AgentMeterClient(base_url=f"sqlite:///{folder / 'ledger.db'}", project_id="bench")
    size = (per_round + local_per_round) * options.rounds * 2 + 1000
    tracker = AgentMeterTracker(
        meter, auto_flush=False, batch_size=1000, max_queue_size=size, outbox=None
    )
    tracker._thread = threading.Thread()  # the worker never starts: nothing is sent while timed
    meter._tracker = tracker  # what wrap() bills through
    meter.price_book.current("bench")  # the project's table, as after a process's first minute

    server, base_url = start_server()
    try:
        return run(options, meter, tracker, base_url, per_round, local_per_round)
    finally:
        logging.getLogger("agentmeter").setLevel(logging.CRITICAL)  # the queue is dropped
        tracker.close(timeout=0)
        meter.close()
        server.terminate()
        server.wait()


def run(
    options: argparse.Namespace,
    meter: AgentMeterClient,
    tracker: AgentMeterTracker,
    base_url: str,
    per_round: int,
    local_per_round: int,
) -> int:
    bare = OpenAI(api_key="sk-bench", base_url=base_url, max_retries=0)
    wrapped = agentmeter.wrap(bare, meter, user_id="bench-user")
    completion = bare.chat.completions.create(**ASK)
    metered_stub = _sync_call(
        lambda **_: completion,
        ProviderMeter("openai", meter, user_id="bench-user"),
        ChatCompletion,
        Stream,
        _observe_chunk,
        True,
    )
    http_variants: dict[str, Callable[[], object]] = {
        "bare SDK": lambda: bare.chat.completions.create(**ASK),
        "wrapped": lambda: wrapped.chat.completions.create(**ASK),
    }
    local_variants: dict[str, Callable[[], object]] = {
        "SDK method stand-in": lambda: completion,
        "metered around the stand-in": lambda: metered_stub(**ASK),
    }
    for call in [*http_variants.values(), *local_variants.values()]:
        for _ in range(50):
            call()  # warm: imports, the catalog's first lookup, connections
    tracker._queue.drain()

    http, http_events = timed_rounds(http_variants, options.rounds, per_round, tracker)
    local, local_events = timed_rounds(local_variants, options.rounds, local_per_round, tracker)
    print(f"python {platform.python_version()} on {platform.platform()}")
    print(f"openai {sys.modules['openai'].__version__}, agentmeter {agentmeter.__version__}")
    print(f"{options.rounds} interleaved rounds")
    report(
        f"chat.completions.create over HTTP, {per_round * options.rounds} calls", http, "bare SDK"
    )
    report(
        f"the wrapper's own work, {local_per_round * options.rounds} calls",
        local,
        "SDK method stand-in",
    )
    # Where the time goes inside real calls: bill() (the payer, the event built,
    # priced and queued) runs with the caches cold from the HTTP call before it.
    timed = TimedMeter("openai", meter, user_id="bench-user")
    inside = wrap_client(bare, timed)
    for _ in range(per_round * 10):
        inside.chat.completions.create(**ASK)
    tracker._queue.drain()
    taken = timed.taken
    print(f"\nbill() inside {len(taken)} wrapped HTTP calls: ", end="")
    print(f"p50 {statistics.median(taken) / 1000:.2f} us, p99 {percentile(taken, 0.99):.2f} us")
    # Each metered call queued one event (the bare ones none), and none was dropped.
    print(f"events queued: {http_events} + {local_events}, dropped: {tracker.stats().dropped}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
