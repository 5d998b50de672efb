"""``examples/openai_wrapper.py`` runs offline, as a user would run it, and bills what it says."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

from agentmeter.core.catalog import model_prices

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "openai_wrapper.py"


def test_the_openai_example_bills_its_two_calls_to_alice(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AGENTMETER_", "OPENAI_"))}
    env["HOME"] = str(tmp_path)  # the client's default outbox goes under ~/.agentmeter
    done = subprocess.run(
        [sys.executable, str(EXAMPLE)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=tmp_path,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # no warning: nothing rejected, nothing unpriced
    lines = done.stdout.splitlines()
    assert lines[:2] == ["reply:    Metered and billed.", "streamed: Metered and billed."]
    found = re.fullmatch(r"alice was billed (\S+) USD for 2 calls, 3000 tokens", lines[2])
    assert found, lines
    p = model_prices("gpt-4o-mini-2024-07-18")
    assert Decimal(found.group(1)) == 2 * (1200 * p.input + 300 * p.output)
