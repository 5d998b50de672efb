"""The one retry layer: what is retried, how often, how long it waits. Sleeps are recorded."""

from __future__ import annotations

import logging
import socket
import types
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest
import requests
import tenacity
from urllib3.exceptions import MaxRetryError, NewConnectionError

from agentmeter import (
    AgentMeterClient,
    AgentMeterConnectionError,
    APIRequestPayEvent,
    BadRequestError,
    RateLimitError,
    ServerError,
)
from agentmeter.errors import AgentMeterAPIError, NotFoundError, api_error
from agentmeter.transport.http import HttpTransport, _never_connected, _retry_after
from agentmeter.transport.retry import RetryPolicy, is_retryable

HEALTH = "/health"
OK = {"status": "healthy"}
METER = {"project_id": "proj_1", "user_id": "user_1", "current_usage": "1"}
PROJECT = {"id": "proj_2", "name": "n"}
RECORD = {
    "id": "br_1",
    "project_id": "proj_1",
    "period_start": "2025-01-01T00:00:00Z",
    "period_end": "2025-02-01T00:00:00Z",
    "amount": "1.00",
}


def refused():
    """What requests raises when nothing listens: the request never left the machine."""
    reason = NewConnectionError(None, "Failed to establish a new connection: refused")
    return requests.ConnectionError(MaxRetryError(None, "/", reason=reason))


# Non-idempotent calls: (method, path, answer, call).
NON_IDEMPOTENT = [
    pytest.param(
        "POST", "/api/meter/increment", METER, lambda c: c.increment_user_meter("1"), id="increment"
    ),
    pytest.param("POST", "/projects", PROJECT, lambda c: c.create_project("n"), id="project"),
    pytest.param(
        "POST",
        "/billing-records",
        RECORD,
        lambda c: c.create_billing_record(None, "2025-01-01", "2025-02-01", "1"),
        id="billing",
    ),
]


# ---------------------------------------------------------- the basic matrix


def test_500_500_200_is_one_success_after_three_calls(make_client, server, sleeps):
    server.get(HEALTH, status=500)
    server.get(HEALTH, status=500)
    server.get(HEALTH, json=OK)

    assert make_client().health_check() == OK
    assert len(server.calls) == 3
    assert len(sleeps) == 2


def test_400_is_not_retried(make_client, server, sleeps):
    server.get(HEALTH, status=400)

    with pytest.raises(BadRequestError):
        make_client().health_check()
    assert len(server.calls) == 1
    assert sleeps == []


@pytest.mark.parametrize("status", [401, 403, 404, 409, 413, 422])
def test_other_client_errors_are_final(make_client, server, sleeps, status):
    server.get(HEALTH, status=status)

    with pytest.raises(AgentMeterAPIError):
        make_client().health_check()
    assert len(server.calls) == 1


@pytest.mark.parametrize("status", [408, 500, 502, 503, 504])
def test_timeouts_and_server_faults_are_retried(make_client, server, status):
    server.get(HEALTH, status=status)
    server.get(HEALTH, json=OK)

    assert make_client().health_check() == OK
    assert len(server.calls) == 2


def test_501_is_not_retried(make_client, server):
    server.get(HEALTH, status=501)

    with pytest.raises(ServerError):
        make_client().health_check()
    assert len(server.calls) == 1


def test_429_waits_at_least_retry_after(make_client, server, sleeps):
    server.get(HEALTH, status=429, headers={"Retry-After": "1"})
    server.get(HEALTH, json=OK)

    assert make_client().health_check() == OK
    assert len(server.calls) == 2
    [wait] = sleeps
    assert wait >= 1.0


def test_retry_after_is_clamped_to_max_wait(make_client, server, sleeps):
    server.get(HEALTH, status=429, headers={"Retry-After": "120"})
    server.get(HEALTH, json=OK)

    make_client(max_wait=5.0, deadline=60.0).health_check()
    assert sleeps == [5.0]


def test_connection_error_is_retried(make_client, server):
    server.get(HEALTH, body=requests.ConnectionError("connection reset by peer"))
    server.get(HEALTH, json=OK)

    assert make_client().health_check() == OK
    assert len(server.calls) == 2


def test_read_timeout_is_retried_when_idempotent(make_client, server):
    server.get(HEALTH, body=requests.ReadTimeout("read timed out"))
    server.get(HEALTH, json=OK)

    assert make_client().health_check() == OK
    assert len(server.calls) == 2


def test_recording_an_event_is_retried_because_its_id_makes_it_safe(make_client, server):
    url = "/api/meter/event"
    server.post(url, status=503)
    server.post(url, status=201, json={"event_id": "e1"})
    event = APIRequestPayEvent(project_id="p", agent_id="a", unit_price="1")

    make_client().record_event(event)

    bodies = [call.request.body for call in server.calls]
    assert bodies[0] == bodies[1]  # the same id, resent


# --------------------------------------------------------------- the bounds


