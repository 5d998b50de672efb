"""The API key never shows: not in a repr, an error, a log line, nor an event."""

from __future__ import annotations

import json
import logging
import traceback

import pytest
import requests

from agentmeter import AgentMeterClient, AgentMeterConfig, AgentMeterError
from agentmeter.errors import scrub, scrub_data

EVENT_URL = "/api/meter/event"
HEALTH = "/health"
ECHOES = ["key {key} is not valid", "got header Authorization: Bearer {key}", "{key}"]


def assert_hidden(key, *texts):
    for text in texts:
        assert key not in text


def test_the_key_is_sent_in_the_authorization_header_only(client, server, api_key):
    server.post(EVENT_URL, status=201, json={"event_id": "e1"})

    client.record_api_request_pay(unit_price="0.01", metadata={"note": "hello"})

    request = server.calls[0].request
    assert request.headers["Authorization"] == f"Bearer {api_key}"  # the positive control
    assert_hidden(api_key, request.url, request.body.decode())


def test_reprs_hide_the_key(client, api_key):
    config = client.config
    assert config.api_key_value == api_key  # the client does hold it
    assert_hidden(
        api_key,
        repr(client),
        str(client),
        repr(config),
        str(config),
        config.model_dump_json(),
        repr(config.model_dump()),
        repr(client.transport),
        repr(AgentMeterConfig(api_key=api_key)),
    )


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 413, 422, 429, 500, 503])
@pytest.mark.parametrize("echo", ECHOES)
def test_errors_that_echo_the_key_are_scrubbed(client, server, status, echo, api_key):
    echo = echo.format(key=api_key)
    body = {"error": {"code": "bad_key", "message": echo, "details": [{"message": echo}]}}
    server.get("/projects/p", status=status, json=body)

    with pytest.raises(AgentMeterError) as raised:
        client.get_project("p")

    error = raised.value
    assert_hidden(api_key, str(error), repr(error), error.message, json.dumps(error.response_data))
    assert_hidden(api_key, *(str(item) for item in error.details))
    assert_hidden(api_key, "".join(traceback.format_exception(error)))


def test_a_plain_text_error_body_echoing_the_key_is_scrubbed(client, server, api_key):
    server.get(HEALTH, status=500, body=f"upstream refused Bearer {api_key}")

    with pytest.raises(AgentMeterError) as raised:
        client.health_check()
    assert_hidden(api_key, str(raised.value), repr(raised.value))


def test_connection_errors_that_echo_the_key_are_scrubbed(client, server, api_key):
    server.get(HEALTH, body=requests.ConnectionError(f"proxy rejected {api_key}"))

    with pytest.raises(AgentMeterError) as raised:
        client.health_check()
    assert_hidden(api_key, str(raised.value), repr(raised.value))
    assert_hidden(api_key, "".join(traceback.format_exception(raised.value)))


def test_no_log_record_holds_the_key(make_client, server, caplog, api_key):
    echo = {"error": {"code": "bad_key", "message": f"Bearer {api_key} refused"}}
    server.get(HEALTH, status=503, json=echo)
    server.get(HEALTH, body=requests.ConnectionError(f"reset while sending {api_key}"))
    server.get(HEALTH, status=429, headers={"Retry-After": "0"}, json=echo)
    server.get(HEALTH, json={"status": "healthy"})
    server.post("/api/meter/events/batch", status=404, json=echo)
    server.post(EVENT_URL, status=422, json=echo)
    server.get("/projects/p", status=401, json=echo)
    for _ in range(4):
        server.get("/api/meter/usage", status=500, json=echo)

    with caplog.at_level(logging.DEBUG):
        client = make_client(max_attempts=4)
        client.health_check()
        client.record_events([client.build_instant_pay("1")])
        for call in (lambda: client.get_project("p"), client.get_user_meter):
            with pytest.raises(AgentMeterError) as raised:
                call()
            # What an application does with our errors: log them with a traceback.
            logging.getLogger("app").error(
                "metering failed: %r", raised.value, exc_info=raised.value
            )

    assert len(server.calls) == 11
    assert any(record.levelno == logging.WARNING for record in caplog.records)
    assert any(record.levelno == logging.DEBUG for record in caplog.records)
    for record in caplog.records:
        assert_hidden(api_key, record.getMessage(), repr(record.args))
    assert_hidden(api_key, caplog.text)


def test_scrub_masks_the_given_secrets_and_key_shaped_tokens():
    text = "a sk-1 b Bearer abc.def c am_proj_0123abc d am_admin_x-y_z e"
    assert scrub(text, ["sk-1", None, ""]) == "a *** b Bearer *** c *** d *** e"


def test_scrub_data_reaches_into_nested_json():
    data = {"error": {"message": "key sk-1", "details": [{"hint": "Bearer sk-1"}, 3, None]}}
    assert scrub_data(data, ["sk-1"]) == {
        "error": {"message": "key ***", "details": [{"hint": "Bearer ***"}, 3, None]}
    }


def test_a_client_from_the_environment_hides_the_key(monkeypatch, api_key, base_url):
    monkeypatch.setenv("AGENTMETER_API_KEY", api_key)
    monkeypatch.setenv("AGENTMETER_BASE_URL", base_url)

    client = AgentMeterClient()
    assert client.config.api_key_value == api_key
    assert_hidden(api_key, repr(client), repr(client.config))
