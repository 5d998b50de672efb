"""Async HTTP transport: one pooled ``httpx.AsyncClient``, the sync transport's rules.

The same timeouts (``timeout`` per read, ``connect_timeout``), the same one
retry layer (:meth:`RetryPolicy.arun <agentmeter.transport.retry.RetryPolicy.arun>`:
tenacity's ``AsyncRetrying`` with the same policy object, statuses,
``Retry-After`` and deadline), the same reading of answers
(:mod:`~agentmeter.transport.http_wire`). httpx follows no redirect and
retries nothing itself, so nothing multiplies the attempts underneath.

The one non-obvious decision: which failures mean the request never reached
the server (``sent=False``, so even a non-idempotent call is retried). httpx
says so by class: a refused or unresolvable connection (``ConnectError``),
a connect timeout, or no free connection in the pool in time
(``PoolTimeout``); anything later may have been acted on.

Needs the ``async`` extra (``pip install 'agentmeter[async]'``). An
``httpx.AsyncClient`` belongs to the event loop that first used it: use one
async client per loop.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import httpx

from .._version import __version__
from ..core import jsonio as _json
from ..core.lifecycle import register_fork_reset
from ..errors import AgentMeterConnectionError, scrub
from .http_wire import HttpAnswer, query_pairs, read_answer
from .retry import RetryPolicy

logger = logging.getLogger("agentmeter")
USER_AGENT = f"agentmeter-python/{__version__}"  # the sync transport's too
# The request certainly never reached the server.
_NEVER_SENT = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.UnsupportedProtocol,
)


class AsyncHttpTransport:
    """Speaks the wire API to ``base_url`` with ``Authorization: Bearer <key>``, awaited."""

    default_project_id: str | None = None

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
        self.retry = retry or RetryPolicy()
        self.pool_size = pool_size
        self._headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"
        self._client = self._new_client()
        register_fork_reset(self)

    def _new_client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            headers=self._headers,
            timeout=httpx.Timeout(self.timeout, connect=self.connect_timeout),
            limits=httpx.Limits(
                max_connections=self.pool_size, max_keepalive_connections=self.pool_size
            ),
            follow_redirects=False,
        )

    def after_fork_in_child(self) -> None:
        """Pooled sockets belong to the parent; the child opens its own."""
        self._client = self._new_client()

    @property
    def describe(self) -> str:
        return self.base_url

    @property
    def concurrency(self) -> int:
        return self.pool_size

    def __repr__(self) -> str:
        return f"AsyncHttpTransport(base_url={self.base_url!r})"

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        idempotent: bool = True,
        sleep: Callable[[float], Awaitable[None]] | None = None,
        content_type: str | None = None,
    ) -> Any:
        """Send one request, retried under the policy; return the parsed JSON answer."""
        return await self.retry.arun(
            lambda: self.send_once(
                method, path, params=params, body=body, content_type=content_type
            ),
            idempotent=idempotent,
            sleep=sleep,
            describe=f"{method} {path}",
        )

    async def send_once(
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
        response = await self._send(method, path, params=params, data=data, headers=headers)
        logger.debug(
            "%s %s -> %d in %.1f ms",
            method,
            path,
            response.status_code,
            (time.perf_counter() - started) * 1000,
        )
        answer = HttpAnswer(
            response.status_code,
            response.reason_phrase,
            response.content,
            response.headers,
            lambda: response.text,
        )
        return read_answer(answer, self._api_key)

    async def _send(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None,
        data: bytes | None,
        headers: dict[str, str] | None,
    ) -> httpx.Response:
        pairs = query_pairs(params)
        try:
            return await self._client.request(
                method,
                self.base_url + path,
                params=None if pairs is None else tuple(pairs),
                content=data,
                headers=headers,
            )
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            error = self._connection_error(exc, method, path)
        # Raised outside the except block: httpx's exception keeps its request,
        # Authorization header included, and must not ride along as __context__.
        raise error

    def _connection_error(
        self, exc: httpx.HTTPError | httpx.InvalidURL, method: str, path: str
    ) -> AgentMeterConnectionError:
        timeout = isinstance(exc, httpx.TimeoutException)
        sent = not isinstance(exc, _NEVER_SENT)
        what = "timed out" if timeout else "failed"
        detail = str(exc) or type(exc).__name__
        text = scrub(f"{method} {self.base_url}{path} {what}: {detail}", [self._api_key])
        hint = "; check that the server at AGENTMETER_BASE_URL is running and reachable"
        return AgentMeterConnectionError(text + hint, timeout=timeout, sent=sent)

    async def aclose(self) -> None:
        await self._client.aclose()
