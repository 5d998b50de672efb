"""The provider wrappers' suite: a real ledger, and a small HTTP server for fakes.

- ``meter``: an :class:`AgentMeterClient` on a fresh embedded ledger file,
  with no outbox (nothing outlives the test).
- ``billed(meter)``: flush, then every stored event, oldest first.
- ``FakeServer``: a ``ThreadingHTTPServer`` on 127.0.0.1 and a free port;
  a test gives it a handler function ``(method, path, headers, body) -> Reply``
  and points the real provider SDK at ``server.url``. Replies may be JSON or a
  list of server-sent events (written and flushed one by one).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from agentmeter import AgentMeterClient
from agentmeter.models import MeterEvent


@dataclass
class Reply:
    """What the fake answers: ``body`` (JSON-encoded unless bytes), or ``events``
    sent as ``text/event-stream`` (each a ``(event name or None, data)`` pair,
    data JSON-encoded unless it is a str), or raw ``chunks`` of bytes."""

    status: int = 200
    body: Any = None
    events: list[tuple[str | None, Any]] | None = None
    chunks: list[bytes] | None = None
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[[str, str, dict[str, str], Any], Reply]


class _QuietServer(ThreadingHTTPServer):
    request_queue_size = 128  # 200 concurrent calls must not be reset at connect

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that left mid-stream (an abandoned stream, by design): not news."""


class FakeServer:
    """A provider's HTTP API, faked on 127.0.0.1 for one test."""

    def __init__(self, handle: Handler) -> None:
        self.handle = handle
        self.requests: list[tuple[str, str, Any]] = []
        server = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = raw
                server.requests.append((self.command, self.path, body))
                reply = server.handle(self.command, self.path, dict(self.headers), body)
                _write(self, reply)

            do_GET = do_POST = do_PUT = do_DELETE = _serve

        self._httpd = _QuietServer(("127.0.0.1", 0), _Handler)
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


def _write(handler: BaseHTTPRequestHandler, reply: Reply) -> None:
    if reply.events is not None:
        handler.send_response(reply.status)
        handler.send_header("Content-Type", "text/event-stream")
        handler.send_header("Transfer-Encoding", "chunked")
        for name, value in reply.headers.items():
            handler.send_header(name, value)
        handler.end_headers()
        for event, data in reply.events:
            text = data if isinstance(data, str) else json.dumps(data)
            frame = (f"event: {event}\n" if event else "") + f"data: {text}\n\n"
            _chunk(handler, frame.encode())
        _chunk(handler, b"")
        return
    if reply.chunks is not None:
        handler.send_response(reply.status)
        handler.send_header("Transfer-Encoding", "chunked")
        for name, value in reply.headers.items():
            handler.send_header(name, value)
        handler.end_headers()
        for piece in reply.chunks:
            _chunk(handler, piece)
        _chunk(handler, b"")
        return
    payload = reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode()
    handler.send_response(reply.status)
    handler.send_header("Content-Type", reply.headers.get("Content-Type", "application/json"))
    handler.send_header("Content-Length", str(len(payload)))
    for name, value in reply.headers.items():
        if name != "Content-Type":
            handler.send_header(name, value)
    handler.end_headers()
    handler.wfile.write(payload)


def _chunk(handler: BaseHTTPRequestHandler, data: bytes) -> None:
    handler.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
    handler.wfile.flush()


@pytest.fixture
def fake_server() -> Iterator[Callable[[Handler], FakeServer]]:
    """``fake_server(handle)`` starts a fake; all are stopped after the test."""
    started: list[FakeServer] = []

    def start(handle: Handler) -> FakeServer:
        server = FakeServer(handle)
        started.append(server)
        return server

    yield start
    for server in started:
        server.close()


@pytest.fixture
def meter(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[AgentMeterClient]:
    """A client on a fresh embedded ledger (no outbox), closed after the test."""
    for name in ("AGENTMETER_API_KEY", "AGENTMETER_BASE_URL", "AGENTMETER_PROJECT_ID"):
        monkeypatch.delenv(name, raising=False)
    client = AgentMeterClient(base_url=f"sqlite:///{tmp_path / 'ledger.db'}", project_id="wrap")
    client._tracker = None  # made on first use, below, without an outbox
    from agentmeter import AgentMeterTracker

    client._tracker = AgentMeterTracker(client, outbox=None)
    yield client
    client.close()


def billed(meter: AgentMeterClient) -> list[MeterEvent]:
    """Everything the wrapper billed so far, oldest first."""
    assert meter.flush(timeout=30)
    return list(reversed(meter.get_events(limit=1000)))


@pytest.fixture
def events() -> Callable[[AgentMeterClient], list[MeterEvent]]:
    return billed
