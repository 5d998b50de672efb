"""Hostile JSON at every write endpoint of a live server: never a 5xx, never a row
that breaks a later read, and every valid event of a mixed batch stored.

Issue 11, items 1 and 2: NaN, Infinity, lone surrogates and deep nesting used
to be stored (201) and then make ``GET /api/meter/events`` answer 500 for good;
a surrogate in one event's ``metadata.model`` made its whole batch 500; a body
nested 100,000 levels raised RecursionError inside the server.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agentmeter.testing import LiveServer

SURROGATES = ["\ud800", "\udfff", "a\ud83d", "\udc00z"]
NASTY_TEXT = st.one_of(
    st.text(max_size=12),
    st.sampled_from(SURROGATES),
    st.builds(lambda a, b: a + b, st.text(max_size=4), st.sampled_from(SURROGATES)),
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=True, allow_infinity=True),
    NASTY_TEXT,
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(NASTY_TEXT, inner, max_size=3)
    ),
    max_leaves=12,
)
FIELDS = [
    "id",
    "project_id",
    "agent_id",
    "user_id",
    "payment_type",
    "timestamp",
    "metadata",
    "api_calls",
    "unit_price",
    "tokens_in",
    "tokens_out",
    "input_token_price",
    "output_token_price",
    "amount",
    "description",
]
HYPOTHESIS = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def encode(value: Any) -> bytes:
    """JSON as a hostile client writes it: NaN/Infinity literals, \\ud800 escapes."""
    return json.dumps(value, allow_nan=True).encode()


def nested(depth: int) -> Any:
    value: Any = "bottom"
    for _ in range(depth):
        value = {"k": value}
    return value


class Api:
    """Raw HTTP to one project of the live server (so any bytes can be sent)."""

    def __init__(self, url: str, key: str, project_id: str) -> None:
        self.url = url
        self.project_id = project_id
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {key}"
        self.session.headers["Content-Type"] = "application/json"

    def send(self, method: str, path: str, body: bytes) -> requests.Response:
        response = self.session.request(method, self.url + path, data=body, timeout=30)
        assert response.status_code < 500, (path, response.status_code, response.text[:300])
        return response

    def event(self, **changes: Any) -> dict[str, Any]:
        event = {
            "id": f"ev-{uuid.uuid4()}",
            "project_id": self.project_id,
            "agent_id": "agent-1",
            "user_id": "u1",
            "payment_type": "instant_pay",
            "amount": "0.25",
            "metadata": {"model": "gpt-4o"},
        }
        event.update(changes)
        return event

    def assert_reads_work(self) -> None:
        """Every read over everything stored so far still answers."""
        params = {"project_id": self.project_id}
        for path, extra in [
            ("/api/meter/events", {"limit": "1000"}),
            ("/api/meter/stats", {"timeframe": "all"}),
            ("/api/meter/report", {"group_by": "model"}),
            ("/billing-records", {}),
            ("/projects", {}),
        ]:
            response = self.session.get(self.url + path, params={**params, **extra}, timeout=30)
            assert response.status_code == 200, (path, response.status_code, response.text[:300])
        usage = self.session.get(
            self.url + "/api/meter/usage", params={**params, "user_id": "u1"}, timeout=30
        )
        assert usage.status_code in (200, 404), usage.text[:300]

    def stored_ids(self) -> set[str]:
        response = self.session.get(
            self.url + "/api/meter/events",
            params={"project_id": self.project_id, "limit": "1000"},
            timeout=30,
        )
        assert response.status_code == 200, response.text[:300]
        return {event["id"] for event in response.json()}


@pytest.fixture
def api(live_server: LiveServer, http_admin: Any) -> Api:
    project = http_admin.create_project(f"hostile {uuid.uuid4().hex[:8]}")
    assert project.api_key is not None
    return Api(live_server.url, project.api_key.get_secret_value(), project.id)


@pytest.fixture
def admin_api(live_server: LiveServer, api: Api) -> Api:
    """The admin key on the same project (for the project and billing endpoints)."""
    return Api(live_server.url, live_server.admin_key, api.project_id)


# ------------------------------------------------------------ the named cases


@pytest.mark.parametrize(
    "metadata",
    [
        {"x": float("nan")},
        {"x": float("inf")},
        {"x": [1, float("-inf")]},
        {"\ud800": 1},
        {"model": "gpt\udfff"},
        {"deep": nested(40)},
    ],
    ids=["nan", "inf", "nested-inf", "surrogate-key", "surrogate-value", "depth-40"],
)
def test_a_poisonous_event_is_refused_and_reads_keep_working(api: Api, metadata: Any) -> None:
    event = api.event(metadata=metadata)
    response = api.send("POST", "/api/meter/event", encode(event))
    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["field"] == "metadata"
    assert event["id"] not in api.stored_ids()
    api.assert_reads_work()


@pytest.mark.parametrize("field", ["id", "agent_id", "user_id", "description"])
def test_a_surrogate_in_any_text_field_is_refused(api: Api, field: str) -> None:
    event = api.event(**{field: "ab\ud800"})
    response = api.send("POST", "/api/meter/event", encode(event))
    assert response.status_code == 422
    api.assert_reads_work()


def test_one_surrogate_in_a_batch_rejects_that_event_only(api: Api) -> None:
    valid = [api.event() for _ in range(9)]
    poisoned = api.event(metadata={"model": "\ud800"})
    response = api.send("POST", "/api/meter/events/batch", encode({"events": [*valid, poisoned]}))
    assert response.status_code == 200
    answer = response.json()
    assert answer["accepted"] == 9
    assert [item["index"] for item in answer["rejected"]] == [9]
    assert {event["id"] for event in valid} <= api.stored_ids()
    api.assert_reads_work()


def test_a_batch_naming_a_foreign_project_is_refused_whole(api: Api) -> None:
    valid = [api.event() for _ in range(3)]
    foreign = api.event(project_id="0")
    response = api.send("POST", "/api/meter/events/batch", encode({"events": [*valid, foreign]}))
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"
    assert not {event["id"] for event in valid} & api.stored_ids()
    api.assert_reads_work()


@pytest.mark.parametrize(
    "body",
    [b"[" * 100_000, b'{"events": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"],
    ids=["brackets", "nested-batch"],
)
def test_json_nested_beyond_reason_is_a_400(api: Api, body: bytes) -> None:
    for path in ("/api/meter/event", "/api/meter/events/batch", "/api/meter"):
        method = "PUT" if path == "/api/meter" else "POST"
        assert api.send(method, path, body).status_code == 400


def test_metadata_nested_a_thousand_levels_is_refused_without_a_traceback(
    tmp_path: Any, http_admin: Any
) -> None:
    log = tmp_path / "serve.log"
    with LiveServer(f"sqlite:///{tmp_path / 'ledger.db'}", log_path=log) as server:
        admin = Api(server.url, server.admin_key, "p-deep")
        created = admin.send("POST", "/projects", encode({"name": "deep", "id": "p-deep"}))
        assert created.status_code == 201
        body = '{"id":"ev-deep","project_id":"p-deep","agent_id":"a","payment_type":"instant_pay",'
        body += '"amount":"1","metadata":' + '{"k":' * 1000 + "1" + "}" * 1000 + "}"
        response = admin.send("POST", "/api/meter/event", body.encode())
        assert response.status_code in (400, 422)
        admin.assert_reads_work()
    assert "Traceback" not in log.read_text()
    assert "RecursionError" not in log.read_text()


# ------------------------------------------------------------ arbitrary JSON


def hostile_event(api: Api, data: st.DataObject) -> dict[str, Any]:
    event = api.event()
    for field in data.draw(st.lists(st.sampled_from(FIELDS), max_size=3, unique=True)):
        event[field] = data.draw(JSON_VALUES)
    if data.draw(st.booleans()):
        event["metadata"] = data.draw(st.dictionaries(NASTY_TEXT, JSON_VALUES, max_size=4))
    return event


@HYPOTHESIS
@given(data=st.data())
def test_arbitrary_events_never_5xx_nor_poison_reads(api: Api, data: st.DataObject) -> None:
    api.send("POST", "/api/meter/event", encode(hostile_event(api, data)))
    api.assert_reads_work()


@HYPOTHESIS
@given(data=st.data())
def test_arbitrary_batches_store_every_valid_event(api: Api, data: st.DataObject) -> None:
    valid = [api.event() for _ in range(data.draw(st.integers(1, 4)))]
    hostile = [hostile_event(api, data) for _ in range(data.draw(st.integers(1, 4)))]
    events = data.draw(st.permutations([*valid, *hostile]))
    response = api.send("POST", "/api/meter/events/batch", encode({"events": events}))
    if response.status_code == 403:
        # A batch naming a project the key may not write is refused whole (WIRE.md:
        # 403 is the request's authorization), and nothing of it is stored.
        assert response.json()["error"]["code"] == "forbidden"
        assert any(event.get("project_id") != api.project_id for event in hostile)
        assert not {event["id"] for event in valid} & api.stored_ids()
        api.assert_reads_work()
        return
    assert response.status_code == 200, response.text[:300]
    rejected = {item["index"] for item in response.json()["rejected"]}
    assert not any(events[index] is event for index in rejected for event in valid)
    assert {event["id"] for event in valid} <= api.stored_ids()
    api.assert_reads_work()


@HYPOTHESIS
@given(body=JSON_VALUES, path=st.sampled_from(["/api/meter", "/api/meter/increment"]))
def test_arbitrary_meter_bodies(api: Api, body: Any, path: str) -> None:
    method = "PUT" if path == "/api/meter" else "POST"
    api.send(method, path, encode(body))
    if isinstance(body, dict):
        fields = {"project_id": api.project_id, "user_id": "u1", "threshold_amount": "5"}
        api.send(method, path, encode({**fields, "amount": "1", **body}))
    api.send("POST", "/api/meter/reset", encode(body))
    api.assert_reads_work()


@HYPOTHESIS
@given(body=st.dictionaries(st.sampled_from(["name", "description", "id"]), JSON_VALUES))
def test_arbitrary_project_bodies(admin_api: Api, body: dict[str, Any]) -> None:
    admin_api.send("POST", "/projects", encode(body))
    admin_api.send("PATCH", f"/projects/{admin_api.project_id}", encode(body))
    admin_api.assert_reads_work()


@HYPOTHESIS
@given(
    body=st.dictionaries(
        st.sampled_from(["project_id", "period_start", "period_end", "amount", "status"]),
        JSON_VALUES,
    )
)
def test_arbitrary_billing_bodies(admin_api: Api, body: dict[str, Any]) -> None:
    period = {
        "project_id": admin_api.project_id,
        "period_start": "2025-01-01T00:00:00Z",
        "period_end": "2025-02-01T00:00:00Z",
    }
    created = admin_api.send("POST", "/billing-records", encode({**period, **body}))
    if created.status_code == 201:
        record_id = created.json()["id"]
        admin_api.send("PATCH", f"/billing-records/{record_id}", encode(body))
    admin_api.assert_reads_work()


def test_rows_stored_before_the_checks_still_read(tmp_path: Any) -> None:
    """A ledger written by an older agentmeter may hold NaN or a lone surrogate."""
    from sqlalchemy import text

    from agentmeter.ledger import Ledger
    from agentmeter.ledger.api import ADMIN, LedgerAPI
    from agentmeter.models import InstantPayEvent
    from agentmeter.server.http import json_response

    ledger = Ledger.open(f"sqlite:///{tmp_path / 'old.db'}")
    event = InstantPayEvent(project_id="p", agent_id="a", amount=1)
    ledger.record_events([event])
    with ledger.writing() as connection:
        stored = '{"x":NaN,"y":"\\ud800"}'  # as json.dumps wrote them then
        connection.execute(text("UPDATE events SET metadata = :m"), {"m": stored})
    answer = LedgerAPI(ledger).list_events(ADMIN, {"project_id": "p"})
    body = json.loads(json_response(answer).body)
    # The surrogate reads as its escape: UTF-8 (and the embedded client) cannot carry it.
    assert body[0]["metadata"] == {"x": "NaN", "y": "\\ud800"}
    ledger.close()


LEGACY_METADATA = [
    ('{"x":NaN,"y":Infinity}', {"x": "NaN", "y": "Infinity"}),
    ('{"\\ud800":"\\udfff"}', {"\\ud800": "\\udfff"}),
    (
        '{"big":1e999,"huge":123456789012345678901234567890}',
        {"big": "inf", "huge": "123456789012345678901234567890"},
    ),
    ("null", {}),
    ("not json", {"_unreadable_metadata": "not json"}),
    ("[1,2]", {"_unreadable_metadata": "[1,2]"}),
    ('"text"', {"_unreadable_metadata": '"text"'}),
    ("", {"_unreadable_metadata": ""}),
    ('{"a":' * 40 + "1" + "}" * 40, {"_unreadable_metadata": '{"a":' * 40 + "1" + "}" * 40}),
    ('{"a":' * 5000 + "1" + "}" * 5000, None),
]


def test_old_rows_no_client_could_read_now_read_through_every_client(tmp_path: Any) -> None:
    """Regression: an embedded client's get_events() raised (UnicodeEncodeError,
    ValueError, JSONDecodeError, RecursionError) on one such row, and the server
    answered 500 for some of them."""
    from sqlalchemy import text

    from agentmeter import AgentMeterClient
    from agentmeter.ledger import Ledger

    url = f"sqlite:///{tmp_path / 'old.db'}"
    with AgentMeterClient(base_url=url, project_id="p", agent_id="a") as embedded:
        ids = [embedded.record_instant_pay("1", user_id="u").event_id for _ in LEGACY_METADATA]
    ledger = Ledger.open(url)
    with ledger.writing() as connection:
        for event_id, (stored, _) in zip(ids, LEGACY_METADATA, strict=True):
            connection.execute(
                text("UPDATE events SET metadata = :m WHERE id = :id"),
                {"m": stored, "id": event_id},
            )
    ledger.close()
    expected = {
        event_id: read if read is not None else {"_unreadable_metadata": stored[:10_000]}
        for event_id, (stored, read) in zip(ids, LEGACY_METADATA, strict=True)
    }

    with AgentMeterClient(base_url=url, project_id="p", agent_id="a") as embedded:
        from_embedded = {event.id: event.metadata for event in embedded.get_events(limit=100)}
    with LiveServer(url) as server, server.client(project_id="p") as remote:
        from_server = {event.id: event.metadata for event in remote.get_events(limit=100)}

    assert from_embedded == expected
    assert from_server == expected
