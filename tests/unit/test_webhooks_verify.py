"""agentmeter.webhooks: a receiver checks a Standard Webhooks request (issue 17).

sign() and verify() wrap the reference ``standardwebhooks`` package, so a
request signed here verifies there and the other way round; verify() adds
a tolerance, header names in any case, exact decimals and a typed event.
"""

from __future__ import annotations

import base64
import json
import pickle
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import SecretStr
from standardwebhooks import Webhook

import agentmeter.errors
from agentmeter.errors import AgentMeterError, AgentMeterValidationError
from agentmeter.webhooks import WebhookEvent, WebhookSignatureError, new_secret, sign, verify

SECRET = "whsec_c2VjcmV0LW9mLXRoZS1lbmRwb2ludA=="
EVENT = {
    "id": "evt_1a2b",
    "type": "meter.threshold_crossed",
    "created_at": "2026-11-28T15:00:00Z",
    "project_id": "proj_1",
    "data": {
        "user_id": "u1",
        "share": "80",
        "threshold_amount": "10.00",
        "current_usage": "8.12",
        "period_start": None,
    },
}
BODY = json.dumps(EVENT)


def now() -> datetime:
    return datetime.now(timezone.utc)


def signed(body: str = BODY, secret: str = SECRET, at: datetime | None = None) -> dict[str, str]:
    return sign(body, secret, msg_id="evt_1a2b", timestamp=at or now())


def failure(body: str | bytes, headers: dict[str, str], secret: str = SECRET) -> str:
    with pytest.raises(WebhookSignatureError) as caught:
        verify(body, headers, secret)
    error = caught.value
    assert isinstance(error, AgentMeterError)
    for text in (str(error), repr(error), error.message):
        assert secret not in text
        assert secret.removeprefix("whsec_") not in text
        for part in headers.get("webhook-signature", "").replace(",", " ").split():
            assert len(part) < 8 or part not in text
    return error.reason


def test_a_signed_request_verifies_into_its_event() -> None:
    event = verify(BODY.encode(), signed(), SECRET)
    assert isinstance(event, WebhookEvent)
    assert event.id == "evt_1a2b"
    assert event.type == "meter.threshold_crossed"
    assert event.created_at == datetime(2026, 11, 28, 15, tzinfo=timezone.utc)
    assert event.project_id == "proj_1"
    assert event.data["current_usage"] == "8.12"


def test_the_three_headers_are_the_standard_ones() -> None:
    at = datetime(2026, 11, 28, 20, 0, 0, 900000, tzinfo=timezone(timedelta(hours=5)))
    headers = sign(BODY, SECRET, msg_id="evt_9", timestamp=at)
    assert set(headers) == {"webhook-id", "webhook-timestamp", "webhook-signature"}
    assert headers["webhook-id"] == "evt_9"
    # 20:00:00.9 at +05:00 is 15:00:00 UTC, in whole seconds
    assert headers["webhook-timestamp"] == str(
        int(datetime(2026, 11, 28, 15, tzinfo=timezone.utc).timestamp())
    )
    version, signature = headers["webhook-signature"].split(",")
    assert version == "v1"
    assert len(base64.b64decode(signature)) == 32  # HMAC-SHA256
    naive = sign(BODY, SECRET, msg_id="evt_9", timestamp=datetime(2026, 11, 28, 15))
    assert naive == headers  # a naive time is UTC


def test_a_changed_body_fails() -> None:
    headers = signed()
    assert failure(BODY.replace("8.12", "9.12"), headers) == "bad_signature"
    assert failure(BODY + " ", headers) == "bad_signature"


def test_a_changed_id_or_timestamp_fails() -> None:
    headers = signed()
    assert failure(BODY, {**headers, "webhook-id": "evt_other"}) == "bad_signature"
    earlier = str(int(headers["webhook-timestamp"]) - 1)
    assert failure(BODY, {**headers, "webhook-timestamp": earlier}) == "bad_signature"


def test_another_secret_fails() -> None:
    other = new_secret()
    assert failure(BODY, signed(), other) == "bad_signature"
    assert failure(BODY, signed(secret=other), SECRET) == "bad_signature"


