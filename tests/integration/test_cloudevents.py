"""``POST /api/meter/cloudevents`` on a live server: content types, envelopes, idempotency.

Raw HTTP (``requests``) for what the client never sends (wrong media types,
binary mode, broken envelopes); ``record_cloudevents`` on every backend
(the server on SQLite and on PostgreSQL, and the embedded ledger).
"""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from decimal import Decimal
from typing import Any

import pytest
import requests

from agentmeter import AgentMeterClient, AsyncAgentMeterClient
from agentmeter.core.cloudevent_map import BATCH_CONTENT_TYPE, STRUCTURED_CONTENT_TYPE
from agentmeter.ledger import Ledger
from agentmeter.ledger.api import ADMIN, LedgerAPI
from agentmeter.ledger.cloudevent_api import record_cloudevents
from agentmeter.ledger.errors import WireError
from agentmeter.models import BatchResult, Project

from .conftest import Backend

PATH = "/api/meter/cloudevents"


def envelope(**changes: Any) -> dict[str, Any]:
    made = {
        "specversion": "1.0",
        "id": f"ce-{uuid.uuid4().hex}",
        "source": "support-bot",
        "subject": "alice",
        "type": "agentmeter.api_request_pay",
        "time": "2025-03-10T12:00:00.123456Z",
        "datacontenttype": "application/json",
        "data": {"api_calls": 3, "unit_price": "0.0000001", "metadata": {"ticket": "T-1"}},
    }
    made.update(changes)
    return {key: value for key, value in made.items() if value is not None}


@pytest.fixture
def project_key(http_backend: Backend) -> tuple[Project, str]:
    project = http_backend.new_project("cloudevents")
    assert project.api_key is not None
    return project, project.api_key.get_secret_value()


def post(server_url: str, key: str, body: Any, content_type: str | None, **headers: str) -> Any:
    sent = {"Authorization": f"Bearer {key}", **headers}
    if content_type is not None:
        sent["Content-Type"] = content_type
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return requests.post(server_url + PATH, data=data, headers=sent, timeout=10)


def test_one_structured_event_is_recorded_once(live_server, project_key) -> None:
    project, key = project_key
    event = envelope()
    first = post(live_server.url, key, event, STRUCTURED_CONTENT_TYPE + "; charset=utf-8")
    assert first.status_code == 201, first.text
    assert first.json()["event_id"] == event["id"]
    assert Decimal(first.json()["cost"]) == Decimal("0.0000003")
    assert first.json()["duplicate"] is False
    again = post(live_server.url, key, event, STRUCTURED_CONTENT_TYPE)
    assert again.status_code == 201
    assert again.json()["duplicate"] is True
    with live_server.client(key, project_id=project.id) as client:
        [stored] = client.get_events()
    assert (stored.id, stored.agent_id, stored.user_id) == (event["id"], "support-bot", "alice")
    assert stored.timestamp.microsecond == 123456
    assert stored.metadata == {"ticket": "T-1"}


def test_a_batch_answers_like_the_batch_endpoint(live_server, project_key) -> None:
    _, key = project_key
    good, stored_before = envelope(), envelope()
    assert post(live_server.url, key, stored_before, STRUCTURED_CONTENT_TYPE).status_code == 201
    missing_source = envelope(source=None)
    batch = [good, missing_source, stored_before, 7, envelope(type="agentmeter.refund")]
    answer = post(live_server.url, key, batch, BATCH_CONTENT_TYPE)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["accepted"], body["duplicates"]) == (1, 1)
    rejected = {item["index"]: item for item in body["rejected"]}
    assert sorted(rejected) == [1, 3, 4]
    assert rejected[1]["id"] == missing_source["id"]
    assert rejected[1]["error"]["details"][0]["field"] == "source"
    assert rejected[3]["id"] is None
    assert rejected[4]["error"]["details"][0]["field"] == "type"


def test_binary_mode_is_refused_with_415_naming_the_structured_types(
    live_server, project_key
) -> None:
    _, key = project_key
    event = envelope()
    headers = {f"ce-{name}": str(event[name]) for name in ("specversion", "id", "source", "type")}
    answer = post(live_server.url, key, event["data"], "application/json", **headers)
    assert answer.status_code == 415
    message = answer.json()["error"]["message"]
    assert STRUCTURED_CONTENT_TYPE in message
    assert BATCH_CONTENT_TYPE in message
    assert "binary mode" in message


