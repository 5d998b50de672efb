"""Invalid requests: 422 naming the field, 400 for broken JSON, 413 for huge bodies,
and nothing stored. Money sent as long JSON numbers is kept to the last digit;
naive times are read as UTC."""

from __future__ import annotations

import json
import uuid
from decimal import Decimal

import pytest
import requests

from agentmeter.errors import PayloadTooLargeError, UnprocessableEntityError

BIG = 10 * 1024 * 1024


def base_event(project, **changes):
    event = {
        "id": f"ev-{uuid.uuid4()}",
        "project_id": project,
        "agent_id": "agent-1",
        "user_id": "u1",
        "payment_type": "api_request_pay",
        "api_calls": 2,
        "unit_price": "0.5",
    }
    event.update(changes)
    return {key: value for key, value in event.items() if value is not None}


def tokens(**changes):
    fields = {
        "payment_type": "token_based_pay",
        "api_calls": None,
        "unit_price": None,
        "tokens_in": 1,
        "tokens_out": 1,
        "input_token_price": "0.1",
        "output_token_price": "0.1",
    }
    return {**fields, **changes}


INVALID = {
    "negative price": ({"unit_price": "-0.01"}, "unit_price"),
    "negative number price": ({"unit_price": -1}, "unit_price"),
    "NaN price": ({"unit_price": "NaN"}, "unit_price"),
    "infinite price": ({"unit_price": "Infinity"}, "unit_price"),
    "text price": ({"unit_price": "abc"}, "unit_price"),
    "bool price": ({"unit_price": True}, "unit_price"),
    "too many decimals": ({"unit_price": "0.0000000000000000001"}, "unit_price"),
    "bool count": ({"api_calls": True}, "api_calls"),
    "fractional count": ({"api_calls": 1.5}, "api_calls"),
    "negative count": ({"api_calls": -1}, "api_calls"),
    "bool tokens": (tokens(tokens_in=False), "tokens_in"),
    "negative token price": (tokens(output_token_price="-1"), "output_token_price"),
    "negative amount": (
        {"payment_type": "instant_pay", "api_calls": None, "unit_price": None, "amount": "-5"},
        "amount",
    ),
    "unknown payment_type": ({"payment_type": "subscription_pay"}, "payment_type"),
    "missing payment_type": ({"payment_type": None}, "payment_type"),
    "missing price": ({"unit_price": None}, "unit_price"),
    "missing project": ({"project_id": None}, "project_id"),
    "missing agent": ({"agent_id": None}, "agent_id"),
    "empty agent": ({"agent_id": ""}, "agent_id"),
    "missing token prices": (tokens(input_token_price=None), "input_token_price"),
    "bad timestamp": ({"timestamp": "yesterday"}, "timestamp"),
    "impossible date": ({"timestamp": "2025-02-30T00:00:00Z"}, "timestamp"),
    "numeric timestamp": ({"timestamp": 1700000000}, "timestamp"),
    "bad id": ({"id": "has spaces"}, "id"),
    "metadata not an object": ({"metadata": ["a"]}, "metadata"),
    "metadata over 16 KiB": ({"metadata": {"blob": "x" * (16 * 1024)}}, "metadata"),
}


def assert_nothing_stored(client):
    assert client.get_events() == []
    assert client.get_meter_stats(timeframe="all").total_events == 0
    assert client.get_user_meter("u1").current_usage == Decimal(0)


@pytest.mark.parametrize("case", INVALID, ids=list(INVALID))
def test_an_invalid_event_is_422_naming_the_field(client, case):
    changes, field = INVALID[case]
    body = base_event(client.project_id, **changes)

    with pytest.raises(UnprocessableEntityError) as caught:
        client.transport.request("POST", "/api/meter/event", body=body)

    error = caught.value
    assert (error.status_code, error.code) == (422, "validation_error")
    assert field in [detail["field"] for detail in error.details]
    assert field in error.message
    assert_nothing_stored(client)
    # In a batch the same event is rejected alone, for the same field.
    answer = client.transport.request("POST", "/api/meter/events/batch", body={"events": [body]})
    assert answer["accepted"] == 0
    assert field in [detail["field"] for detail in answer["rejected"][0]["error"]["details"]]
    assert_nothing_stored(client)


