"""One exception hierarchy, rooted at :class:`AgentMeterError`.

Every message says what went wrong and what to do about it. No message,
``repr`` or attribute ever holds an API key: texts that come from outside
(server bodies, library exceptions) pass through :func:`scrub` first.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any
from urllib.parse import unquote_plus

# The wire error code of an event stamped after the server's clock allows:
# not bad content (a fast client clock), so a tracker sends it again later.
TIMESTAMP_IN_FUTURE = "timestamp_in_future"

# Anything that looks like a bearer token or one of our keys is masked.
_SECRET_PATTERNS = (
    re.compile(r"(?i)(bearer\s+)[^\s\"',]+"),
    re.compile(r"\bam_(?:proj|admin)_[A-Za-z0-9_\-]+"),
)
# The value of a query parameter (or ``name=value`` pair) named like a credential.
_CREDENTIAL_PARAM = re.compile(
    r"(?i)(?<![A-Za-z0-9_\-])("
    r"(?:x[-_])?api[-_]?key|key|(?:access[-_]|refresh[-_]|id[-_])?token|auth|authorization"
    r"|secret|password|passwd"
    r")(=)[^&\s\"'#;,]*"
)
# A secret is masked only as a whole token, never inside a longer word.
_WORD_CHARS = r"A-Za-z0-9_\-"
_MAX_DECODE_ROUNDS = 5


def scrub(text: str, secrets: Iterable[str | None] = ()) -> str:
    """Return ``text`` with the given secrets and key-like tokens masked.

    Percent-encoded (also doubly encoded, ``+`` for space) words are decoded
    before matching; a word that hides a secret is shown decoded and masked.
    """
    patterns = [_secret_pattern(secret) for secret in secrets if secret]
    words = re.split(r"(\s+)", _mask(text, patterns))
    return "".join(_scrub_word(word, patterns) for word in words)


def _secret_pattern(secret: str) -> re.Pattern[str]:
    return re.compile(rf"(?<![{_WORD_CHARS}]){re.escape(secret)}(?![{_WORD_CHARS}])")


def _mask(text: str, patterns: list[re.Pattern[str]]) -> str:
    text = _CREDENTIAL_PARAM.sub(r"\1\2***", text)
    for pattern in patterns:
        text = pattern.sub("***", text)
    text = _SECRET_PATTERNS[0].sub(r"\1***", text)
    return _SECRET_PATTERNS[1].sub("***", text)


def _scrub_word(word: str, patterns: list[re.Pattern[str]]) -> str:
    if "%" not in word and "+" not in word:
        return word
    decoded = _fully_decoded(word)
    masked = _mask(decoded, patterns)
    # Only a word that hid something is shown decoded; the rest stay as written.
    return masked if masked != decoded else word


def _fully_decoded(text: str) -> str:
    for _ in range(_MAX_DECODE_ROUNDS):
        decoded = unquote_plus(text)
        if decoded == text:
            break
        text = decoded
    return text


def scrub_data(value: Any, secrets: Iterable[str | None] = ()) -> Any:
    """:func:`scrub` every string inside parsed JSON (dicts, lists, strings)."""
    secrets = list(secrets)
    if isinstance(value, str):
        return scrub(value, secrets)
    if isinstance(value, Mapping):
        return {key: scrub_data(item, secrets) for key, item in value.items()}
    if isinstance(value, list):
        return [scrub_data(item, secrets) for item in value]
    return value


class AgentMeterError(Exception):
    """Root of every error this package raises."""

    def __init__(self, message: str, error_code: str | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.error_code = error_code
        self.extra_data = extra

    def __str__(self) -> str:
        return self.message


class AgentMeterValidationError(AgentMeterError, ValueError):
    """Invalid input, raised at the call site before anything is sent.

    ``field`` names the first offending field; ``errors`` lists all of them
    as ``{"field", "message"}`` dicts.
    """

    def __init__(
        self,
        message: str,
        field: str | None = None,
        errors: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(message, error_code="validation_error")
        self.field = field
        self.errors = errors if errors is not None else [{"field": field, "message": message}]

    @classmethod
    def for_field(cls, field: str, problem: str) -> AgentMeterValidationError:
        return cls(f"{field}: {problem}", field=field)


class AgentMeterConfigurationError(AgentMeterError):
    """The client or tracker is set up in a way that cannot work."""


class AgentMeterConnectionError(AgentMeterError):
    """The server could not be reached, or did not answer in time."""

    def __init__(self, message: str, *, timeout: bool = False, sent: bool = True) -> None:
        super().__init__(message, error_code="timeout" if timeout else "connection_error")
        self.timeout = timeout
        # False when the request certainly never reached the server
        # (connection refused, DNS failure): then even a non-idempotent
        # request is safe to send again.
        self.sent = sent


class AgentMeterAPIError(AgentMeterError):
    """The server answered with an error status.

    The positional order ``(message, status_code, response_data)`` is the one
    AgentMeter 0.2 used; ``code`` and ``request_id`` are new.
    """

    def __init__(
        self,
        message: str,
        status_code: int | None = None,
        response_data: Mapping[str, Any] | None = None,
        *,
        code: str | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message, error_code=code)
        self.status_code = status_code
        self.code = code
        self.response_data = dict(response_data) if response_data is not None else None
        self.request_id = request_id

    @property
    def details(self) -> list[Any]:
        error = (self.response_data or {}).get("error")
        if isinstance(error, Mapping):
            details = error.get("details")
            if isinstance(details, list):
                return details
        return []

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(status_code={self.status_code!r}, "
            f"code={self.code!r}, message={self.message!r})"
        )


class BadRequestError(AgentMeterAPIError):
    """400: the request was malformed."""


class AuthenticationError(AgentMeterAPIError):
    """401: the API key is missing or not valid."""


class PermissionDeniedError(AgentMeterAPIError):
    """403: the key is valid but belongs to another project, or is not an admin key."""


class NotFoundError(AgentMeterAPIError):
    """404: unknown path or object."""


class ConflictError(AgentMeterAPIError):
    """409: the request conflicts with what is stored."""


class PayloadTooLargeError(AgentMeterAPIError):
    """413: the request body is larger than the server accepts."""


class UnprocessableEntityError(AgentMeterAPIError):
    """422: a field is invalid; ``details`` names it."""


class RateLimitError(AgentMeterAPIError):
    """429: too many requests; ``retry_after`` is the server's advice in seconds."""

    def __init__(
        self,
        message: str,
        status_code: int | None = 429,
        response_data: Mapping[str, Any] | None = None,
        *,
        code: str | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, status_code, response_data, code=code, request_id=request_id)
        self.retry_after = retry_after


