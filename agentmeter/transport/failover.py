"""Several servers behind one client: each attempt goes to a random one.

For deployments without a load balancer in front of the ``agentmeter serve``
processes (and for tests of one): a request that fails on one server is
retried, under the same :class:`RetryPolicy`, on a server picked afresh, so
a server killed mid-batch costs a retry, not an event. Safe because every
event carries its id and the servers share one database.

>>> transport = FailoverTransport(["http://10.0.0.1:8787", "http://10.0.0.2:8787"],
...                               api_key)                         # doctest: +SKIP
>>> client = AgentMeterClient(transport=transport, project_id="proj_1")  # doctest: +SKIP
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..errors import AgentMeterConfigurationError
from .http import HttpTransport
from .retry import RetryPolicy


class FailoverTransport:
    default_project_id: str | None = None

    def __init__(
        self,
        base_urls: Sequence[str],
        api_key: str | None,
        *,
        retry: RetryPolicy | None = None,
        choose: Callable[[Sequence[HttpTransport]], HttpTransport] = random.choice,
        **http_options: Any,
    ) -> None:
        if not base_urls:
            raise AgentMeterConfigurationError("FailoverTransport needs at least one base URL")
        self.retry = retry or RetryPolicy()
        self._servers = [HttpTransport(url, api_key, **http_options) for url in base_urls]
        self._choose = choose

    @property
    def describe(self) -> str:
        return ",".join(server.describe for server in self._servers)

    def __repr__(self) -> str:
        return f"FailoverTransport({self.describe!r})"

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
        return self.retry.run(
            lambda: self._choose(self._servers).send_once(
                method, path, params=params, body=body, content_type=content_type
            ),
            idempotent=idempotent,
            sleep=sleep,
            describe=f"{method} {path}",
        )

    def close(self) -> None:
        for server in self._servers:
            server.close()
