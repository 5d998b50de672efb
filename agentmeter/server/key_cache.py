"""Verified API keys, remembered for a few seconds so a request skips the key lookup.

Looking a key up costs a database read and a hop to a worker thread, about as
much as the request's own work. So a key found valid is remembered (by its
SHA-256 digest, never in clear) for ``ttl`` seconds. The cost is a bound on
revocation: a key deleted by another process (another server on the same
database, or a tool writing to it) keeps working here for at most ``ttl``
seconds after its deletion. A project deleted through this server forgets its
keys at once. Keys found invalid are not remembered: a key made a moment ago
(by another server) works on its first request.

``ttl`` comes from ``AGENTMETER_KEY_CACHE_SECONDS`` (default
:data:`DEFAULT_KEY_CACHE_SECONDS`); 0 turns the cache off.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable

from ..errors import AgentMeterConfigurationError
from ..ledger.api import Principal

DEFAULT_KEY_CACHE_SECONDS = 5.0
KEY_CACHE_ENV = "AGENTMETER_KEY_CACHE_SECONDS"
MAX_KEYS = 10_000  # a bound on memory; past it the oldest entries go first


def configured_key_cache_seconds(environ: dict[str, str] | None = None) -> float:
    """The cache's lifetime from the environment, checked (a bad value is named)."""
    text = (os.environ if environ is None else environ).get(KEY_CACHE_ENV, "").strip()
    if not text:
        return DEFAULT_KEY_CACHE_SECONDS
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not math.isfinite(seconds) or seconds < 0:
        raise AgentMeterConfigurationError(
            f"{KEY_CACHE_ENV} must be a number of seconds, 0 or more, got {text!r}"
        )
    return seconds


class KeyCache:
    """Principals of key digests verified within the last ``ttl`` seconds.

    ``clock`` is a field so tests can move time.
    """

    def __init__(
        self, ttl: float, *, clock: Callable[[], float] = time.monotonic, max_keys: int = MAX_KEYS
    ) -> None:
        if not math.isfinite(ttl) or ttl < 0:
            raise ValueError(f"ttl must be a number of seconds, 0 or more, got {ttl!r}")
        self.ttl = ttl
        self.clock = clock
        self.max_keys = max_keys
        self._entries: dict[str, tuple[float, Principal]] = {}  # digest -> (expiry, who)
        self._lock = threading.Lock()

    def get(self, key_hash: str) -> Principal | None:
        """Who holds this digest, if verified less than ``ttl`` seconds ago."""
        entry = self._entries.get(key_hash)
        if entry is None:
            return None
        expires, principal = entry
        if self.clock() < expires:
            return principal
        with self._lock:
            if self._entries.get(key_hash) is entry:
                del self._entries[key_hash]
        return None

    def put(self, key_hash: str, principal: Principal, verified_at: float) -> None:
        """Remember a digest verified at ``verified_at`` (a ``clock`` reading taken
        before the lookup, so the entry never outlives the lookup by more than ``ttl``)."""
        if self.ttl <= 0:
            return
        with self._lock:
            if len(self._entries) >= self.max_keys:
                del self._entries[next(iter(self._entries))]
            self._entries[key_hash] = (verified_at + self.ttl, principal)

    def forget_project(self, project_id: str) -> None:
        """The project was deleted here: its keys are no longer valid."""
        with self._lock:
            stale = [
                digest for digest, (_, who) in self._entries.items() if who.project_id == project_id
            ]
            for digest in stale:
                del self._entries[digest]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


__all__ = ["DEFAULT_KEY_CACHE_SECONDS", "KEY_CACHE_ENV", "KeyCache", "configured_key_cache_seconds"]
