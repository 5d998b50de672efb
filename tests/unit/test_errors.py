"""Every error status becomes its own exception class, with everything the server said."""

from __future__ import annotations

import pickle
from decimal import Decimal

import pytest
import requests

from agentmeter import (
    AgentMeterAPIError,
    AgentMeterConfigurationError,
    AgentMeterConnectionError,
    AgentMeterError,
    AgentMeterValidationError,
    AuthenticationError,
    BadRequestError,
    BudgetExceededError,
    ConflictError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    UnprocessableEntityError,
)
from agentmeter.errors import api_error, error_class_for_status

PROJECT_URL = "/projects/proj_1"

STATUS_CLASSES = [
    (400, BadRequestError),
    (401, AuthenticationError),
    (403, PermissionDeniedError),
    (404, NotFoundError),
    (409, ConflictError),
    (413, PayloadTooLargeError),
    (422, UnprocessableEntityError),
    (429, RateLimitError),
    (500, ServerError),
    (501, ServerError),
    (502, ServerError),
    (503, ServerError),
    (504, ServerError),
]


def error_body(code="some_code", message="it went wrong", details=None):
    error = {"code": code, "message": message}
    if details is not None:
        error["details"] = details
    return {"error": error}


@pytest.mark.parametrize(("status", "cls"), STATUS_CLASSES)
def test_each_status_raises_its_class(client, server, status, cls):
    body = error_body()
    server.get(PROJECT_URL, status=status, json=body, headers={"X-Request-ID": "req-42"})

    with pytest.raises(cls) as raised:
        client.get_project("proj_1")

    error = raised.value
    assert type(error) is cls
    assert isinstance(error, AgentMeterAPIError)
    assert isinstance(error, AgentMeterError)
    assert error.status_code == status
    assert error.code == "some_code"
    assert error.error_code == "some_code"
    assert error.response_data == body
    assert error.request_id == "req-42"
    assert "it went wrong" in error.message
    assert str(error) == error.message
    assert str(status) in str(error)


def test_422_carries_the_details_naming_the_field(client, server):
    details = [{"field": "unit_price", "message": "must not be negative"}]
    server.get(PROJECT_URL, status=422, json=error_body("invalid_field", "bad field", details))

    with pytest.raises(UnprocessableEntityError) as raised:
        client.get_project("proj_1")

    assert raised.value.details == details
    assert "fix the named field" in str(raised.value)


def test_429_carries_retry_after(client, server):
    server.get(
        PROJECT_URL, status=429, json=error_body("rate_limited"), headers={"Retry-After": "7"}
    )

    with pytest.raises(RateLimitError) as raised:
        client.get_project("proj_1")

    assert raised.value.retry_after == 7.0
    assert raised.value.status_code == 429


def test_429_without_retry_after(client, server):
    server.get(PROJECT_URL, status=429)

    with pytest.raises(RateLimitError) as raised:
        client.get_project("proj_1")
    assert raised.value.retry_after is None


def test_an_unlisted_4xx_is_a_plain_api_error(client, server):
    server.get(PROJECT_URL, status=418, json=error_body("teapot"))

    with pytest.raises(AgentMeterAPIError) as raised:
        client.get_project("proj_1")
    assert type(raised.value) is AgentMeterAPIError
    assert raised.value.status_code == 418


def test_a_non_json_error_body_becomes_the_message(client, server):
    server.get(
        PROJECT_URL,
        status=502,
        body="<html><body>Bad Gateway from the proxy</body></html>",
        content_type="text/html",
    )

    with pytest.raises(ServerError) as raised:
        client.get_project("proj_1")

    error = raised.value
    assert error.status_code == 502
    assert error.code is None
    assert error.response_data is None
    assert error.details == []
    assert "Bad Gateway from the proxy" in error.message


def test_a_long_non_json_error_body_is_cut(client, server):
    server.get(PROJECT_URL, status=500, body="x" * 5000)

    with pytest.raises(ServerError) as raised:
        client.get_project("proj_1")
    assert len(raised.value.message) < 700


def test_an_empty_error_body_uses_the_reason(client, server):
    server.get(PROJECT_URL, status=503, body="")

    with pytest.raises(ServerError) as raised:
        client.get_project("proj_1")
    assert "Service Unavailable" in raised.value.message


