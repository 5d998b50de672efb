"""examples/langchain_integration.py runs offline on a fresh machine and bills what it says."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from agentmeter import AgentMeterClient
from agentmeter.config import ENVIRONMENT
from agentmeter.core.catalog import model_prices

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "langchain_integration.py"


def _run(home: Path) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if key not in ENVIRONMENT}
    env["HOME"] = str(home)
    return subprocess.run(
        [sys.executable, str(EXAMPLE)],
        env=env,
        cwd=home,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_example_bills_the_embedded_ledger(tmp_path):
    done = _run(tmp_path)
    assert done.returncode == 0, done.stderr
    ledger = tmp_path / ".agentmeter" / "ledger.db"
    assert ledger.exists()
    assert "embedded ledger" in done.stderr  # the one warning naming the file
    assert str(ledger) in done.stderr

    listed = model_prices("gpt-4o-mini")
    assert listed is not None
    price_in, price_out = listed.input, listed.output
    with AgentMeterClient(base_url=f"sqlite:///{ledger}", project_id="langchain-example") as c:
        billed = sorted((e.user_id, e.tokens_in, e.tokens_out) for e in c.get_events())
        assert billed == [("alice", 1200, 80), ("alice", 3000, 250), ("bob", 900, 45)]
        for event in c.get_events():
            assert event.agent_id == "support-bot"
            assert event.metadata["model"] == "gpt-4o-mini-2024-07-18"
            assert event.total_cost == event.tokens_in * price_in + event.tokens_out * price_out
        alice = c.get_user_meter("alice").current_usage
        bob = c.get_user_meter("bob").current_usage
    assert alice == 4200 * price_in + 330 * price_out
    assert bob == 900 * price_in + 45 * price_out
    # It prints what it billed.
    assert f"alice: billed {alice} in this run" in done.stdout
    assert f"bob: billed {bob} in this run" in done.stdout
    assert done.stdout.count(" in + ") == 3


def test_a_second_run_adds_to_the_same_ledger(tmp_path):
    assert _run(tmp_path).returncode == 0
    again = _run(tmp_path)
    assert again.returncode == 0, again.stderr
    ledger = tmp_path / ".agentmeter" / "ledger.db"
    with AgentMeterClient(base_url=f"sqlite:///{ledger}", project_id="langchain-example") as c:
        assert len(c.get_events()) == 6