def test_attempts_are_bounded(make_client, server, sleeps):
    for _ in range(3):
        server.get(HEALTH, status=503)

    with pytest.raises(ServerError):
        make_client(max_attempts=3).health_check()
    assert len(server.calls) == 3
    assert len(sleeps) == 2


def test_config_retry_attempts_counts_retries_after_the_first_try(base_url):
    client = AgentMeterClient(base_url=base_url, retry_attempts=2)
    assert client.transport.retry.max_attempts == 3


def test_no_retries_when_retry_attempts_is_0(server):
    server.get(HEALTH, status=503)
    client = AgentMeterClient(base_url=server.base_url, retry_attempts=0)

    with pytest.raises(ServerError):
        client.health_check()
    assert len(server.calls) == 1


def test_the_deadline_stops_before_a_wait_that_would_pass_it(make_client, server, sleeps):
    # Waits (jitter 0) are 0.25, 0.5, 1.0, 2.0 ...; 2.0 would end past the deadline.
    for _ in range(4):
        server.get(HEALTH, status=503)

    with pytest.raises(ServerError):
        make_client(max_attempts=10, deadline=1.5).health_check()
    assert sleeps == [0.25, 0.5, 1.0]
    assert len(server.calls) == 4


def test_a_retry_after_past_the_deadline_is_not_waited_for(make_client, server, sleeps):
    server.get(HEALTH, status=429, headers={"Retry-After": "10"})

    with pytest.raises(RateLimitError) as raised:
        make_client(deadline=5.0).health_check()
    assert raised.value.retry_after == 10.0
    assert len(server.calls) == 1
    assert sleeps == []


def test_time_spent_in_attempts_counts_toward_the_deadline(monkeypatch, sleeps):
    # tenacity reads its clock as time.monotonic() of its own module global `time`;
    # a fake clock there lets each attempt "take" 10 s without taking any.
    now = [0.0]
    monkeypatch.setattr(tenacity, "time", types.SimpleNamespace(monotonic=lambda: now[0]))
    policy = RetryPolicy(max_attempts=10, deadline=25.0, initial_wait=0.01, sleep=sleeps.append)
    attempts = []

    def attempt():
        attempts.append(now[0])
        now[0] += 10.0
        raise api_error(503, "busy")

    with pytest.raises(ServerError):
        policy.run(attempt)
    assert attempts == [0.0, 10.0, 20.0]  # a 4th would start after the 25 s deadline


# ------------------------------------------------------- non-idempotent calls


@pytest.mark.parametrize(("method", "path", "body", "call"), NON_IDEMPOTENT)
@pytest.mark.parametrize("status", [500, 503, 408])
def test_non_idempotent_calls_are_not_retried_on_server_faults(
    make_client, server, method, path, body, call, status
):
    server.add(method, path, status=status)

    with pytest.raises(AgentMeterAPIError):
        call(make_client())
    assert len(server.calls) == 1


@pytest.mark.parametrize(("method", "path", "body", "call"), NON_IDEMPOTENT)
def test_non_idempotent_calls_are_not_retried_after_a_read_timeout(
    make_client, server, method, path, body, call
):
    server.add(method, path, body=requests.ReadTimeout("read timed out"))

    with pytest.raises(AgentMeterConnectionError) as raised:
        call(make_client())
    assert (raised.value.timeout, raised.value.sent) == (True, True)
    assert len(server.calls) == 1


@pytest.mark.parametrize(("method", "path", "body", "call"), NON_IDEMPOTENT)
def test_non_idempotent_calls_are_not_retried_when_the_request_may_have_arrived(
    make_client, server, method, path, body, call
):
    server.add(method, path, body=requests.ConnectionError("connection reset"))

    with pytest.raises(AgentMeterConnectionError) as raised:
        call(make_client())
    assert raised.value.sent is True
    assert len(server.calls) == 1


@pytest.mark.parametrize(("method", "path", "body", "call"), NON_IDEMPOTENT)
def test_non_idempotent_calls_are_retried_on_429(make_client, server, method, path, body, call):
    server.add(method, path, status=429, headers={"Retry-After": "0"})
    server.add(method, path, json=body)

    call(make_client())
    assert len(server.calls) == 2


@pytest.mark.parametrize(("method", "path", "body", "call"), NON_IDEMPOTENT)
@pytest.mark.parametrize(
    "never_sent",
    [refused, lambda: requests.ConnectTimeout("connect timed out")],
    ids=["refused", "connect-timeout"],
)
def test_non_idempotent_calls_are_retried_when_never_sent(
    make_client, server, method, path, body, call, never_sent
):
    server.add(method, path, body=never_sent())
    server.add(method, path, json=body)

    call(make_client())
    assert len(server.calls) == 2


# ----------------------------------------- a real refused connection, no mock