def test_metadata_of_just_16_kib_is_fine(client):
    overhead = len(json.dumps({"blob": ""}, separators=(",", ":")))
    metadata = {"blob": "x" * (16 * 1024 - overhead)}
    client.record_api_request_pay(unit_price="1", metadata=metadata, user_id="u1")
    [stored] = client.get_events()
    assert stored.metadata == metadata


def test_a_body_over_10_mib_is_413(client):
    body = {"events": [], "padding": "x" * BIG}
    with pytest.raises(PayloadTooLargeError) as caught:
        client.transport.request("POST", "/api/meter/events/batch", body=body)
    assert (caught.value.status_code, caught.value.code) == (413, "payload_too_large")
    assert caught.value.message.startswith(f"HTTP 413 payload_too_large: the body is over {BIG}")
    assert_nothing_stored(client)


# ------------------------------------------------------- raw HTTP requests


@pytest.fixture
def raw(http_backend):
    """POST/GET raw bytes to the live server with a fresh project's key."""
    project = http_backend.new_project("raw")
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {project.api_key.get_secret_value()}"
    url = http_backend.server.url

    class Raw:
        project_id = project.id

        def post(self, path, data, **kwargs):
            return session.post(url + path, data=data, timeout=30, **kwargs)

        def get(self, path, **params):
            return session.get(url + path, params=params, timeout=30)

        def events(self):
            response = self.get("/api/meter/events", project_id=project.id)
            assert response.status_code == 200
            return response

        def client(self):
            return http_backend.connect(project, agent_id="agent-1")

    yield Raw()
    session.close()


@pytest.mark.parametrize(
    "data",
    [b'{"project_id": ', b"not json", b"", b'{"a": 1}}', b"\xff\xfe{}", b"{'single': 1}"],
)
def test_malformed_json_is_400(raw, data):
    for path in ("/api/meter/event", "/api/meter/events/batch", "/api/meter/increment"):
        response = raw.post(path, data, headers={"Content-Type": "application/json"})
        assert response.status_code == 400, path
        assert response.json()["error"]["code"] == "bad_request"
    assert raw.events().json() == []


def test_raw_422_body_names_the_field(raw):
    body = base_event(raw.project_id, unit_price="abc")
    response = raw.post("/api/meter/event", json.dumps(body))
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert [detail["field"] for detail in error["details"]] == ["unit_price"]
    assert raw.events().json() == []


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "-0.5", "1e400"])
def test_json_number_literals_that_are_not_money_are_422(raw, literal):
    text = json.dumps(base_event(raw.project_id, unit_price="PLACEHOLDER"))
    response = raw.post("/api/meter/event", text.replace('"PLACEHOLDER"', literal))
    assert response.status_code == 422, response.text
    assert response.json()["error"]["details"][0]["field"] == "unit_price"
    assert raw.events().json() == []


def test_a_body_over_10_mib_is_413_declared_or_streamed(raw):
    padding = b" " * (BIG + 1)
    declared = raw.post("/api/meter/events/batch", b'{"events": []}' + padding)
    assert declared.status_code == 413
    assert declared.json()["error"]["code"] == "payload_too_large"

    def chunks():  # no Content-Length: the server must count as it reads
        yield b'{"events": []'
        for _ in range(11):
            yield b" " * (1024 * 1024)
        yield b"}"

    streamed = raw.post("/api/meter/events/batch", chunks())
    assert streamed.status_code == 413
    assert streamed.json() == declared.json()
    just_under = raw.post("/api/meter/events/batch", b'{"events": []}' + b" " * (BIG - 20))
    assert just_under.status_code == 200
    assert raw.events().json() == []


