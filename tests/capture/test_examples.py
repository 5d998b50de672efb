"""The examples run as users run them: a fresh HOME, no key, no URL, the
embedded default ledger ~/.agentmeter/ledger.db. Each must exit 0 and leave
exactly the events and costs it claims in that ledger, with nothing left
undelivered in the outbox."""

from __future__ import annotations

import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from agentmeter import AgentMeterClient, Outbox
from agentmeter.config import ENVIRONMENT

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

EXPECTED = {
    # The README's quick start: three payment types and a budget, no server.
    "quickstart.py": {
        "project": "quickstart",
        "users": {
            # 3 API calls at 0.02; 1000 tokens in at 0.000004 and 500 out at 0.000012
            "alice": (2, Decimal("0.07")),
            "bob": (1, Decimal("4.99")),  # the PDF report
        },
        "total": Decimal("5.06"),
        "output": ["alice: used 0.070000 of 10.00", "24 hours: 3 events", "total cost 5.06"],
    },
    "basic_usage.py": {
        "project": "basic-usage",
        "users": {
            # 2 searches x 0.02; 1500 tokens of chat; a block of 3 calls; a block of tokens
            "alice": (5, Decimal("0.1216")),
            # premium export 4.99; 1000 tokens of summary; an onboarding block of 1.50
            "bob": (3, Decimal("6.4954")),
            # threshold 0.05, calls of 0.02: two run, the third is refused
            "carol": (2, Decimal("0.04")),
            # two metered methods of ResearchAgent at 0.01; _lookup is private
            "dave": (2, Decimal("0.02")),
        },
        "total": Decimal("6.677"),
        "output": ["carol refused 'gamma'", "total: 12 events, 6.677"],
    },
    "ecommerce_integration.py": {
        "project": "shop-demo",
        "users": {
            # 2 searches, 1 review (162 in, 25 out), premium support 9.99, a 2-item wrap block
            "ana": (5, Decimal("10.1537")),
            # 3 reviews until the 0.05 allowance is spent, 1 search; basic support is free
            "ben": (4, Decimal("0.1221")),
        },
        "total": Decimal("10.2758"),
        "output": ["ben: review analysis refused", "total"],
    },
}


def run_example(name: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if key not in ENVIRONMENT}
    env["HOME"] = str(home)
    return subprocess.run(
        [sys.executable, str(EXAMPLES / name)],
        cwd=home,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("name", list(EXPECTED))
def test_example_runs_and_bills_what_it_says(name, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    expected = EXPECTED[name]

    result = run_example(name, home)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "embedded ledger file" in result.stderr  # the one warning naming the file
    assert "Traceback" not in result.stderr
    for text in expected["output"]:
        assert text in result.stdout
    ledger_file = home / ".agentmeter" / "ledger.db"
    assert ledger_file.exists()
    with AgentMeterClient(
        base_url=f"sqlite:///{ledger_file}", project_id=expected["project"]
    ) as ledger:
        for user, (count, usage) in expected["users"].items():
            events = ledger.get_events(user_id=user)
            assert len(events) == count, (user, events)
            assert sum(event.total_cost for event in events) == usage
            assert ledger.get_user_meter(user_id=user).current_usage == usage
        stats = ledger.get_meter_stats(timeframe="all")
        assert stats.total_cost == expected["total"]
        assert stats.total_events == sum(count for count, _ in expected["users"].values())
    for outbox_file in (home / ".agentmeter").glob("outbox*.db"):
        outbox = Outbox(outbox_file)
        try:
            assert outbox.pending() == 0  # flushed before exit: nothing left behind
        finally:
            outbox.close()