@pytest.mark.parametrize("content_type", ["text/plain", None, "application/cloudevents+xml"])
def test_other_content_types_get_415(live_server, project_key, content_type) -> None:
    _, key = project_key
    answer = post(live_server.url, key, envelope(), content_type)
    assert answer.status_code == 415
    assert answer.json()["error"]["code"] == "unsupported_media_type"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"specversion": None}, "specversion"),
        ({"specversion": "0.3"}, "specversion"),
        ({"id": None}, "id"),
        ({"id": ""}, "id"),
        ({"source": None}, "source"),
        ({"type": None}, "type"),
        ({"type": 5}, "type"),
        ({"type": "com.example.usage"}, "type"),
        ({"time": "yesterday"}, "time"),
        ({"time": "2025-03-10T12:00:00"}, "time"),  # RFC 3339 needs an offset
        ({"subject": ""}, "subject"),
        ({"Project": "x"}, "Project"),  # extension names are lowercase letters and digits
        ({"data": "api_calls=3"}, "data"),
        ({"data": {"api_calls": 3}}, "unit_price"),
        ({"data_base64": "AAAA"}, "data_base64"),
    ],
)
def test_a_bad_envelope_gets_422_naming_the_attribute(
    live_server, project_key, changes, field
) -> None:
    _, key = project_key
    answer = post(live_server.url, key, envelope(**changes), STRUCTURED_CONTENT_TYPE)
    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    assert error["details"][0]["field"] == field
    assert error["message"].startswith(field)


def test_a_project_key_charges_its_project_and_no_other(live_server, project_key) -> None:
    project, key = project_key
    other = envelope(projectid="some-other-project")
    answer = post(live_server.url, key, other, STRUCTURED_CONTENT_TYPE)
    assert answer.status_code == 403
    own = envelope(projectid=project.id)
    assert post(live_server.url, key, own, STRUCTURED_CONTENT_TYPE).status_code == 201


def test_an_admin_key_must_name_the_project(live_server) -> None:
    answer = post(live_server.url, live_server.admin_key, envelope(), STRUCTURED_CONTENT_TYPE)
    assert answer.status_code == 422
    assert answer.json()["error"]["details"][0]["field"] == "projectid"


def test_a_batch_over_1000_is_413(live_server, project_key) -> None:
    _, key = project_key
    answer = post(live_server.url, key, [envelope() for _ in range(1001)], BATCH_CONTENT_TYPE)
    assert answer.status_code == 413


def test_the_client_records_cloudevents_on_every_backend(client: AgentMeterClient) -> None:
    kinds = [
        envelope(),
        envelope(
            type="agentmeter.token_based_pay",
            data={
                "tokens_in": 1000,
                "tokens_out": 10,
                "input_token_price": "0.0000025",
                "output_token_price": "0.00001",
                "model": "gpt-4o",
                "cached_tokens_in": 400,
                "cached_input_token_price": "0.00000125",
            },
        ),
        envelope(type="agentmeter.instant_pay", data={"amount": "0.33333333", "description": "d"}),
    ]
    result = client.record_cloudevents(kinds)
    assert (result.accepted, result.duplicates, result.rejected) == (3, 0, [])
    again = client.record_cloudevents([*kinds, envelope(id=None)])
    assert (again.accepted, again.duplicates) == (0, 3)
    assert [(item.index, item.error.details[0]["field"]) for item in again.rejected] == [(3, "id")]
    stats = client.get_meter_stats(timeframe="all")
    # 3 x 0.0000001 + (600 x 0.0000025 + 400 x 0.00000125 + 10 x 0.00001) + 0.33333333
    assert stats.total_cost == Decimal("0.0000003") + Decimal("0.0021") + Decimal("0.33333333")


def test_the_async_client_records_cloudevents(backend: Backend, project: Project) -> None:
    settings: dict[str, Any] = {"project_id": project.id, "retry_attempts": 0}
    if backend.server is not None:
        assert project.api_key is not None
        settings.update(base_url=backend.server.url, api_key=project.api_key.get_secret_value())
    else:
        settings["base_url"] = backend.url

    async def send() -> BatchResult:
        async with AsyncAgentMeterClient(**settings) as client:
            return await client.record_cloudevents([envelope(), envelope()])

    assert asyncio.run(send()).accepted == 2


def test_without_the_cloudevents_package_the_endpoint_says_what_to_install(
    tmp_path, monkeypatch
) -> None:
    monkeypatch.setitem(sys.modules, "cloudevents.core.v1.event", None)  # import fails
    ledger = Ledger.open(f"sqlite:///{tmp_path / 'ledger.db'}")
    try:
        with pytest.raises(WireError) as caught:
            record_cloudevents(LedgerAPI(ledger), ADMIN, STRUCTURED_CONTENT_TYPE, envelope())
    finally:
        ledger.close()
    assert caught.value.status == 501
    assert "agentmeter[cloudevents]" in caught.value.message
