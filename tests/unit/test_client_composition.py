"""The client holds one object per concern and forwards to it; no mixins.

Issue 12: ``AgentMeterClient`` used to inherit its endpoints from three
mixins sharing undeclared state. Now each endpoint group under
``agentmeter/endpoints/`` takes a :class:`Connection` and the client
forwards each public method to its group. These tests keep the forwarding
honest (real signatures and docstrings, not ``*args, **kwargs``) and show
that a group works on its own, with a fake transport and no client.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from agentmeter import AgentMeterClient
from agentmeter.config import AgentMeterConfig
from agentmeter.endpoints.connection import Connection
from agentmeter.endpoints.events import EventEndpoints
from agentmeter.endpoints.meters import MeterEndpoints
from agentmeter.endpoints.webhooks import UNSET
from agentmeter.errors import AgentMeterConfigurationError, NotFoundError
from agentmeter.models import BillingStatus

# A few methods' parameters, by name and in order, as users call them.
PARAMETERS = {
    "record_token_based_pay": [
        "tokens_in",
        "tokens_out",
        "input_token_price",
        "output_token_price",
        "project_id",
        "agent_id",
        "user_id",
        "metadata",
        "model",  # keyword-only from here on, issue 13
        "cached_tokens_in",
        "cache_write_tokens",
        "cached_input_token_price",
        "cache_write_token_price",
    ],
    "get_events": [
        "project_id",
        "agent_id",
        "user_id",
        "event_type",
        "start_date",
        "end_date",
        "limit",
        "offset",
        "payment_type",
        "model",
    ],
    "get_report": [
        "project_id",
        "granularity",
        "group_by",
        "start_date",
        "end_date",
        "user_id",
        "agent_id",
        "all_projects",  # issue 18
    ],
    # issue 20: usage per user (per project across projects)
    "get_usage_summary": ["project_id", "start_date", "end_date", "user_id", "all_projects"],
    "get_meter_stats": ["project_id", "timeframe", "all_projects"],
    "set_user_meter": ["threshold_amount", "user_id", "project_id"],
    "create_billing_record": ["project_id", "period_start", "period_end", "amount", "status"],
    "send_batch": ["events", "sleep"],
    "record_cloudevents": ["envelopes"],  # issue 18
    "list_projects": [],
    # alerts and webhooks, issue 17
    "create_webhook_endpoint": ["url", "event_types", "enabled", "description", "project_id"],
    "list_webhook_endpoints": ["project_id"],
    "delete_webhook_endpoint": ["endpoint_id", "project_id"],
    "send_test_webhook": ["endpoint_id", "project_id"],
    "list_webhook_deliveries": ["project_id", "endpoint_id", "status", "limit", "offset"],
    "redeliver_webhook": ["delivery_id", "project_id"],
    "get_alert_settings": ["project_id"],
    "set_alert_settings": ["project_id", "threshold_shares", "daily_limit", "monthly_limit"],
}


@pytest.fixture
def client(tmp_path: Path) -> Iterator[AgentMeterClient]:
    with AgentMeterClient(base_url=f"sqlite:///{tmp_path / 'ledger.db'}", project_id="p") as made:
        yield made


def public_methods(client: AgentMeterClient) -> dict[str, Callable[..., Any]]:
    found = {}
    for name in dir(client):
        if name.startswith("_"):
            continue
        if isinstance(inspect.getattr_static(AgentMeterClient, name, None), property):
            continue
        found[name] = getattr(client, name)
    return found


def test_the_client_has_no_mixin_bases() -> None:
    assert AgentMeterClient.__mro__ == (AgentMeterClient, object)


def test_every_public_method_is_there(client: AgentMeterClient) -> None:
    methods = public_methods(client)
    assert set(PARAMETERS) <= set(methods)
    assert {"record_event", "record_events", "get_user_meter", "health_check"} <= set(methods)
    assert all(callable(method) for method in methods.values())


def test_no_public_method_hides_its_parameters_behind_args_and_kwargs(
    client: AgentMeterClient,
) -> None:
    variadic = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    for name, method in public_methods(client).items():
        parameters = inspect.signature(method).parameters.values()
        assert not any(p.kind in variadic for p in parameters), name


@pytest.mark.parametrize("name", sorted(PARAMETERS))
def test_a_bound_method_shows_its_real_parameters_without_self(
    client: AgentMeterClient, name: str
) -> None:
    assert list(inspect.signature(getattr(client, name)).parameters) == PARAMETERS[name]
    unbound = inspect.signature(getattr(AgentMeterClient, name)).parameters
    assert list(unbound) == ["self", *PARAMETERS[name]]


def test_defaults_are_the_real_ones(client: AgentMeterClient) -> None:
    report = inspect.signature(client.get_report).parameters
    assert report["granularity"].default == "day"
    assert inspect.signature(client.get_meter_stats).parameters["timeframe"].default == "30 days"
    billing = inspect.signature(client.create_billing_record).parameters
    assert billing["status"].default is BillingStatus.PENDING
    sleep = inspect.signature(client.send_batch).parameters["sleep"]
    assert sleep.kind is inspect.Parameter.KEYWORD_ONLY
    alerts = inspect.signature(client.set_alert_settings).parameters
    assert alerts["daily_limit"].default is UNSET  # None is sent: it clears the limit
    assert alerts["threshold_shares"].kind is inspect.Parameter.KEYWORD_ONLY
    deliveries = inspect.signature(client.list_webhook_deliveries).parameters
    assert (deliveries["limit"].default, deliveries["offset"].default) == (100, 0)


def test_every_public_method_has_a_docstring(client: AgentMeterClient) -> None:
    assert inspect.getdoc(AgentMeterClient)
    missing = [name for name, method in public_methods(client).items() if not method.__doc__]
    assert missing == []


def test_forwarded_methods_work_end_to_end(client: AgentMeterClient) -> None:
    answer = client.record_instant_pay(amount="0.25", user_id="u")
    assert [event.id for event in client.get_events(user_id="u")] == [answer.event_id]
    assert client.get_user_meter(user_id="u").current_usage == answer.cost


# ------------------------------------------------- a group without a client


class FakeTransport:
    """Answers like a server without the batch endpoint; records each request."""

    describe = "fake"
    default_project_id: str | None = None

    def __init__(self) -> None:
        self.requests: list[tuple[str, str]] = []

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        idempotent: bool = True,
        sleep: Callable[[float], None] | None = None,
    ) -> Any:
        self.requests.append((method, path))
        if path == "/api/meter/events/batch":
            raise NotFoundError("no such endpoint", 404)
        if path == "/api/meter/event":
            return {"event_id": body["id"], "cost": "0.1"}
        return {**dict(body or params or {}), "current_usage": "0"}

    def close(self) -> None:
        pass


def connection_with(transport: FakeTransport, calls: list[Any]) -> Connection:
    return Connection(
        AgentMeterConfig(project_id="p", user_id="u"),
        transport,
        settle_before_meter_change=lambda: calls.append("settle"),
        meter_changed=lambda project_id, user_id: calls.append(("changed", project_id, user_id)),
        events_delivered=lambda events: calls.append([event["id"] for event in events]),
    )


def test_event_endpoints_remember_a_missing_batch_endpoint_and_report_delivery() -> None:
    transport, calls = FakeTransport(), []
    events = EventEndpoints(connection_with(transport, calls))
    first = [events.build_instant_pay(amount=1).to_dict() for _ in range(2)]
    assert events.send_batch(first).accepted == 2
    assert events.batch_endpoint_missing
    second = events.build_instant_pay(amount=1)
    assert events.record_events([second]).accepted == 1  # no second try of the batch path
    paths = [path for _, path in transport.requests]
    assert paths.count("/api/meter/events/batch") == 1
    assert paths.count("/api/meter/event") == 3
    assert calls == [[event["id"] for event in first], [second.id]]


def test_meter_endpoints_call_the_hooks_around_a_reset() -> None:
    transport, calls = FakeTransport(), []
    meters = MeterEndpoints(connection_with(transport, calls))
    meters.reset_user_meter()
    meters.set_user_meter(5, user_id="v")
    assert calls == ["settle", ("changed", "p", "u"), ("changed", "p", "v")]


def test_the_connection_fills_in_the_defaults() -> None:
    connection = Connection(AgentMeterConfig(agent_id="a"), FakeTransport())
    assert connection.resolve_agent(None) == "a"
    assert connection.resolve_user(None) == "anonymous"
    assert connection.resolve_project("given") == "given"
    with pytest.raises(AgentMeterConfigurationError):
        connection.resolve_project(None)


def test_the_hooks_default_to_doing_nothing() -> None:
    connection = Connection(AgentMeterConfig(project_id="p"), FakeTransport())
    events: Sequence[Mapping[str, Any]] = []
    connection.events_delivered(events)
    connection.meter_changed("p", "u")
    connection.settle_before_meter_change()
