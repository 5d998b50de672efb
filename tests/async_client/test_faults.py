"""Errors and retries of the async client are the sync client's, through a real
fault-injecting proxy on 127.0.0.1 in front of a live server.

Each scenario runs once with each client, each on a fresh proxy that
injects the same faults; the outcome (the answer, or the exception class
with its status, ``sent`` and ``timeout``), the waits the retry policy asked
for (recorded, not slept: no wall clock) and the requests the proxy saw must
be the same. The API key never shows in a repr, a log line or an exception.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from agentmeter import (
    AgentMeterClient,
    AgentMeterConnectionError,
    AgentMeterError,
    AsyncAgentMeterClient,
    AuthenticationError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
)
from agentmeter.transport.http import HttpTransport
from agentmeter.transport.retry import RetryPolicy


def recording_policy(waits: list[float], attempts: int = 4) -> RetryPolicy:
    """Jitter 0; every wait recorded instead of slept, by either client."""

    async def asleep(seconds: float) -> None:
        waits.append(seconds)

    return RetryPolicy(max_attempts=attempts, random=lambda: 0.0, sleep=waits.append, asleep=asleep)


def outcome(result: Any) -> Any:
    """What must match between the clients: the answer's class and content, or the error's."""
    if isinstance(result, AgentMeterError):
        return (
            type(result).__name__,
            getattr(result, "status_code", None),
            getattr(result, "sent", None),
            getattr(result, "timeout", None),
        )
    if hasattr(result, "duplicate"):  # the event id differs between the runs
        return (type(result).__name__, result.cost, result.duplicate)
    return type(result).__name__  # a meter's usage: compared as a change, below


def on_first(*actions: str) -> Callable[[Any], str]:
    """The proxy's decision: ``actions`` for the first requests, then pass them on."""
    return lambda request: actions[request.index] if request.index < len(actions) else "pass"


def always(action: str) -> Callable[[Any], str]:
    return lambda request: action


# name, the proxy's decisions, the call (on either client), options
SCENARIOS: list[tuple[str, Callable[[Any], str], Callable[[Any], Any], dict[str, Any]]] = [
    ("500 then success", on_first("500"), lambda c: c.record_instant_pay("1", user_id="f"), {}),
    (
        "429 with Retry-After, twice",
        on_first("429", "429"),
        lambda c: c.record_api_request_pay(1, "0.1", user_id="f"),
        {"retry_after": "2"},
    ),
    (
        "connection reset mid-request",
        on_first("reset-partial"),
        lambda c: c.record_instant_pay("1", user_id="f"),
        {},
    ),
    (
        "connection reset after the server stored it",
        on_first("reset-after"),
        lambda c: c.record_instant_pay("1", user_id="f"),
        {},
    ),
    (
        "closed after the server stored it",
        on_first("close-after"),
        lambda c: c.record_instant_pay("1", user_id="f"),
        {},
    ),
    ("500 every time", always("500"), lambda c: c.get_meter_stats(), {}),
    ("429 every time", always("429"), lambda c: c.get_user_meter("f"), {"retry_after": "1"}),
    (
        "non-idempotent: stored, then 500",
        on_first("forward-500"),
        lambda c: c.increment_user_meter("0.5", user_id="f"),
        {},
    ),
    (
        "non-idempotent: stored, then reset",
        on_first("reset-after"),
        lambda c: c.increment_user_meter("0.5", user_id="f"),
        {},
    ),
    (
        "non-idempotent: 429 is retried",
        on_first("429"),
        lambda c: c.increment_user_meter("0.5", user_id="f"),
        {"retry_after": "0"},
    ),
    (
        "403 from the server is final",
        always("pass"),
        lambda c: c.get_project("proj_of_someone_else"),
        {},
    ),
    ("an injected 404 is final", on_first("404"), lambda c: c.get_meter_stats(), {}),
    (
        "a read timeout",
        on_first("delay"),
        lambda c: c.get_meter_stats(),
        {"delay": 3.0, "timeout": 0.5, "attempts": 1},
    ),
]


def run_scenario(proxy_factory, project, decide, call, options, use_async: bool) -> dict[str, Any]:
    options = dict(options)
    timeout = options.pop("timeout", 5.0)
    attempts = options.pop("attempts", 4)
    proxy = proxy_factory(decide, **options)
    waits: list[float] = []

    def transport() -> HttpTransport:
        return HttpTransport(
            proxy.url,
            project.key,
            timeout=timeout,
            connect_timeout=2.0,
            retry=recording_policy(waits, attempts),
        )

    if use_async:

        async def scenario() -> Any:
            async with AsyncAgentMeterClient(project_id=project.id, transport=transport()) as c:
                try:
                    return await call(c)
                except AgentMeterError as exc:
                    return exc

        result = asyncio.run(scenario())
    else:
        with AgentMeterClient(project_id=project.id, transport=transport()) as c:
            try:
                result = call(c)
            except AgentMeterError as exc:
                result = exc
    requests = [(r.method, r.path, r.action) for r in proxy.requests]
    return {"outcome": outcome(result), "waits": waits, "requests": requests, "error": result}


@pytest.fixture
def project(live_server, fault_kit):
    """A fresh project of the live server: its id, key, and a direct sync client."""
    with live_server.client(retry_attempts=0) as admin:
        made = admin.create_project("async faults")
    key = made.api_key.get_secret_value()
    with live_server.client(key, project_id=made.id, retry_attempts=0) as direct:
        yield type("Handle", (), {"id": made.id, "key": key, "direct": direct})()


