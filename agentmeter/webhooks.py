"""Receive AgentMeter's webhooks: check that a request is genuine, then read its event.

AgentMeter signs every webhook request by the Standard Webhooks spec
(https://www.standardwebhooks.com): ``webhook-id``, ``webhook-timestamp``
and ``webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">``,
keyed with the endpoint's secret (``whsec_<base64>``, shown once when the
endpoint is created). The signature itself is checked by the reference
``standardwebhooks`` package; this module adds a tolerance, header names in
any case and from any mapping, exact decimals, and a typed event.

>>> from agentmeter.webhooks import verify, WebhookSignatureError
>>> event = verify(request_body, request_headers, secret)  # doctest: +SKIP
>>> event.type, event.data["share"]  # doctest: +SKIP
('meter.threshold_crossed', '80')

An event may arrive twice in rare cases (a 2xx answer lost on the way):
deduplicate by ``event.id`` (the ``webhook-id`` header). docs/alerts.md shows
FastAPI and Flask receivers.
"""

from __future__ import annotations

import base64
import binascii
import math
import secrets as _random
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

from pydantic import SecretStr
from standardwebhooks import Webhook, WebhookVerificationError

from .core.base_model import AgentMeterModel
from .core.fields import UtcDatetime
from .core.jsonio import loads
from .errors import AgentMeterValidationError, WebhookSignatureError

__all__ = ["WebhookEvent", "WebhookSignatureError", "new_secret", "sign", "verify"]

_WHSEC = "whsec_"
# The window of the standardwebhooks package itself: ``tolerance`` can only narrow it.
MAX_TOLERANCE = timedelta(minutes=5)
_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")
# What the package's messages mean, as (reason, our message).
_PACKAGE_ERRORS = {
    "Message timestamp too old": ("too_old", "the webhook is too old (webhook-timestamp)"),
    "Message timestamp too new": (
        "too_new",
        "the webhook's timestamp is too far in the future (webhook-timestamp)",
    ),
    "Invalid Signature Headers": ("bad_timestamp", "webhook-timestamp is not a Unix time"),
    "Missing required headers": ("missing_headers", "a Standard Webhooks header is missing"),
}
_NO_MATCH = (
    "bad_signature",
    "the webhook signature does not match: the body or headers were changed "
    "after signing, or the secret is not this endpoint's",
)


class WebhookEvent(AgentMeterModel):
    """One event, as a webhook request carries it (docs/alerts.md).

    ``data`` depends on ``type``; money in it is decimal text (``"8.12"``),
    and any JSON number is a :class:`~decimal.Decimal`, never a float.
    """

    id: str
    type: str
    created_at: UtcDatetime
    project_id: str
    data: dict[str, Any]


def new_secret() -> str:
    """A new endpoint secret: ``whsec_`` and 24 random bytes in base64."""
    return _WHSEC + base64.b64encode(_random.token_bytes(24)).decode("ascii")


def sign(body: str, secret: str | SecretStr, *, msg_id: str, timestamp: datetime) -> dict[str, str]:
    """The three Standard Webhooks headers of ``body`` sent as ``msg_id`` at ``timestamp``.

    A naive ``timestamp`` is taken as UTC; an aware one in any zone is
    converted. Raises :class:`WebhookSignatureError` for a secret that is
    not ``whsec_`` and base64.
    """
    if not msg_id:
        raise AgentMeterValidationError.for_field("msg_id", "must not be empty")
    hook = _webhook(secret)
    # The package takes any datetime as UTC (it replaces the zone): convert first.
    if timestamp.tzinfo is None:
        moment = timestamp.replace(tzinfo=timezone.utc)
    else:
        moment = timestamp.astimezone(timezone.utc)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(math.floor(moment.timestamp())),
        "webhook-signature": hook.sign(msg_id, moment, body),
    }


