"""A real Chromium (Debian's package) driven by Playwright against a real ``agentmeter serve``.

Without Chromium or Playwright these tests skip, unless
``AGENTMETER_REQUIRE_BROWSER=1`` (set by ``.ci/run``) makes that a failure.
Screenshots of every page go to ``$AGENTMETER_SCREENSHOTS``
(default: ``build/screenshots`` in the repository).
"""

from __future__ import annotations

import os
import random
import shutil
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from agentmeter.testing import LiveServer

XSS_USER = "<img src=x onerror=alert(1)>"
REPO = Path(__file__).resolve().parents[2]


def _require(reason: str) -> None:
    if os.environ.get("AGENTMETER_REQUIRE_BROWSER") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def chromium_path() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        _require("no chromium on PATH (apt-get install -y chromium)")
    assert path is not None
    return path


@pytest.fixture(scope="module")
def browser(chromium_path: str) -> Iterator[Any]:
    """Module-scoped: Playwright's sync API runs an event loop in this thread
    until it stops, and tests after these ones call ``asyncio.run``."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _require("playwright is not installed (pip install -e '.[dev]')")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=chromium_path, headless=True, args=["--no-sandbox"]
        )
        yield launched
        launched.close()


@pytest.fixture(scope="session")
def screenshots() -> Path:
    folder = Path(os.environ.get("AGENTMETER_SCREENSHOTS", REPO / "build" / "screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    path = tmp_path_factory.mktemp("browser") / "ledger.db"
    with LiveServer(f"sqlite:///{path}") as live:
        yield live


@pytest.fixture(scope="session")
def projects(server: LiveServer) -> dict[str, str]:
    """Two projects with a month of events; project id -> its key."""
    keys = {}
    with server.client(retry_attempts=0) as admin:
        for project in ("shop", "other"):
            created = admin.create_project(project.title(), project_id=project)
            assert created.api_key is not None
            keys[project] = created.api_key.get_secret_value()
    for project, key in keys.items():
        with server.client(key, retry_attempts=0) as client:
            result = client.send_batch(month_of_events(project))
            assert not result.rejected, result.rejected
    return keys


def month_of_events(project: str) -> list[dict[str, Any]]:
    """About 300 events over 30 days, from a handful of users, agents and models."""
    rng = random.Random(project)
    now = datetime.now(timezone.utc)
    users = ["alice", "bob", "carol", "dave", XSS_USER]
    agents = ["support", "research", "<b>agent</b>"]
    models = [("gpt-4o", "0.0000025", "0.00001"), ("claude-sonnet-4", "0.000003", "0.000015")]
    events = []
    for index in range(300):
        model, input_price, output_price = rng.choice(models)
        events.append({
            "id": f"{project}-{index}", "project_id": project, "user_id": rng.choice(users),
            "agent_id": rng.choice(agents), "payment_type": "token_based_pay",
            "event_type": "token_usage", "model": model,
            "timestamp": (now - timedelta(hours=rng.uniform(0.5, 29 * 24))).isoformat(),
            "tokens_in": rng.randint(100, 20_000), "tokens_out": rng.randint(10, 4_000),
            "input_token_price": input_price, "output_token_price": output_price,
        })  # fmt: skip
    events.append({
        "id": f"{project}-charge", "project_id": project, "user_id": "alice",
        "agent_id": "support", "payment_type": "instant_pay", "event_type": "instant_payment",
        "timestamp": (now - timedelta(hours=2)).isoformat(), "amount": str(Decimal("4.50")),
        "description": "premium report",
    })  # fmt: skip
    return events