@pytest.fixture
def closed_port():
    """A 127.0.0.1 port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_never_connected_on_a_real_refused_connection(closed_port):
    with pytest.raises(requests.ConnectionError) as raised:
        requests.get(f"http://127.0.0.1:{closed_port}/health", timeout=5)

    assert _never_connected(raised.value)


def test_never_connected_is_false_when_the_connection_may_have_been_made():
    assert not _never_connected(requests.ConnectionError("connection reset by peer"))
    assert not _never_connected(requests.ReadTimeout("read timed out"))


def test_a_refused_non_idempotent_request_is_retried_for_real(closed_port, sleeps, api_key):
    base = f"http://127.0.0.1:{closed_port}"
    retry = RetryPolicy(max_attempts=3, sleep=sleeps.append, random=lambda: 0.0)
    transport = HttpTransport(base, api_key, retry=retry)
    client = AgentMeterClient(base_url=base, project_id="proj_1", transport=transport)

    with pytest.raises(AgentMeterConnectionError) as raised:
        client.increment_user_meter("1")

    assert raised.value.sent is False
    assert raised.value.timeout is False
    assert len(sleeps) == 2  # three attempts
    assert "AGENTMETER_BASE_URL" in str(raised.value)


# ---------------------------------------------------------- policy pieces


def connection_error(sent):
    return AgentMeterConnectionError("boom", sent=sent)


@pytest.mark.parametrize(
    ("exc", "idempotent", "expected"),
    [
        (connection_error(sent=True), True, True),
        (connection_error(sent=True), False, False),
        (connection_error(sent=False), False, True),
        (AgentMeterConnectionError("slow", timeout=True), False, False),
        (api_error(429, "slow down"), False, True),
        (api_error(429, "slow down"), True, True),
        (api_error(408, "timeout"), True, True),
        (api_error(408, "timeout"), False, False),
        (api_error(500, "oops"), True, True),
        (api_error(500, "oops"), False, False),
        (api_error(503, "busy"), True, True),
        (api_error(501, "no"), True, False),
        (api_error(400, "bad"), True, False),
        (api_error(404, "gone"), True, False),
        (api_error(422, "invalid"), True, False),
        (NotFoundError("no status"), True, False),
        (ValueError("not ours"), True, False),
    ],
)
def test_is_retryable(exc, idempotent, expected):
    assert is_retryable(exc, idempotent) is expected


def test_backoff_grows_exponentially_with_equal_jitter():
    low = RetryPolicy(initial_wait=0.5, max_wait=30.0, random=lambda: 0.0)
    high = RetryPolicy(initial_wait=0.5, max_wait=30.0, random=lambda: 1.0)

    assert [low.backoff(n, None) for n in range(1, 5)] == [0.25, 0.5, 1.0, 2.0]
    assert [high.backoff(n, None) for n in range(1, 5)] == [0.5, 1.0, 2.0, 4.0]


def test_backoff_is_capped_by_max_wait():
    policy = RetryPolicy(initial_wait=0.5, max_wait=3.0, random=lambda: 1.0)
    assert policy.backoff(20, None) == 3.0


def test_backoff_honours_retry_after_as_a_minimum():
    policy = RetryPolicy(initial_wait=0.5, max_wait=30.0, random=lambda: 0.0)
    limited = api_error(429, "slow down", retry_after=7.0)

    assert policy.backoff(1, limited) == 7.0
    assert policy.backoff(6, limited) == 8.0  # 0.5 * 2**5 / 2: the backoff itself is longer


def test_retry_after_header_parsing():
    assert _retry_after(None) is None
    assert _retry_after("2") == 2.0
    assert _retry_after("-3") == 0.0
    assert _retry_after("soon") is None
    assert _retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past
    future = datetime.now(timezone.utc) + timedelta(hours=1)
    assert 3000 < _retry_after(format_datetime(future, usegmt=True)) <= 3600


def test_the_sleep_given_to_a_request_wins_over_the_policy(server):
    policy_sleeps, call_sleeps = [], []
    retry = RetryPolicy(sleep=policy_sleeps.append)
    transport = HttpTransport(server.base_url, server.api_key, retry=retry)
    server.get(HEALTH, status=503)
    server.get(HEALTH, json=OK)

    transport.request("GET", "/health", sleep=call_sleeps.append)

    assert (len(policy_sleeps), len(call_sleeps)) == (0, 1)


def test_urllib3_does_not_retry_underneath(base_url):
    transport = HttpTransport(base_url, None)
    for prefix in ("http://", "https://"):
        assert transport._session.get_adapter(prefix + "meter.test").max_retries.total == 0


def test_each_retry_is_logged_as_a_warning(make_client, server, caplog):
    server.get(HEALTH, status=503)
    server.get(HEALTH, json=OK)

    with caplog.at_level(logging.WARNING, logger="agentmeter"):
        make_client().health_check()

    [record] = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "GET /health failed (attempt 1)" in record.getMessage()
    assert "retrying in 0.25s" in record.getMessage()
