"""The one retry layer: which failures are worth another try, and how long to wait.

Only connection failures, timeouts, 408, 429 and 5xx (not 501) are retried.
A request that is not idempotent (a meter increment, a project or billing
record creation) is retried only when the server certainly did not act on
it: the connection was never made, or the answer was 429.

Waits grow exponentially with jitter; a ``Retry-After`` header is honoured
as the minimum wait (clamped to ``max_wait``). Attempts are bounded in
number and by an overall deadline. ``random`` and ``sleep`` are fields so
tests (and the tracker, whose sleeps shutdown must interrupt) can control
them; ``asleep`` is the waiting of the async client (:meth:`RetryPolicy.arun`,
tenacity's ``AsyncRetrying`` with the very same rules), which never blocks
the event loop.
"""

from __future__ import annotations

import logging
import random as _random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from ..errors import AgentMeterAPIError, AgentMeterConnectionError, RateLimitError

if TYPE_CHECKING:
    import tenacity

logger = logging.getLogger("agentmeter")
T = TypeVar("T")
# tenacity loads with the first RetryPolicy (made by the transports that retry),
# asyncio with the first async wait: the embedded ledger and `agentmeter --help`
# need neither.


async def _asyncio_sleep(seconds: float) -> None:
    import asyncio

    await asyncio.sleep(seconds)


def is_retryable(exc: BaseException, idempotent: bool = True) -> bool:
    if isinstance(exc, AgentMeterConnectionError):
        return idempotent or not exc.sent
    if isinstance(exc, RateLimitError):
        return True
    if isinstance(exc, AgentMeterAPIError) and exc.status_code is not None:
        status = exc.status_code
        return idempotent and (status == 408 or (status >= 500 and status != 501))
    return False


@dataclass(frozen=True)
class RetryPolicy:
    """How a failed request is tried again. ``max_attempts`` counts the first try."""

    max_attempts: int = 4
    deadline: float = 30.0
    initial_wait: float = 0.5
    max_wait: float = 30.0
    random: Callable[[], float] = field(default=_random.random, repr=False)
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)
    asleep: Callable[[float], Awaitable[None]] = field(default=_asyncio_sleep, repr=False)

    def __post_init__(self) -> None:
        # Loaded with the transport that retries (HTTP), not at its first retry,
        # which may come on the worker's thread while the interpreter exits.
        import tenacity  # noqa: F401

    def backoff(self, attempt_number: int, exc: BaseException | None) -> float:
        """Seconds to wait after the given failed attempt (1-based)."""
        base = min(self.max_wait, self.initial_wait * 2 ** (attempt_number - 1))
        wait = base / 2 + self.random() * base / 2  # "equal jitter": never near zero
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None:
            wait = max(wait, min(float(retry_after), self.max_wait))
        return float(wait)

    def run(
        self,
        attempt: Callable[[], T],
        *,
        idempotent: bool = True,
        sleep: Callable[[float], None] | None = None,
        describe: str = "request",
    ) -> T:
        """Call ``attempt`` until it succeeds, fails for good, or the budget ends."""
        import tenacity

        retrying = tenacity.Retrying(sleep=sleep or self.sleep, **self._rules(idempotent, describe))
        return retrying(attempt)

    async def arun(
        self,
        attempt: Callable[[], Awaitable[T]],
        *,
        idempotent: bool = True,
        sleep: Callable[[float], Awaitable[None]] | None = None,
        describe: str = "request",
    ) -> T:
        """:meth:`run` for a coroutine: the same rules, waits awaited (``asleep``)."""
        import tenacity

        retrying = tenacity.AsyncRetrying(
            sleep=sleep or self.asleep, **self._rules(idempotent, describe)
        )

        async def attempt_once() -> T:  # tenacity awaits only a coroutine *function*
            return await attempt()

        return await retrying(attempt_once)

    def _rules(self, idempotent: bool, describe: str) -> dict[str, Any]:
        """Which failures are retried, the waits, the bounds: one set for both runners."""
        import tenacity

        return {
            "retry": tenacity.retry_if_exception(lambda exc: is_retryable(exc, idempotent)),
            "wait": lambda state: self.backoff(
                state.attempt_number, state.outcome.exception() if state.outcome else None
            ),
            "stop": self._should_stop,
            "before_sleep": lambda state: _log_retry(state, describe),
            "reraise": True,
        }

    def _should_stop(self, state: tenacity.RetryCallState) -> bool:
        if state.attempt_number >= self.max_attempts:
            return True
        upcoming = state.upcoming_sleep or 0.0
        return (state.seconds_since_start or 0.0) + upcoming > self.deadline


def _log_retry(state: tenacity.RetryCallState, describe: str) -> None:
    exc = state.outcome.exception() if state.outcome else None
    logger.warning(
        "%s failed (attempt %d): %s; retrying in %.2fs",
        describe,
        state.attempt_number,
        exc,
        state.upcoming_sleep,
    )
