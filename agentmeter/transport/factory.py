"""Choose the transport a configuration asks for.

- ``base_url`` ``http(s)://...``: the HTTP API.
- ``base_url`` ``sqlite:///path.db`` or ``postgresql+psycopg://...``: an
  embedded ledger, in process, no server.
- a key but no URL: the hosted service.
- neither key nor URL: the embedded default ledger file (one warning).
"""

from __future__ import annotations

from ..config import DEFAULT_BASE_URL, AgentMeterConfig
from ..errors import AgentMeterConfigurationError
from . import Transport
from .retry import RetryPolicy


def retry_policy(config: AgentMeterConfig) -> RetryPolicy:
    return RetryPolicy(
        max_attempts=config.retry_attempts + 1,
        deadline=config.retry_deadline,
        max_wait=config.max_retry_wait,
    )


def make_transport(config: AgentMeterConfig) -> Transport:
    url = config.base_url
    if url is None and config.api_key is not None:
        url = DEFAULT_BASE_URL
    if url is None or not url.startswith(("http://", "https://")):
        return _embedded(url)
    from .http import HttpTransport  # on first use: an embedded ledger needs no requests

    return HttpTransport(
        url,
        config.api_key_value,
        timeout=config.timeout,
        connect_timeout=config.connect_timeout,
        retry=retry_policy(config),
    )


def _embedded(url: str | None) -> Transport:
    try:
        from .local import LocalTransport
    except ImportError as exc:  # pragma: no cover - only without SQLAlchemy
        raise AgentMeterConfigurationError(
            f"the embedded ledger needs SQLAlchemy ({exc}); install agentmeter again, "
            "or set AGENTMETER_BASE_URL to an AgentMeter server"
        ) from None
    return LocalTransport.open(url)