class ServerError(AgentMeterAPIError):
    """5xx: the server failed."""


class BudgetExceededError(AgentMeterError):
    """A user's meter has no room for the requested cost; the work did not run."""

    def __init__(
        self,
        user_id: str,
        threshold_amount: Decimal,
        current_usage: Decimal,
        requested_cost: Decimal,
    ) -> None:
        super().__init__(
            f"user {user_id!r} is over budget: usage {current_usage} + cost "
            f"{requested_cost} exceeds the threshold {threshold_amount}; raise the "
            "threshold with set_user_meter() or reset the meter",
            error_code="budget_exceeded",
        )
        self.user_id = user_id
        self.threshold_amount = threshold_amount
        self.current_usage = current_usage
        self.requested_cost = requested_cost

    def __reduce__(self) -> tuple[Any, ...]:
        # Exceptions pickle as cls(*args); this one needs its four fields
        # (multiprocessing and Celery pickle what a worker raises).
        fields = (self.user_id, self.threshold_amount, self.current_usage, self.requested_cost)
        return (type(self), fields)


class WebhookSignatureError(AgentMeterError):
    """A webhook request is not a genuine, fresh one signed with the endpoint's secret.

    Raised by :func:`agentmeter.webhooks.verify` (answer such a request with
    400, and do not act on it). ``reason`` says what failed, one of
    ``"missing_headers"``, ``"bad_timestamp"``, ``"too_old"``, ``"too_new"``,
    ``"bad_signature"`` (wrong secret, or body or headers changed on the way),
    ``"malformed_signature"``, ``"bad_body"`` (not UTF-8), ``"bad_secret"``.
    The message never holds the secret nor a signature.
    """

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message, error_code="webhook_signature_invalid")
        self.reason = reason

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.message, self.reason))


_STATUS_CLASSES: dict[int, type[AgentMeterAPIError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    413: PayloadTooLargeError,
    422: UnprocessableEntityError,
    429: RateLimitError,
}

_HINTS: dict[type[AgentMeterAPIError], str] = {
    AuthenticationError: "check the API key (AGENTMETER_API_KEY)",
    PermissionDeniedError: "use a key of this project, or an admin key for project management",
    NotFoundError: "check the id, and that the server speaks this API version",
    PayloadTooLargeError: "send fewer events per batch or smaller metadata",
    UnprocessableEntityError: "fix the named field",
    RateLimitError: "slow down or retry later",
    ServerError: "the server failed; try again later",
}


def error_class_for_status(status_code: int) -> type[AgentMeterAPIError]:
    if status_code >= 500:
        return ServerError
    return _STATUS_CLASSES.get(status_code, AgentMeterAPIError)


def api_error(
    status_code: int,
    message: str,
    *,
    code: str | None = None,
    response_data: Mapping[str, Any] | None = None,
    request_id: str | None = None,
    retry_after: float | None = None,
) -> AgentMeterAPIError:
    """Build the right :class:`AgentMeterAPIError` subclass for a status code."""
    cls = error_class_for_status(status_code)
    hint = _HINTS.get(cls)
    text = f"HTTP {status_code} {code or 'error'}: {message}"
    if hint:
        text = f"{text} ({hint})"
    if cls is RateLimitError:
        return RateLimitError(
            text,
            status_code,
            response_data,
            code=code,
            request_id=request_id,
            retry_after=retry_after,
        )
    return cls(text, status_code, response_data, code=code, request_id=request_id)
