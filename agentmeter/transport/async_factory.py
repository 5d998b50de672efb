"""The async twin of a sync transport: what the async client sends through.

The async client is built like the sync one (same arguments, same
``transport=``); the sync transport that gives is turned into its awaitable
twin here, with the very same settings: an ``httpx`` transport for a server
(same URL, key, timeouts, pool size and :class:`RetryPolicy` object), a
worker-thread wrapper for the embedded ledger and for anything else that
blocks (a :class:`~agentmeter.transport.failover.FailoverTransport`: no
native async failover; its requests run on the worker threads).
"""

from __future__ import annotations

from . import AsyncTransport, Transport
from .async_http import AsyncHttpTransport
from .http import HttpTransport
from .threaded import ThreadedTransport


def async_transport_for(transport: Transport) -> AsyncTransport:
    """An awaitable transport to where ``transport`` goes, under the same settings."""
    if isinstance(transport, HttpTransport):
        return AsyncHttpTransport(
            transport.base_url,
            transport._api_key,
            timeout=transport.timeout,
            connect_timeout=transport.connect_timeout,
            retry=transport.retry,
            pool_size=transport.pool_size,
        )
    return ThreadedTransport(transport)