@pytest.mark.parametrize("header", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_a_missing_header_fails_and_is_named(header: str) -> None:
    headers = signed()
    del headers[header]
    with pytest.raises(WebhookSignatureError, match=header) as caught:
        verify(BODY, headers, SECRET)
    assert caught.value.reason == "missing_headers"
    assert failure(BODY, {**signed(), header: ""}) == "missing_headers"


def test_an_old_or_future_timestamp_fails() -> None:
    assert failure(BODY, signed(at=now() - timedelta(minutes=6))) == "too_old"
    assert failure(BODY, signed(at=now() + timedelta(minutes=6))) == "too_new"
    with pytest.raises(WebhookSignatureError, match="too old"):
        verify(BODY, signed(at=now() - timedelta(minutes=6)), SECRET)


def test_the_tolerance_narrows_the_window() -> None:
    two_minutes_ago = signed(at=now() - timedelta(minutes=2))
    verify(BODY, two_minutes_ago, SECRET)
    with pytest.raises(WebhookSignatureError) as caught:
        verify(BODY, two_minutes_ago, SECRET, tolerance=timedelta(minutes=1))
    assert caught.value.reason == "too_old"
    later = signed(at=now() + timedelta(seconds=90))
    with pytest.raises(WebhookSignatureError) as caught:
        verify(BODY, later, SECRET, tolerance=timedelta(seconds=30))
    assert caught.value.reason == "too_new"


@pytest.mark.parametrize("tolerance", [timedelta(minutes=6), timedelta(0), timedelta(seconds=-1)])
def test_a_tolerance_outside_the_packages_window_is_refused(tolerance: timedelta) -> None:
    with pytest.raises(AgentMeterValidationError, match="tolerance"):
        verify(BODY, signed(), SECRET, tolerance=tolerance)


@pytest.mark.parametrize("value", ["soon", "", "nan", "inf", "1e400"])
def test_a_timestamp_that_is_not_a_time_fails(value: str) -> None:
    reason = failure(BODY, {**signed(), "webhook-timestamp": value})
    assert reason in {"bad_timestamp", "missing_headers"}


@pytest.mark.parametrize(
    "signature", ["garbage", "v1", "v1,a,b", "v1,not base64!", "v2,AAAA", "v1a,AAAA"]
)
def test_a_malformed_or_unknown_signature_fails(signature: str) -> None:
    reason = failure(BODY, {**signed(), "webhook-signature": signature})
    assert reason in {"malformed_signature", "bad_signature"}


def test_one_matching_signature_among_several_is_enough() -> None:
    headers = signed()
    rotated = signed(secret=new_secret())["webhook-signature"]
    both = f"{rotated} {headers['webhook-signature']}"
    assert verify(BODY, {**headers, "webhook-signature": both}, SECRET).id == "evt_1a2b"


def test_header_names_in_any_case() -> None:
    headers = signed()
    upper = {name.upper(): value for name, value in headers.items()}
    title = {name.title(): value for name, value in headers.items()}
    assert verify(BODY, upper, SECRET).id == "evt_1a2b"
    assert verify(BODY, title, SECRET).id == "evt_1a2b"


def test_starlette_headers_work() -> None:
    starlette = pytest.importorskip("starlette.datastructures")
    raw = [(name.title().encode(), value.encode()) for name, value in signed().items()]
    assert verify(BODY, starlette.Headers(raw=raw), SECRET).id == "evt_1a2b"


def test_money_stays_exact() -> None:
    event = dict(EVENT, data={"spend": "251.20", "limit": 250.10, "tiny": 0.1, "n": 3})
    body = json.dumps(event)
    data = verify(body, signed(body), SECRET).data
    assert data["spend"] == "251.20"
    assert isinstance(data["limit"], Decimal)
    assert data["limit"] == Decimal("250.10")
    assert data["tiny"] == Decimal("0.1")
    assert data["n"] == 3


def test_the_secret_may_be_a_secretstr_without_prefix() -> None:
    headers = signed()
    assert verify(BODY, headers, SecretStr(SECRET)).id == "evt_1a2b"
    assert verify(BODY, headers, SECRET.removeprefix("whsec_")).id == "evt_1a2b"
    assert verify(BODY, headers, SECRET.rstrip("=")).id == "evt_1a2b"  # unpadded


@pytest.mark.parametrize("secret", ["whsec_", "", "whsec_not*base64*at*all", "whsec_ab$cd"])
def test_a_secret_that_is_not_base64_is_refused_without_being_shown(secret: str) -> None:
    with pytest.raises(WebhookSignatureError) as caught:
        verify(BODY, signed(), secret)
    assert caught.value.reason == "bad_secret"
    if secret.removeprefix("whsec_"):
        assert secret.removeprefix("whsec_") not in str(caught.value)
    with pytest.raises(WebhookSignatureError):
        sign(BODY, secret, msg_id="evt_1", timestamp=now())


def test_a_body_that_is_not_utf8_fails() -> None:
    assert failure(b"\xff\xfe", signed()) == "bad_body"


def test_a_signed_body_that_is_not_an_event_is_a_validation_error() -> None:
    for body in ("[1, 2]", "not json", json.dumps({"id": "evt_1"})):
        with pytest.raises(AgentMeterValidationError):
            verify(body, signed(body), SECRET)


def test_the_error_is_an_agentmeter_error_that_pickles() -> None:
    assert issubclass(agentmeter.errors.WebhookSignatureError, AgentMeterError)
    assert WebhookSignatureError is agentmeter.errors.WebhookSignatureError
    error = WebhookSignatureError("the webhook is too old", "too_old")
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.message, copy.reason, copy.error_code) == (
        error.message,
        "too_old",
        "webhook_signature_invalid",
    )


