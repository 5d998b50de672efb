"""HTTP transport: one pooled ``requests.Session``, timeouts always set, one retry layer.

urllib3's own retries are switched off (``max_retries=0``) so they cannot
multiply with :class:`~agentmeter.transport.retry.RetryPolicy`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from email.utils import parsedate_to_datetime
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import NameResolutionError, NewConnectionError

from .._version import __version__
from ..core import jsonio as _json
from ..core.lifecycle import register_fork_reset
from ..errors import (
    AgentMeterAPIError,
    AgentMeterConnectionError,
    api_error,
    scrub,
    scrub_data,
)
from .retry import RetryPolicy

logger = logging.getLogger("agentmeter")
USER_AGENT = f"agentmeter-python/{__version__}"
_MAX_ERROR_TEXT = 500


class HttpTransport:
    """Speaks the wire API to ``base_url`` with ``Authorization: Bearer <key>``."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        *,
        timeout: float = 10.0,
        connect_timeout: float = 5.0,
        retry: RetryPolicy | None = None,
        pool_size: int = 10,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._timeouts = (connect_timeout, timeout)
        self.retry = retry or RetryPolicy()
        self._pool_size = pool_size
        self._session = self._new_session()
        register_fork_reset(self)

    def _new_session(self) -> requests.Session:
        session = requests.Session()
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=self._pool_size, max_retries=0)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        session.headers.update({"User-Agent": USER_AGENT, "Accept": "application/json"})
        if self._api_key:
            session.headers["Authorization"] = f"Bearer {self._api_key}"
        return session

    def after_fork_in_child(self) -> None:
        """Pooled sockets belong to the parent; the child opens its own."""
        self._session = self._new_session()

    default_project_id: str | None = None

    @property
    def describe(self) -> str:
        return self.base_url

    def __repr__(self) -> str:
        return f"HttpTransport(base_url={self.base_url!r})"

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
        """Send one request, retried under the policy; return the parsed JSON answer."""
        return self.retry.run(
            lambda: self.send_once(method, path, params=params, body=body),
            idempotent=idempotent,
            sleep=sleep,
            describe=f"{method} {path}",
        )

    def send_once(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
    ) -> Any:
        started = time.perf_counter()
        data = _json.encode_body(body)
        headers = {"Content-Type": "application/json"} if data is not None else None
        response = self._send(method, path, params=params, data=data, headers=headers)
        logger.debug(
            "%s %s -> %d in %.1f ms",
            method,
            path,
            response.status_code,
            (time.perf_counter() - started) * 1000,
        )
        if response.status_code >= 400:
            raise self._api_error(response)
        if 300 <= response.status_code < 400:
            location = response.headers.get("Location", "?")
            raise self._api_error(
                response, f"the server redirects to {location}; use that URL as base_url"
            )
        if response.status_code == 204 or not response.content:
            return None
        try:
            return _json.loads(response.content)
        except ValueError:
            pass
        raise self._api_error(response, "the answer is not JSON")

    def _send(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None,
        data: bytes | None,
        headers: dict[str, str] | None,
    ) -> requests.Response:
        try:
            return self._session.request(
                method,
                self.base_url + path,
                params=query_pairs(params),
                data=data,
                headers=headers,
                timeout=self._timeouts,
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            error = self._connection_error(exc, method, path)
        # Raised outside the except block: ``from None`` would still keep the
        # requests exception as __context__, and its .request holds the
        # Authorization header.
        raise error

    def close(self) -> None:
        self._session.close()

    def _connection_error(
        self, exc: requests.RequestException, method: str, path: str
    ) -> AgentMeterConnectionError:
        timeout = isinstance(exc, requests.Timeout)
        sent = not (isinstance(exc, requests.ConnectTimeout) or _never_connected(exc))
        what = "timed out" if timeout else "failed"
        text = scrub(f"{method} {self.base_url}{path} {what}: {exc}", [self._api_key])
        hint = "; check that the server at AGENTMETER_BASE_URL is running and reachable"
        return AgentMeterConnectionError(text + hint, timeout=timeout, sent=sent)

    def _api_error(
        self, response: requests.Response, problem: str | None = None
    ) -> AgentMeterAPIError:
        payload: dict[str, Any] | None = None
        code, message = None, problem or response.reason or "error"
        try:
            parsed = _json.loads(response.content) if response.content else None
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
        elif response.text and problem is None:
            message = response.text[:_MAX_ERROR_TEXT]
        return api_error(
            response.status_code,
            scrub(message, [self._api_key]),
            code=code,
            response_data=scrub_data(payload, [self._api_key]),
            request_id=response.headers.get("X-Request-ID"),
            retry_after=_retry_after(response.headers.get("Retry-After")),
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


def _never_connected(exc: requests.RequestException) -> bool:
    """True when the TCP connection was never made, so nothing reached the server."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, (NewConnectionError, NameResolutionError, ConnectionRefusedError)):
            return True
        reason = getattr(current, "reason", None)
        nested = (
            current.args[0] if current.args and isinstance(current.args[0], BaseException) else None
        )
        current = (
            reason
            if isinstance(reason, BaseException)
            else nested or current.__cause__ or current.__context__
        )
    return False


def _retry_after(header: str | None) -> float | None:
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
