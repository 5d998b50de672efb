"""Who pays for the model calls made inside a block: ``with attribute(user_id=...)``.

One ``ContextVar``, so the attribution follows the code that runs inside the
block, asyncio tasks included (a task copies the context it was created in).
A thread does not inherit it: run the thread's work in a copy of the
context (``contextvars.copy_context().run(func)``, or
``loop.run_in_executor(None, ctx.run, func)``), or open a block inside it.

The provider wrappers (:func:`agentmeter.wrap`), the decorators and the
LangChain handler read it: a user named on the call itself wins, then the
innermost block, then the defaults given when the wrapper or decorator was
made. Blocks nest; an inner block's fields replace the outer's, its metadata
is laid over the outer's.

>>> with attribute(user_id="alice", metadata={"plan": "pro"}):
...     current_attribution().user_id
'alice'
>>> current_attribution() is None
True
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar, Token
from dataclasses import dataclass, field
from typing import Any

from ..core.build import check_name
from ..core.checks import check_metadata


@dataclass(frozen=True)
class Attribution:
    """The payer of the calls in a block (None: not set here, the defaults apply)."""

    user_id: str | None = None
    agent_id: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)


_current: ContextVar[Attribution | None] = ContextVar("agentmeter_attribution", default=None)


def current_attribution() -> Attribution | None:
    """The innermost ``attribute()`` block's attribution here, or None outside any."""
    return _current.get()


@contextmanager
def attribute(
    user_id: str | None = None,
    agent_id: str | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> Iterator[Attribution]:
    """Bill every metered call inside the block to ``user_id`` (and ``agent_id``,
    with ``metadata`` added to each event). Checked at once: a bad id raises
    :class:`~agentmeter.AgentMeterValidationError` here, not in a later call."""
    outer = _current.get() or Attribution()
    inner = Attribution(
        user_id=outer.user_id if user_id is None else check_name(user_id, "user_id"),
        agent_id=outer.agent_id if agent_id is None else check_name(agent_id, "agent_id"),
        metadata={**outer.metadata, **check_metadata(metadata)} if metadata else outer.metadata,
    )
    token = _current.set(inner)
    try:
        yield inner
    finally:
        _restore(token)


def _restore(token: Token[Attribution | None]) -> None:
    try:
        _current.reset(token)
    except ValueError:
        # The block ends in another context than it began in (a generator
        # resumed by a thread pool): put back what it replaced, here.
        previous = token.old_value
        _current.set(None if previous is Token.MISSING else previous)