def test_a_json_error_body_of_another_shape(client, server):
    server.get(PROJECT_URL, status=404, json={"detail": "Not Found"})

    with pytest.raises(NotFoundError) as raised:
        client.get_project("proj_1")
    assert "Not Found" in raised.value.message
    assert raised.value.response_data == {"detail": "Not Found"}


def test_a_json_list_error_body(client, server):
    server.get(PROJECT_URL, status=400, json=["bad", "request"])

    with pytest.raises(BadRequestError) as raised:
        client.get_project("proj_1")
    assert raised.value.response_data is None


def test_a_success_that_is_not_json_is_an_error(client, server):
    server.get(PROJECT_URL, status=200, body="<html>captive portal</html>")

    with pytest.raises(AgentMeterAPIError, match="not JSON") as raised:
        client.get_project("proj_1")
    assert raised.value.status_code == 200


def test_connection_errors_are_agentmeter_errors(client, server):
    server.get(PROJECT_URL, body=requests.ConnectTimeout("connect timed out"))

    with pytest.raises(AgentMeterConnectionError) as raised:
        client.get_project("proj_1")

    error = raised.value
    assert isinstance(error, AgentMeterError)
    assert (error.timeout, error.sent, error.error_code) == (True, False, "timeout")
    assert "GET http://meter.test/projects/proj_1 timed out" in str(error)


# ------------------------------------------------------------ the classes


@pytest.mark.parametrize(("status", "cls"), STATUS_CLASSES)
def test_error_class_for_status(status, cls):
    assert error_class_for_status(status) is cls


def test_api_error_builds_the_message_with_a_hint():
    error = api_error(401, "unknown key", code="bad_key", request_id="r1")

    assert isinstance(error, AuthenticationError)
    assert str(error) == "HTTP 401 bad_key: unknown key (check the API key (AGENTMETER_API_KEY))"
    assert repr(error) == (
        "AuthenticationError(status_code=401, code='bad_key', "
        "message='HTTP 401 bad_key: unknown key (check the API key (AGENTMETER_API_KEY))')"
    )


def test_api_errors_keep_the_0_2_positional_order():
    error = AgentMeterAPIError("boom", 500, {"error": {"code": "x"}})

    assert (error.message, error.status_code, error.response_data) == (
        "boom",
        500,
        {"error": {"code": "x"}},
    )
    assert error.details == []
    assert RateLimitError("slow").status_code == 429


def test_validation_error_is_a_value_error_naming_its_field():
    error = AgentMeterValidationError.for_field("unit_price", "must not be negative")

    assert isinstance(error, ValueError)
    assert isinstance(error, AgentMeterError)
    assert error.field == "unit_price"
    assert str(error) == "unit_price: must not be negative"
    assert error.errors == [{"field": "unit_price", "message": str(error)}]
    assert error.error_code == "validation_error"


def test_configuration_error_is_an_agentmeter_error():
    assert issubclass(AgentMeterConfigurationError, AgentMeterError)


def test_budget_exceeded_says_what_to_do():
    error = BudgetExceededError("user_1", Decimal("10"), Decimal("9.5"), Decimal("0.75"))

    assert error.error_code == "budget_exceeded"
    assert (error.threshold_amount, error.current_usage, error.requested_cost) == (
        Decimal("10"),
        Decimal("9.5"),
        Decimal("0.75"),
    )
    assert "'user_1'" in str(error)
    assert "set_user_meter()" in str(error)


@pytest.mark.parametrize(
    "error",
    [
        api_error(422, "bad", code="invalid", response_data={"error": {"details": [1]}}),
        api_error(429, "slow", retry_after=3.0, request_id="r"),
        api_error(503, "busy"),
        AgentMeterValidationError.for_field("amount", "must not be negative"),
        AgentMeterConnectionError("down", timeout=True, sent=False),
        AgentMeterConfigurationError("no project"),
        BudgetExceededError("user_1", Decimal("10"), Decimal("9.5"), Decimal("0.75")),
    ],
    ids=lambda error: type(error).__name__,
)
def test_errors_survive_pickling(error):
    # multiprocessing and Celery pickle what a worker raises
    copy = pickle.loads(pickle.dumps(error))

    assert type(copy) is type(error)
    assert str(copy) == str(error)
    assert vars(copy) == vars(error)