def verify(
    body: bytes | str,
    headers: Mapping[str, str],
    secret: str | SecretStr,
    *,
    tolerance: timedelta = MAX_TOLERANCE,
) -> WebhookEvent:
    """Check a webhook request and return its event; raise if it is not genuine.

    ``body`` is the raw request body, exactly as received (parse nothing
    first); ``headers`` any mapping of the request's headers, names in any
    case (Starlette's, Flask's, a plain dict). ``tolerance`` is how far
    ``webhook-timestamp`` may be from this machine's clock, either way; at
    most 5 minutes (the package's own window: a larger value is refused).

    Raises :class:`WebhookSignatureError` (``.reason`` says why) when a
    header is missing, the timestamp is outside the tolerance, the signature
    does not match, or the secret is not ``whsec_`` and base64; and
    :class:`~agentmeter.errors.AgentMeterValidationError` when a correctly
    signed body is not an AgentMeter event.
    """
    if not timedelta(0) < tolerance <= MAX_TOLERANCE:
        raise AgentMeterValidationError.for_field(
            "tolerance", "must be more than 0 and at most 5 minutes (the Standard Webhooks window)"
        )
    hook = _webhook(secret)
    found = {name.lower(): value for name, value in headers.items()}
    missing = [name for name in _HEADERS if not found.get(name)]
    if missing:
        raise WebhookSignatureError(
            f"not a signed webhook: missing header(s) {', '.join(missing)}", "missing_headers"
        )
    _check_time(found["webhook-timestamp"], tolerance)
    if isinstance(body, bytes):
        try:
            body = body.decode("utf-8")
        except UnicodeDecodeError:
            raise WebhookSignatureError("the webhook body is not UTF-8", "bad_body") from None
    _check_signature(hook, body, {name: found[name] for name in _HEADERS})
    return _event(body)


def _webhook(secret: str | SecretStr) -> Webhook:
    """The package's signer for ``secret``; a secret that is not base64 is refused
    here (the package would drop the stray characters and use another key)."""
    text = secret.get_secret_value() if isinstance(secret, SecretStr) else secret
    if not isinstance(text, str):
        raise WebhookSignatureError("the webhook secret must be a string", "bad_secret")
    text = text.strip().removeprefix(_WHSEC)
    try:
        key = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if not key:
        raise WebhookSignatureError(
            "the webhook secret is not valid: expected 'whsec_' and base64, as the "
            "endpoint's creation answered it",
            "bad_secret",
        )
    return Webhook(key)


def _check_time(header: str, tolerance: timedelta) -> None:
    try:
        sent = float(header.strip())
    except ValueError:
        sent = math.nan
    if not math.isfinite(sent):
        raise WebhookSignatureError(
            "webhook-timestamp is not a Unix time in seconds", "bad_timestamp"
        )
    age = datetime.now(timezone.utc).timestamp() - sent
    limit = tolerance.total_seconds()
    if age > limit:
        raise WebhookSignatureError(
            f"the webhook is too old: signed {age:.0f} s ago, more than the "
            f"tolerance of {limit:g} s (a replay, or a clock far off)",
            "too_old",
        )
    if -age > limit:
        raise WebhookSignatureError(
            f"the webhook's timestamp is {-age:.0f} s in the future, more than the "
            f"tolerance of {limit:g} s (check the clocks)",
            "too_new",
        )


def _check_signature(hook: Webhook, body: str, headers: dict[str, str]) -> None:
    try:
        hook.verify(body, headers, json_parse=False)
    except WebhookVerificationError as exc:
        reason, message = _PACKAGE_ERRORS.get(str(exc), _NO_MATCH)
        raise WebhookSignatureError(message, reason) from None
    except ValueError:  # a signature without "v1,", or not base64
        raise WebhookSignatureError(
            "the webhook-signature header is malformed (expected 'v1,<base64>')",
            "malformed_signature",
        ) from None


def _event(body: str) -> WebhookEvent:
    try:
        parsed = loads(body)
    except (ValueError, RecursionError):
        parsed = None
    if not isinstance(parsed, dict):
        raise AgentMeterValidationError(
            "the webhook is signed correctly but its body is not a JSON object", field=None
        )
    return WebhookEvent.from_dict(parsed)