def test_long_json_numbers_are_stored_exactly_as_sent(raw):
    """0.30000000000000001 is 0.3 as a float; the ledger keeps every digit."""
    api = json.dumps(base_event(raw.project_id, id="exact-api", unit_price="P", api_calls=3))
    token = json.dumps(
        base_event(
            raw.project_id,
            **tokens(
                id="exact-tok",
                input_token_price="P",
                output_token_price="Q",
                tokens_in=10,
                tokens_out=1,
            ),
        )
    )
    for text in (
        api.replace('"P"', "0.30000000000000001"),
        token.replace('"P"', "0.123456789012345678").replace('"Q"', "12345678901234.5"),
    ):
        response = raw.post("/api/meter/event", text)
        assert response.status_code == 201, response.text
    assert Decimal(response.json()["cost"]) == Decimal("12345678901235.73456789012345678")

    listed = raw.events().text
    assert '"unit_price":"0.30000000000000001"' in listed
    assert '"total_cost":"0.90000000000000003"' in listed
    assert '"input_token_price":"0.123456789012345678"' in listed
    with raw.client() as client:
        stored = {event.id: event for event in client.get_events()}
        assert stored["exact-api"].unit_price == Decimal("0.30000000000000001")
        assert stored["exact-api"].total_cost == Decimal("0.90000000000000003")
        assert stored["exact-tok"].total_cost == Decimal("12345678901235.73456789012345678")
        assert client.get_meter_stats(timeframe="all").total_cost == Decimal(
            "12345678901236.63456789012345681"
        )
        assert client.get_user_meter("u1").current_usage == Decimal(
            "12345678901236.63456789012345681"
        )


def test_money_as_json_numbers_and_strings_means_the_same(raw):
    for index, price in enumerate(["0.004", '"0.004"', "4E-3", '"4e-3"', "0.0040"]):
        text = json.dumps(base_event(raw.project_id, id=f"same-{index}", unit_price="P"))
        response = raw.post("/api/meter/event", text.replace('"P"', price))
        assert response.status_code == 201, price
        assert Decimal(response.json()["cost"]) == Decimal("0.008")


def test_naive_timestamps_are_read_as_utc(raw):
    naive = base_event(raw.project_id, id="naive-1", timestamp="2025-03-01T12:00:00")
    offset = base_event(raw.project_id, id="offset-1", timestamp="2025-03-01T14:30:00+02:00")
    for body in (naive, offset):
        response = raw.post("/api/meter/event", json.dumps(body))
        assert response.status_code == 201
    assert response.json()["timestamp"] == "2025-03-01T12:30:00Z"

    stored = {item["id"]: item["timestamp"] for item in raw.events().json()}
    assert stored == {"naive-1": "2025-03-01T12:00:00Z", "offset-1": "2025-03-01T12:30:00Z"}
    # And a naive time in a query is UTC too.
    found = raw.get(
        "/api/meter/events",
        project_id=raw.project_id,
        start_date="2025-03-01T12:00:00",
        end_date="2025-03-01T12:30:00",
    ).json()
    assert [item["id"] for item in found] == ["naive-1"]


def test_naive_timestamps_are_utc_embedded_too(client):
    body = base_event(client.project_id, id="naive-embedded", timestamp="2025-03-01T12:00:00")
    answer = client.transport.request("POST", "/api/meter/event", body=body)
    assert answer["timestamp"] == "2025-03-01T12:00:00Z"
    listed = client.transport.request(
        "GET", "/api/meter/events", params={"project_id": client.project_id}
    )
    assert [item["timestamp"] for item in listed] == ["2025-03-01T12:00:00Z"]


def test_an_event_without_an_id_is_422_naming_it(raw):
    """A server-made id would turn a client's retry into a second event."""
    body = base_event(raw.project_id, id=None)
    answer = raw.post("/api/meter/event", data=json.dumps(body))
    assert answer.status_code == 422
    assert [detail["field"] for detail in answer.json()["error"]["details"]] == ["id"]
    assert raw.events().json() == []


def test_a_body_that_is_not_an_object_is_400(raw):
    answer = raw.post("/api/meter/event", data="[1, 2]")
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "bad_request"