@pytest.mark.parametrize(
    ("decide", "call", "options"),
    [scenario[1:] for scenario in SCENARIOS],
    ids=[scenario[0] for scenario in SCENARIOS],
)
def test_the_async_client_fails_and_retries_as_the_sync_client(
    proxy_factory, project, decide, call, options
):
    sync = run_scenario(proxy_factory, project, decide, call, options, use_async=False)
    usage_after_sync = project.direct.get_user_meter("f").current_usage
    done = run_scenario(proxy_factory, project, decide, call, options, use_async=True)
    usage_after_async = project.direct.get_user_meter("f").current_usage
    assert done["outcome"] == sync["outcome"]
    assert done["waits"] == sync["waits"]
    assert done["requests"] == sync["requests"]
    # Each client changed the meter the same way (stored once, or not at all).
    assert usage_after_async - usage_after_sync == usage_after_sync


def test_what_the_scenarios_show(proxy_factory, project):
    """The facts behind the parity: retried or final, and how long the waits are."""
    by_name = {name: (decide, call, options) for name, decide, call, options in SCENARIOS}

    def run(name: str) -> dict[str, Any]:
        decide, call, options = by_name[name]
        return run_scenario(proxy_factory, project, decide, call, options, use_async=True)

    retried = run("500 then success")
    assert retried["outcome"] == ("MeterEventResponse", Decimal("1"), False)
    assert len(retried["requests"]) == 2
    assert retried["waits"] == [0.25]

    limited = run("429 with Retry-After, twice")
    assert limited["waits"] == [2.0, 2.0]  # Retry-After is the minimum wait
    assert limited["outcome"][0] == "MeterEventResponse"

    stored_then_reset = run("connection reset after the server stored it")
    assert stored_then_reset["outcome"] == ("MeterEventResponse", Decimal("1"), True)  # duplicate

    exhausted = run("500 every time")
    assert isinstance(exhausted["error"], ServerError)
    assert len(exhausted["requests"]) == 4
    assert exhausted["waits"] == [0.25, 0.5, 1.0]

    rate_limited = run("429 every time")
    assert isinstance(rate_limited["error"], RateLimitError)
    assert rate_limited["error"].retry_after == 1.0

    not_applied_twice = run("non-idempotent: stored, then 500")
    assert isinstance(not_applied_twice["error"], ServerError)
    assert len(not_applied_twice["requests"]) == 1
    assert not_applied_twice["waits"] == []

    lost_answer = run("non-idempotent: stored, then reset")
    assert isinstance(lost_answer["error"], AgentMeterConnectionError)
    assert lost_answer["error"].sent
    assert len(lost_answer["requests"]) == 1

    final = run("403 from the server is final")
    assert isinstance(final["error"], PermissionDeniedError)
    assert final["waits"] == []
    injected = run("an injected 404 is final")
    assert isinstance(injected["error"], NotFoundError)
    assert len(injected["requests"]) == 1

    slow = run("a read timeout")
    assert isinstance(slow["error"], AgentMeterConnectionError)
    assert slow["error"].timeout
    assert slow["error"].sent


def test_a_refused_connection_is_retried_even_when_not_idempotent(proxy_factory, project):
    """Nothing listens: the request certainly never arrived (``sent`` false)."""
    results = {}
    for use_async in (False, True):
        proxy = proxy_factory()
        proxy.down()
        results[use_async] = run_scenario(
            lambda *a, down=proxy, **k: down,
            project,
            None,
            lambda c: c.increment_user_meter("1", user_id="refused"),
            {},
            use_async,
        )
    assert results[True]["outcome"] == results[False]["outcome"]
    assert results[True]["waits"] == results[False]["waits"] == [0.25, 0.5, 1.0]
    error = results[True]["error"]
    assert isinstance(error, AgentMeterConnectionError)
    assert not error.sent


def test_a_wrong_key_is_final_and_never_shown(proxy_factory, project, caplog):
    wrong_key = "am_proj_" + "w" * 32
    proxy = proxy_factory()
    caplog.set_level(logging.DEBUG)
    waits: list[float] = []

    async def scenario() -> list[Any]:
        transport = HttpTransport(proxy.url, wrong_key, retry=recording_policy(waits))
        errors: list[Any] = []
        async with AsyncAgentMeterClient(project_id=project.id, transport=transport) as client:
            errors.append(repr(client))
            errors.append(repr(client.transport))
            errors.append(repr(client.config))
            for call in (client.get_meter_stats(), client.record_instant_pay("1")):
                try:
                    await call
                except AgentMeterError as exc:
                    errors.append(exc)
        return errors

    shown = asyncio.run(scenario())
    failures = [item for item in shown if isinstance(item, AgentMeterError)]
    assert [type(exc) for exc in failures] == [AuthenticationError, AuthenticationError]
    assert waits == []
    assert len(proxy.requests) == 2

    proxy.down()  # and a connection error, whose message names the URL

    async def refused() -> AgentMeterError:
        transport = HttpTransport(proxy.url, wrong_key, retry=recording_policy(waits, 1))
        async with AsyncAgentMeterClient(project_id=project.id, transport=transport) as client:
            try:
                await client.get_events()
            except AgentMeterError as exc:
                return exc
        raise AssertionError("no error")

    failures.append(asyncio.run(refused()))
    texts = [text for text in shown if isinstance(text, str)]
    for exc in failures:
        chain: BaseException | None = exc
        while chain is not None:
            texts += [str(chain), repr(chain), repr(getattr(chain, "response_data", None))]
            chain = chain.__cause__ or chain.__context__
    texts += [record.getMessage() for record in caplog.records]
    assert any("GET /api/meter/stats" in text for text in texts)  # the log was captured
    assert [text for text in texts if wrong_key in text or "wwwwwwww" in text] == []
