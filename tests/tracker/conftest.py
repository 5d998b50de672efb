"""The tracker suite's parts: one real server, a fault-injecting proxy in front
of it, and a workload whose exact totals are known.

- ``live_server``: ONE ``agentmeter serve`` (SQLite file) for the session.
- ``FaultProxy``: a threaded HTTP/1.1 proxy on 127.0.0.1. It parses each
  request (keep-alive, ``Content-Length`` bodies) and asks a ``decide``
  function what to do with it: pass it on, answer 500 or 429 itself, pass it
  on and answer 500 anyway, reset the connection half-way through or after
  the server answered, hold the server's answer past the client's read
  timeout, or stop listening altogether (``down()`` / ``up()``). It records
  the event ids of every request it saw.
- ``Workload``: events of the three payment types tracked from many threads;
  it keeps the ids the track calls returned and the exact Decimal totals,
  overall and per user, that the server must end up holding.

Test modules take these as fixtures (``live_server``, ``project``,
``proxy_factory``, ``make_tracker``, and ``kit`` for the helpers); with
several conftest.py files under tests/, importing this one by name would be
ambiguous.
"""

from __future__ import annotations

import contextlib
import json
import random
import socket
import struct
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from agentmeter import AgentMeterClient
from agentmeter.testing import LiveServer
from agentmeter.tracker import AgentMeterTracker

