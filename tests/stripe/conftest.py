"""A small fake of Stripe's API on 127.0.0.1, and a ledger with usage to sync.

``fake_stripe`` answers ``POST /v1/billing/meter_events`` as Stripe does
(form-encoded in, a ``billing.meter_event`` JSON object out, a
``Request-Id`` header) and records every request it gets, headers and
parsed form included. ``fake_stripe.fail(status, times, should_retry)``
makes the next ``times`` requests fail with ``status`` (``times=None``:
all of them). The real ``stripe`` package talks to it through
``AGENTMETER_STRIPE_API_BASE``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import pytest
from click.testing import CliRunner, Result

from agentmeter.cli.app import cli
from agentmeter.ledger import Ledger

STRIPE_KEY = "sk_test_51Fake" + "Q9x" * 10  # long and distinctive: easy to find if it leaked


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    form: dict[str, str]


@dataclass
class Failure:
    status: int
    times: int | None  # None: every request
    should_retry: bool | None


@dataclass
class FakeStripe:
    url: str = ""
    requests: list[Received] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def fail(self, status: int, times: int | None = 1, should_retry: bool | None = None) -> None:
        self.failures.append(Failure(status, times, should_retry))

    @property
    def forms(self) -> list[dict[str, str]]:
        return [request.form for request in self.requests]

    def next_failure(self) -> Failure | None:
        with self.lock:
            if not self.failures:
                return None
            failure = self.failures[0]
            if failure.times is not None:
                failure.times -= 1
                if failure.times == 0:
                    self.failures.pop(0)
            return failure


def _handler(fake: FakeStripe) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode()
            form = dict(parse_qsl(body, keep_blank_values=True))
            received = Received("POST", self.path, dict(self.headers.items()), form)
            with fake.lock:
                fake.requests.append(received)
                number = len(fake.requests)
            failure = fake.next_failure()
            if self.path != "/v1/billing/meter_events":
                self._answer(404, {"error": {"type": "invalid_request_error", "message": "no"}})
            elif failure is not None:
                headers = {}
                if failure.should_retry is not None:
                    headers["Stripe-Should-Retry"] = str(failure.should_retry).lower()
                kind = "api_error" if failure.status >= 500 else "invalid_request_error"
                message = {401: "Invalid API Key provided: sk_test_****Q9x"}.get(
                    failure.status, f"fake failure {failure.status}"
                )
                error = {"type": kind, "message": message}
                if failure.status == 429:
                    error["code"] = "rate_limit"
                self._answer(failure.status, {"error": error}, headers, number)
            else:
                self._answer(200, _meter_event(form), {}, number)

        def _answer(
            self, status: int, document: Any, headers: dict[str, str] | None = None, n: int = 0
        ) -> None:
            body = json.dumps(document).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Request-Id", f"req_fake{n:04d}")
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


def _meter_event(form: dict[str, str]) -> dict[str, Any]:
    return {
        "object": "billing.meter_event",
        "created": 1704824589,
        "event_name": form.get("event_name"),
        "identifier": form.get("identifier"),
        "livemode": False,
        "payload": {
            "stripe_customer_id": form.get("payload[stripe_customer_id]"),
            "value": form.get("payload[value]"),
        },
        "timestamp": int(form.get("timestamp", "0")),
    }


@pytest.fixture
def fake_stripe(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeStripe]:
    fake = FakeStripe()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("AGENTMETER_STRIPE_API_BASE", fake.url)
    monkeypatch.setenv("STRIPE_API_KEY", STRIPE_KEY)
    yield fake
    server.shutdown()
    server.server_close()


@pytest.fixture
def today() -> datetime:
    """Midnight UTC today: usage is put on the days before, all closed and recent."""
    return datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)


def day(moment: datetime) -> str:
    return moment.date().isoformat()


@pytest.fixture
def ledger_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    Ledger.open(url).close()
    return url


@pytest.fixture(params=["sqlite", "postgres"])
def any_ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh ledger on a SQLite file, and one on PostgreSQL."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'ledger.db'}"
    else:
        url = request.getfixturevalue("postgres_databases")("stripe")
    Ledger.open(url).close()
    return url


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), env=env, prog_name="agentmeter")


def days_before(today: datetime, count: int) -> datetime:
    return today - timedelta(days=count)
