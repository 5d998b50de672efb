"""Transports carry a wire-API request to a store and bring the JSON answer back.

:class:`HttpTransport` speaks HTTP to a server; the embedded transport
(``base_url="sqlite:///..."``) runs the same request against a local ledger
in process. Both raise the same errors.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from .retry import RetryPolicy, is_retryable


class Transport(Protocol):
    # The project events go to when neither call nor client names one
    # (the embedded ledger has one; a server needs it said).
    default_project_id: str | None

    @property
    def describe(self) -> str:
        """Where requests go, for reprs and logs (never the key)."""
        ...

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        idempotent: bool = True,
        sleep: Callable[[float], None] | None = None,
    ) -> Any: ...

    def close(self) -> None: ...


__all__ = ["RetryPolicy", "Transport", "is_retryable"]
