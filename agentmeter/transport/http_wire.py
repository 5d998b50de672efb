"""What both HTTP transports share: the query string they send, and how they read an answer.

The sync transport speaks through ``requests``, the async one through
``httpx``; each turns its library's response into an :class:`HttpAnswer`
and lets :func:`read_answer` decide what it means (the JSON, or the
agentmeter error of that status), so the two can never map an answer
differently. Text that comes from the server is scrubbed of the key first.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

from ..core import jsonio as _json
from ..errors import AgentMeterAPIError, api_error, scrub, scrub_data

_MAX_ERROR_TEXT = 500


@dataclass(frozen=True)
class HttpAnswer:
    """One HTTP response, as either library gives it."""

    status: int
    reason: str | None
    content: bytes
    headers: Mapping[str, str]  # case-insensitive in both libraries
    text: Callable[[], str]  # the body decoded as the library decodes it (error paths only)


def read_answer(answer: HttpAnswer, api_key: str | None) -> Any:
    """The parsed JSON of a success, or raise the error the status means."""
    if answer.status >= 400:
        raise api_error_of(answer, api_key)
    if 300 <= answer.status < 400:
        location = answer.headers.get("Location", "?")
        raise api_error_of(
            answer, api_key, f"the server redirects to {location}; use that URL as base_url"
        )
    if answer.status == 204 or not answer.content:
        return None
    try:
        return _json.loads(answer.content)
    except ValueError:
        pass
    raise api_error_of(answer, api_key, "the answer is not JSON")


def api_error_of(
    answer: HttpAnswer, api_key: str | None, problem: str | None = None
) -> AgentMeterAPIError:
    """The agentmeter error of an answer (the server's code and message when it sent them)."""
    payload: dict[str, Any] | None = None
    code, message = None, problem or answer.reason or "error"
    try:
        parsed = _json.loads(answer.content) if answer.content else None
    except ValueError:
        parsed = None
    if isinstance(parsed, dict):
        payload = parsed
        error = parsed.get("error")
        if isinstance(error, Mapping):
            code = str(error.get("code") or "") or None
            message = str(error.get("message") or message)
        elif "detail" in parsed:  # servers that answer FastAPI's default shape
            message = str(parsed["detail"])
    elif problem is None:
        text = answer.text()
        if text:
            message = text[:_MAX_ERROR_TEXT]
    return api_error(
        answer.status,
        scrub(message, [api_key]),
        code=code,
        response_data=scrub_data(payload, [api_key]),
        request_id=answer.headers.get("X-Request-ID"),
        retry_after=retry_after(answer.headers.get("Retry-After")),
    )


def query_pairs(params: Mapping[str, Any] | None) -> list[tuple[str, str]] | None:
    """Drop None values, repeat list values, write decimals and times exactly."""
    if not params:
        return None
    pairs: list[tuple[str, str]] = []
    for key, value in params.items():
        values = value if isinstance(value, (list, tuple)) else [value]
        for item in values:
            if item is not None:
                pairs.append((key, _query_text(item)))
    return pairs


def _query_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    encoded = _json.dumps(value)  # decimals, times, enums in their wire text
    return encoded[1:-1] if encoded.startswith('"') else encoded


def retry_after(header: str | None) -> float | None:
    """Seconds a ``Retry-After`` header asks for (a number, or an HTTP date)."""
    if not header:
        return None
    try:
        return max(0.0, float(header))
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(header)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - time.time())