def test_new_secrets_are_24_random_bytes() -> None:
    made = {new_secret() for _ in range(50)}
    assert len(made) == 50
    for secret in made:
        assert secret.startswith("whsec_")
        assert len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) == 24


def test_interoperates_with_the_reference_package() -> None:
    secret = new_secret()
    ours = signed(secret=secret)
    assert Webhook(secret).verify(BODY, ours, json_parse=False) is None
    moment = now()
    theirs = {
        "webhook-id": "msg_2",
        "webhook-timestamp": str(int(moment.timestamp())),
        "webhook-signature": Webhook(secret).sign("msg_2", moment, BODY),
    }
    assert verify(BODY, theirs, secret).id == "evt_1a2b"


# Bodies: arbitrary JSON-safe text in the event's data, and any secret bytes.
_text = st.text(max_size=200)
_secrets = st.binary(min_size=1, max_size=64).map(
    lambda key: "whsec_" + base64.b64encode(key).decode()
)


@settings(max_examples=150, deadline=None)
@given(
    note=_text,
    amount=st.decimals(allow_nan=False, allow_infinity=False, places=6),
    secret=_secrets,
    msg_id=st.text(min_size=1, max_size=40),
)
def test_round_trip_of_random_bodies_and_secrets(
    note: str, amount: Decimal, secret: str, msg_id: str
) -> None:
    body = json.dumps(dict(EVENT, data={"note": note, "amount": str(amount)}))
    headers = sign(body, secret, msg_id=msg_id, timestamp=now())
    event = verify(body.encode("utf-8"), headers, secret)
    assert event.data == {"note": note, "amount": str(amount)}
    Webhook(secret).verify(body, headers, json_parse=False)
    changed = body.replace('"note"', '"Note"')
    with pytest.raises(WebhookSignatureError):
        verify(changed, headers, secret)


@settings(max_examples=50, deadline=None)
@given(secret=_secrets, other=_secrets)
def test_random_other_secrets_never_verify(secret: str, other: str) -> None:
    if Webhook(secret)._whsecret == Webhook(other)._whsecret:
        return
    with pytest.raises(WebhookSignatureError) as caught:
        verify(BODY, signed(secret=secret), other)
    assert other.removeprefix("whsec_") not in str(caught.value)