# --------------------------------------------------------------------- server


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The one ``agentmeter serve`` the tracker tests share (each in its own project)."""
    path = tmp_path_factory.mktemp("tracker-live") / "ledger.db"
    with LiveServer(f"sqlite:///{path}") as server:
        yield server


@pytest.fixture(scope="session")
def admin(live_server: LiveServer) -> Iterator[AgentMeterClient]:
    with live_server.client(retry_attempts=0, timeout=60) as client:
        yield client


@dataclass
class ProjectHandle:
    """A fresh project: its id and key, and a client that talks to the server directly."""

    id: str
    key: str
    direct: AgentMeterClient

    def client(self, url: str, **settings: Any) -> AgentMeterClient:
        """A client of this project at ``url`` (the proxy's, usually)."""
        settings.setdefault("project_id", self.id)
        return AgentMeterClient(api_key=self.key, base_url=url, **settings)


@pytest.fixture
def project(live_server: LiveServer, admin: AgentMeterClient) -> Iterator[ProjectHandle]:
    made = admin.create_project(f"tracker {uuid.uuid4().hex[:8]}")
    assert made.api_key is not None
    key = made.api_key.get_secret_value()
    with live_server.client(key, project_id=made.id, retry_attempts=2, timeout=60) as direct:
        yield ProjectHandle(made.id, key, direct)


# ---------------------------------------------------------------------- proxy


@dataclass
class ProxiedRequest:
    index: int  # 0-based, in arrival order over the proxy's life
    method: str
    path: str
    ids: list[str]
    action: str = ""  # what the proxy did with it


# What a decide function may answer.
PASS = "pass"
ANSWER_500 = "500"  # answer 500 without forwarding
FORWARD_THEN_500 = "forward-500"  # the server stored it; the client hears 500
ANSWER_429 = "429"  # rate limited, with Retry-After
ANSWER_404 = "404"  # "no such endpoint", as a server without the batch endpoint says
RESET_PARTIAL = "reset-partial"  # forward part of the body, then reset both sides
RESET_AFTER_STORE = "reset-after"  # forward all, wait for the server's answer, reset
CLOSE_AFTER_STORE = "close-after"  # same, but a clean FIN instead of a reset
DELAY = "delay"  # forward all, hold the server's answer past the client's timeout

Decide = Callable[[ProxiedRequest], str]


def _abort(sock: socket.socket | None) -> None:
    """Close with a TCP reset (SO_LINGER 0)."""
    if sock is None:
        return
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    _close(sock)


def _close(sock: socket.socket | None) -> None:
    if sock is None:
        return
    with contextlib.suppress(OSError):
        sock.close()


class _Reader:
    """Reads HTTP/1.1 messages off a socket (Content-Length or chunked bodies)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""

    def _fill(self) -> bool:
        chunk = self.sock.recv(65536)
        if not chunk:
            return False
        self.buffer += chunk
        return True

    def _until(self, marker: bytes) -> bytes | None:
        while marker not in self.buffer:
            if not self._fill():
                return None
        head, _, self.buffer = self.buffer.partition(marker)
        return head + marker

    def _exactly(self, size: int) -> bytes | None:
        while len(self.buffer) < size:
            if not self._fill():
                return None
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data

    def message(self, response: bool = False) -> tuple[bytes, dict[str, str], bytes] | None:
        """(head, lower-cased headers, body), or None when the peer closed."""
        head = self._until(b"\r\n\r\n")
        if head is None:
            return None
        lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        if headers.get("transfer-encoding", "").lower() == "chunked":
            body = b""
            while True:
                size_line = self._until(b"\r\n")
                if size_line is None:
                    return None
                size = int(size_line.split(b";")[0].strip(), 16)
                data = self._exactly(size + 2)
                if data is None:
                    return None
                if size == 0:
                    break
                body += data[:-2]
            # Re-frame as Content-Length for the other side.
            kept = [line for line in lines[:-2] if not line.lower().startswith("transfer-")]
            kept.append(f"content-length: {len(body)}")
            head = ("\r\n".join(kept) + "\r\n\r\n").encode("latin-1")
            return head, headers, body
        size = int(headers.get("content-length", "0"))
        if response and lines[0].split(" ")[1] in ("204", "304"):
            size = 0
        body = self._exactly(size) if size else b""
        if body is None:
            return None
        return head, headers, body


def _answer(status: int, reason: str, extra: str = "") -> bytes:
    body = json.dumps({"error": {"code": "injected", "message": f"injected {status}"}}).encode()
    return (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\n{extra}\r\n"
    ).encode("latin-1") + body


def _ids_of(path: str, body: bytes) -> list[str]:
    if not body or "/api/meter/event" not in path:
        return []
    try:
        payload = json.loads(body)
    except ValueError:
        return []
    if isinstance(payload, dict) and isinstance(payload.get("events"), list):
        return [event.get("id") for event in payload["events"] if isinstance(event, dict)]
    if isinstance(payload, dict) and "id" in payload:
        return [payload["id"]]
    return []


class FaultProxy:
    """An HTTP/1.1 proxy to ``upstream`` that injects the faults ``decide`` asks for."""

    def __init__(
        self,
        upstream_port: int,
        decide: Decide | None = None,
        *,
        delay: float = 2.0,
        retry_after: str = "1",
    ) -> None:
        self.upstream = ("127.0.0.1", upstream_port)
        self.decide: Decide = decide or (lambda request: PASS)
        self.delay = delay
        self.retry_after = retry_after
        self.port = 0
        self.requests: list[ProxiedRequest] = []
        self.actions: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._accepting: threading.Thread | None = None
        self._sockets: set[socket.socket] = set()
        self._stopped = threading.Event()
        self._listening = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -------------------------------------------------------------- control

    def start(self) -> FaultProxy:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        listener.settimeout(0.05)
        self.port = listener.getsockname()[1]
        self._listener = listener
        self._stopped.clear()
        self._listening.set()
        self._accepting = threading.Thread(
            target=self._accept_loop, args=(listener,), name="fault-proxy", daemon=True
        )
        self._accepting.start()
        return self

    def down(self) -> None:
        """The server goes away: nothing listens on the port (connection refused),
        and every open connection is reset."""
        self._listening.clear()
        if self._accepting is not None:
            self._accepting.join(5)
        _close(self._listener)
        self._listener = None
        with self._lock:
            open_sockets, self._sockets = list(self._sockets), set()
        for sock in open_sockets:
            _abort(sock)

    def up(self) -> None:
        """Listen again, on the same port."""
        self.start()

    def stop(self) -> None:
        self._stopped.set()
        self.down()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # ----------------------------------------------------------- recording

    def ids_seen(self) -> Counter[str]:
        """How many requests carried each event id."""
        with self._lock:
            return Counter(event_id for request in self.requests for event_id in request.ids)

    # -------------------------------------------------------------- serving

    def _accept_loop(self, listener: socket.socket) -> None:
        while self._listening.is_set():
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            with self._lock:
                self._sockets.add(client)
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _connect_upstream(self) -> socket.socket:
        upstream = socket.create_connection(self.upstream, timeout=30)
        with self._lock:
            self._sockets.add(upstream)
        return upstream

    def _serve(self, client: socket.socket) -> None:
        upstream: socket.socket | None = None
        upstream_reader: _Reader | None = None
        reader = _Reader(client)
        try:
            while True:
                message = reader.message()
                if message is None:
                    return
                head, _, body = message
                request_line = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ")
                method, path = request_line[0], request_line[1].split("?")[0]
                with self._lock:
                    request = ProxiedRequest(len(self.requests), method, path, _ids_of(path, body))
                    self.requests.append(request)
                    action = request.action = self.decide(request)
                    self.actions[action] += 1
                if action == ANSWER_500:
                    client.sendall(_answer(500, "Internal Server Error"))
                    continue
                if action == ANSWER_404:
                    client.sendall(_answer(404, "Not Found"))
                    continue
                if action == ANSWER_429:
                    client.sendall(
                        _answer(429, "Too Many Requests", f"retry-after: {self.retry_after}\r\n")
                    )
                    continue
                if upstream is None:
                    upstream = self._connect_upstream()
                    upstream_reader = _Reader(upstream)
                assert upstream_reader is not None
                if action == RESET_PARTIAL:
                    cut = len(body) // 2 if body else len(head) // 2
                    upstream.sendall((head + body)[: len(head) + cut] if body else head[:cut])
                    return  # finally: both sides reset
                upstream.sendall(head + body)
                answer = upstream_reader.message(response=True)
                if answer is None:
                    return
                response = answer[0] + answer[2]
                if action == PASS:
                    client.sendall(response)
                elif action == FORWARD_THEN_500:
                    client.sendall(_answer(500, "Internal Server Error"))
                elif action == RESET_AFTER_STORE:
                    return
                elif action == CLOSE_AFTER_STORE:
                    _close(client)
                    return
                elif action == DELAY:
                    # The server stored it; the client gives up waiting first.
                    if self._stopped.wait(self.delay):
                        return
                    with contextlib.suppress(OSError):
                        client.sendall(response)
                    return
                else:  # pragma: no cover - a typo in a test
                    raise AssertionError(f"unknown action {action!r}")
                if answer[1].get("connection", "").lower() == "close":
                    return
        except OSError:
            return
        finally:
            _abort(client)
            _abort(upstream)
            with self._lock:
                self._sockets.discard(client)
                if upstream is not None:
                    self._sockets.discard(upstream)


@pytest.fixture
def proxy_factory(live_server: LiveServer) -> Iterator[Callable[..., FaultProxy]]:
    """``proxy_factory(decide, **options)``: a started FaultProxy in front of the server."""
    made: list[FaultProxy] = []

    def make(decide: Decide | None = None, **options: Any) -> FaultProxy:
        proxy = FaultProxy(live_server.port, decide, **options).start()
        made.append(proxy)
        return proxy

    yield make
    for proxy in made:
        proxy.stop()


def seeded(decide: Callable[[ProxiedRequest, random.Random], str], seed: int) -> Decide:
    """A decide function with its own seeded random (called under the proxy's lock)."""
    rng = random.Random(seed)
    return lambda request: decide(request, rng)


# -------------------------------------------------------------------- tracker


@pytest.fixture
def make_tracker(tmp_path: Path) -> Iterator[Callable[..., AgentMeterTracker]]:
    """Trackers with a per-test outbox under tmp_path; all closed at teardown."""
    made: list[AgentMeterTracker] = []

    def make(client: AgentMeterClient, **options: Any) -> AgentMeterTracker:
        options.setdefault("outbox", tmp_path / "outbox.db")
        options.setdefault("flush_interval", 0.1)
        options.setdefault("replay_interval", 0.2)
        options.setdefault("agent_id", "tracker-test")
        tracker = AgentMeterTracker(client, **options)
        made.append(tracker)
        return tracker

    yield make
    for tracker in made:
        tracker.close(timeout=1)
        if tracker.outbox is not None:
            tracker.outbox.close()
    for tracker in made:
        tracker.client.close(timeout=0)


def fault_client(project: ProjectHandle, url: str, **settings: Any) -> AgentMeterClient:
    """A client with a short retry budget, as the fault tests use."""
    settings.setdefault("retry_attempts", 3)
    settings.setdefault("retry_deadline", 3.0)
    settings.setdefault("max_retry_wait", 0.5)
    settings.setdefault("timeout", 5.0)
    settings.setdefault("connect_timeout", 1.0)
    return project.client(url, **settings)


# ------------------------------------------------------------------- workload

PRICES = (Decimal("0.001"), Decimal("0.0025"), Decimal("0.013"))
TOKEN_PRICES = (
    (Decimal("0.000003"), Decimal("0.000015")),
    (Decimal("0.0000025"), Decimal("0.00001")),
)
AMOUNTS = (Decimal("0.37"), Decimal("1.05"), Decimal("0.000001"), Decimal("12.5"))


@dataclass
class Workload:
    """Tracks events from many threads and knows exactly what the server must hold."""

    threads: int = 8
    per_thread: int = 1250
    users: int = 5
    ids: list[str] = field(default_factory=list)
    count: int = 0
    total: Decimal = Decimal(0)
    api_calls: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    per_user: dict[str, Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    prefix: str = field(default_factory=lambda: uuid.uuid4().hex[:6])
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _user(self, worker: int, n: int) -> str:
        return f"{self.prefix}-u{(worker + n) % self.users}"

    def _track_one(self, tracker: AgentMeterTracker, worker: int, n: int) -> tuple[str, Any]:
        user = self._user(worker, n)
        kind = n % 3
        if kind == 0:
            calls, price = n % 4 + 1, PRICES[n % len(PRICES)]
            event_id = tracker.track_api_request_pay(calls, price, user, {"n": n})
            return event_id, (user, calls * price, calls, 0, 0)
        if kind == 1:
            tin, tout = n % 1000, n % 300
            pin, pout = TOKEN_PRICES[n % len(TOKEN_PRICES)]
            event_id = tracker.track_token_based_pay(tin, tout, pin, pout, user, {"model": "m"})
            return event_id, (user, tin * pin + tout * pout, 0, tin, tout)
        amount = AMOUNTS[n % len(AMOUNTS)]
        event_id = tracker.track_instant_pay(amount, "injected", user)
        return event_id, (user, amount, 0, 0, 0)

    def _record(self, event_id: str, facts: tuple[str, Decimal, int, int, int]) -> None:
        user, cost, calls, tin, tout = facts
        with self._lock:
            self.ids.append(event_id)
            self.count += 1
            self.total += cost
            self.per_user[user] += cost
            self.api_calls += calls
            self.tokens_in += tin
            self.tokens_out += tout

    def run_worker(
        self, tracker: AgentMeterTracker, worker: int, pause: Callable[[int], None] | None = None
    ) -> None:
        for n in range(self.per_thread):
            self._record(*self._track_one(tracker, worker, n))
            if pause is not None:
                pause(n)

    def run(
        self,
        tracker: AgentMeterTracker,
        pause: Callable[[int], None] | None = None,
        timeout: float = 120.0,
    ) -> None:
        """Track ``threads x per_thread`` events from ``threads`` threads."""
        errors: list[BaseException] = []

        def target(worker: int) -> None:
            try:
                self.run_worker(tracker, worker, pause)
            except BaseException as exc:  # reported below
                errors.append(exc)

        workers = [threading.Thread(target=target, args=(w,)) for w in range(self.threads)]
        for thread in workers:
            thread.start()
        for thread in workers:
            thread.join(timeout)
            assert not thread.is_alive(), "a tracking thread hung"
        assert not errors, errors


def verify_exactly_once(project: ProjectHandle, work: Workload) -> None:
    """The server holds every tracked event once: count, totals, per-user meters."""
    client = project.direct
    assert len(set(work.ids)) == work.count, "the tracker returned an id twice"
    stats = client.get_meter_stats(timeframe="all")
    assert stats.total_events == work.count
    assert stats.total_cost == work.total
    assert stats.total_api_calls == work.api_calls
    assert stats.total_tokens_in == work.tokens_in
    assert stats.total_tokens_out == work.tokens_out
    for user, cost in work.per_user.items():
        assert client.get_user_meter(user).current_usage == cost, user


def wait_until(condition: Callable[[], bool], timeout: float, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return condition()


@pytest.fixture
def kit() -> SimpleNamespace:
    """This file's helpers, for test modules (which cannot import a conftest by name)."""
    return SimpleNamespace(
        PASS=PASS,
        ANSWER_500=ANSWER_500,
        FORWARD_THEN_500=FORWARD_THEN_500,
        ANSWER_429=ANSWER_429,
        ANSWER_404=ANSWER_404,
        RESET_PARTIAL=RESET_PARTIAL,
        RESET_AFTER_STORE=RESET_AFTER_STORE,
        CLOSE_AFTER_STORE=CLOSE_AFTER_STORE,
        DELAY=DELAY,
        seeded=seeded,
        fault_client=fault_client,
        Workload=Workload,
        verify=verify_exactly_once,
        wait_until=wait_until,
    )
