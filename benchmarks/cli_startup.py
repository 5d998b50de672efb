"""How long the ``agentmeter`` command takes to start: wall time, Python start-up included.

Times, each as a subprocess from start to exit (best and median of ``--repeat``
runs, default 9):

- ``python -c pass`` and ``python -c "import sqlalchemy"``: this machine's
  floors in the same run (the machine may be shared and noisy; compare the
  command's figures with these, not with another run's);
- ``agentmeter --help`` and ``agentmeter report --help``;
- ``agentmeter report --db sqlite:///... --project-id ... --format csv`` on a
  small ledger seeded first through the embedded client (``--events``, default
  2,000: three payment types, two agents, five users, two days).

    python benchmarks/cli_startup.py               # the figures in docs/benchmarks.md
    python benchmarks/cli_startup.py --repeat 21   # steadier on a busy machine
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path

PROJECT = "proj_startup"
START = datetime(2025, 3, 1, tzinfo=timezone.utc)
AGENTS = ("support-bot", "research-agent")
USERS = tuple(f"user-{n:02d}" for n in range(1, 6))


def seed(path: Path, count: int) -> None:
    """Record ``count`` events into a new ledger file through the embedded client."""
    from agentmeter import AgentMeterClient

    client = AgentMeterClient(project_id=PROJECT, base_url=f"sqlite:///{path}")
    try:
        batch = []
        for index in range(count):
            common = {
                "agent_id": AGENTS[index % 2],
                "user_id": USERS[index % 5],
                "metadata": {"model": "gpt-4o"},
            }
            if index % 3 == 0:
                event = client.build_api_request_pay(api_calls=2, unit_price="0.0025", **common)
            elif index % 3 == 1:
                event = client.build_token_based_pay(
                    tokens_in=300 + index % 97,
                    tokens_out=40 + index % 13,
                    input_token_price="0.0000025",
                    output_token_price="0.00001",
                    **common,
                )
            else:
                event = client.build_instant_pay(amount="0.05", description="top-up", **common)
            moment = START + timedelta(seconds=index * 86_400 * 2 // count)
            batch.append(event.model_copy(update={"timestamp": moment}))
        result = client.record_events(batch)
        if result.accepted != count:
            raise SystemExit(f"seeding stored {result.accepted} of {count} events")
    finally:
        client.close()


def wall_times(argv: Sequence[str], repeat: int, folder: str) -> list[float]:
    """Wall times of ``repeat`` runs, after one untimed run that writes the bytecode
    caches (as an installed package has them: PYTHONDONTWRITEBYTECODE is dropped)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("AGENTMETER_") and k != "PYTHONDONTWRITEBYTECODE"
    }
    runs = []
    for _ in range(repeat + 1):
        began = time.perf_counter()
        # cwd: `python -m` puts it first on sys.path, before PYTHONPATH
        done = subprocess.run(
            argv, capture_output=True, text=True, env=env, cwd=folder, check=False
        )
        runs.append(time.perf_counter() - began)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(argv)} failed: {done.stderr.strip()}")
    return runs[1:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--events", type=int, default=2_000)
    args = parser.parse_args()
    python = sys.executable
    cli = [python, "-m", "agentmeter.cli"]
    with tempfile.TemporaryDirectory() as folder:
        ledger = Path(folder) / "ledger.db"
        seed(ledger, args.events)
        cases = {
            "python -c pass": [python, "-c", "pass"],
            'python -c "import sqlalchemy"': [python, "-c", "import sqlalchemy"],
            "agentmeter --help": [*cli, "--help"],
            "agentmeter report --help": [*cli, "report", "--help"],
            f"agentmeter report --db ... --format csv ({args.events:,} events)": [
                *cli,
                "report",
                "--db",
                f"sqlite:///{ledger}",
                "--project-id",
                PROJECT,
                "--format",
                "csv",
            ],
        }
        import agentmeter

        print(f"Python {platform.python_version()} on {platform.platform()}, {os.cpu_count()} CPUs")
        print(f"agentmeter {agentmeter.__version__} from {Path(agentmeter.__file__).parent}")
        print(f"{'command':<58} {'best':>8} {'median':>8}   ({args.repeat} runs)")
        for name, argv in cases.items():
            runs = wall_times(argv, args.repeat, folder)
            best, median = min(runs) * 1000, statistics.median(runs) * 1000
            print(f"{name:<58} {best:>6.0f} ms {median:>6.0f} ms")


if __name__ == "__main__":
    main()
