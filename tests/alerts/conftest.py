"""Live servers whose webhook sender retries fast, a receiver, and a wire helper."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from agentmeter.testing import LiveServer

from .receiver import Receiver

FAST_RETRIES = {
    "AGENTMETER_WEBHOOK_RETRY_BASE": "0.2",
    "AGENTMETER_WEBHOOK_POLL": "0.05",
    "AGENTMETER_WEBHOOK_LEASE": "3",
    "AGENTMETER_WEBHOOK_TIMEOUT": "2",
}


@dataclass
class Wire:
    """The wire API with one key, through plain HTTP."""

    url: str
    key: str

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        answer = requests.request(
            method, self.url + path, headers={"Authorization": f"Bearer {self.key}"},
            timeout=10, **kwargs,
        )  # fmt: skip
        assert answer.status_code < 300, answer.text
        return answer.json()

    def charge(self, user: str, amount: str, event_id: str) -> None:
        self.call("POST", "/api/meter/event", json={
            "id": event_id, "project_id": "p", "user_id": user, "agent_id": "a",
            "payment_type": "instant_pay", "event_type": "instant_payment", "amount": amount,
        })  # fmt: skip

    def subscribe(self, receiver: Receiver, *types: str) -> dict[str, Any]:
        body = {"project_id": "p", "url": receiver.url, "event_types": list(types)}
        return self.call("POST", "/api/webhooks", json=body)  # type: ignore[no-any-return]

    def set_threshold(self, user: str, amount: str) -> None:
        body = {"project_id": "p", "user_id": user, "threshold_amount": amount}
        self.call("PUT", "/api/meter", json=body)


@pytest.fixture
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in FAST_RETRIES.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'ledger.db'}"


@pytest.fixture
def server(fast_retries: None, db_url: str) -> Iterator[LiveServer]:
    with LiveServer(db_url) as live:
        yield live


@pytest.fixture
def wire(server: LiveServer) -> Wire:
    admin = Wire(server.url, server.admin_key)
    key = admin.call("POST", "/projects", json={"name": "P", "id": "p"})["api_key"]
    return Wire(server.url, key)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    started = Receiver().start()
    yield started
    started.stop()
