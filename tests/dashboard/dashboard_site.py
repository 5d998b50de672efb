"""A dashboard over a real SQLite ledger, driven through Starlette's TestClient.

Events go in through the wire API (``POST /api/meter/events/batch``), so the
pages read exactly what a client would have recorded.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from agentmeter.ledger import Ledger
from agentmeter.server import create_app

ADMIN_KEY = "am_admin_dashboard-tests-0123456789"
XSS_USER = "<img src=x onerror=alert(1)>"


@dataclass
class Site:
    ledger: Ledger
    client: TestClient
    keys: dict[str, str]  # project id -> its key

    def sign_in(self, key: str) -> Any:
        return self.client.post(
            "/dashboard/sign-in", data={"key": key}, headers={"Origin": self.origin}
        )

    @property
    def origin(self) -> str:
        return str(self.client.base_url).rstrip("/")

    def post(self, path: str, data: dict[str, str], **params: str) -> Any:
        return self.client.post(path, params=params, data=data, headers={"Origin": self.origin})

    def csrf(self, html: str) -> str:
        found = re.search(r'name="csrf" value="([^"]+)"', html)
        assert found, "the page has no CSRF token"
        return found.group(1)


def events_of(project: str) -> list[dict[str, Any]]:
    now = datetime.now(timezone.utc)

    def at(hours: float) -> str:
        return (now - timedelta(hours=hours)).isoformat()

    return [
        _event(project, "e1", "alice", "support", at(1), (1200, 300), "gpt-4o"),
        _event(project, "e2", "alice", "support", at(30), (500, 100), "gpt-4o"),
        _event(project, "e3", "bob", "research", at(50), (9000, 1000), "claude-sonnet-4"),
        _event(project, "e4", XSS_USER, "<b>agent</b>", at(3), (10, 10), "gpt-4o-mini"),
        {
            "id": "e5", "project_id": project, "user_id": "carol", "agent_id": "billing",
            "payment_type": "api_request_pay", "event_type": "api_call", "timestamp": at(5),
            "api_calls": 3, "unit_price": "0.0125",
        },
        {
            "id": "e6", "project_id": project, "user_id": "bob", "agent_id": "research",
            "payment_type": "instant_pay", "event_type": "instant_payment",
            "timestamp": at(24 * 40),
            "amount": "4.50", "description": "old report",
        },
    ]  # fmt: skip


def _event(
    project: str,
    event_id: str,
    user: str,
    agent: str,
    when: str,
    tokens: tuple[int, int],
    model: str,
) -> dict[str, Any]:
    return {
        "id": event_id,
        "project_id": project,
        "user_id": user,
        "agent_id": agent,
        "payment_type": "token_based_pay",
        "event_type": "token_usage",
        "timestamp": when,
        "tokens_in": tokens[0],
        "tokens_out": tokens[1],
        "input_token_price": "0.0000025",
        "output_token_price": "0.00001",
        "model": model,
    }


def start_site(tmp_path: Path) -> Iterator[Site]:
    ledger = Ledger.open(f"sqlite:///{tmp_path / 'ledger.db'}")
    keys = {}
    for project in ("shop", "other"):
        _, keys[project] = ledger.create_project(project.title(), None, project)
    app = create_app(ledger, admin_key=ADMIN_KEY)
    with TestClient(app, follow_redirects=False) as client:
        for project, key in keys.items():
            answer = client.post(
                "/api/meter/events/batch",
                json={"events": events_of(project)},
                headers={"Authorization": f"Bearer {key}"},
            )
            assert answer.status_code == 200, answer.text
            assert answer.json()["accepted"] == 6
        yield Site(ledger, client, keys)
    ledger.close()
