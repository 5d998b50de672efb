"""HTTP transport: one pooled ``requests.Session``, timeouts always set, one retry layer.

urllib3's own retries are switched off (``max_retries=0``) so they cannot
multiply with :class:`~agentmeter.transport.retry.RetryPolicy`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import NameResolutionError, NewConnectionError

from .._version import __version__
from ..core import jsonio as _json
from ..core.lifecycle import register_fork_reset
from ..errors import AgentMeterConnectionError, scrub
from .http_wire import HttpAnswer, query_pairs, read_answer
from .http_wire import retry_after as _retry_after  # noqa: F401 - tests import it from here
from .retry import RetryPolicy

logger = logging.getLogger("agentmeter")
USER_AGENT = f"agentmeter-python/{__version__}"


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
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self._timeouts = (connect_timeout, timeout)
        self.retry = retry or RetryPolicy()
        self.pool_size = pool_size
        self._session = self._new_session()
        register_fork_reset(self)

    def _new_session(self) -> requests.Session:
        session = requests.Session()
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=self.pool_size, max_retries=0)
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
        content_type: str | None = None,
    ) -> Any:
        """Send one request, retried under the policy; return the parsed JSON answer."""
        return self.retry.run(
            lambda: self.send_once(
                method, path, params=params, body=body, content_type=content_type
            ),
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
        content_type: str | None = None,
    ) -> Any:
        started = time.perf_counter()
        data = _json.encode_body(body)
        headers = {"Content-Type": content_type or "application/json"} if data is not None else None
        response = self._send(method, path, params=params, data=data, headers=headers)
        logger.debug(
            "%s %s -> %d in %.1f ms",
            method,
            path,
            response.status_code,
            (time.perf_counter() - started) * 1000,
        )
        answer = HttpAnswer(
            response.status_code,
            response.reason,
            response.content,
            response.headers,
            lambda: response.text,
        )
        return read_answer(answer, self._api_key)

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
