"""Bill every LangChain model call by its tokens, per user, exactly once.

>>> handler = LangChainAgentMeterCallback(client, user_id="anonymous")   # doctest: +SKIP
>>> chat.invoke("hi", config={"callbacks": [handler],
...                           "metadata": {"user_id": "alice"}})       # doctest: +SKIP

or, without passing the handler to every call::

    with meter_langchain(client, user_id="alice"):
        chain.invoke(...)

How a run becomes one token-based event:

- The start callback (the only one that carries ``metadata``) stores the
  run's user (``metadata["user_id"]``, else the handler's), model hints,
  tags and parent, keyed by ``run_id``, under a lock (sync handlers run in
  threads for ``batch`` and async chains). Runs that never end are evicted
  after ``run_ttl`` seconds.
- ``on_llm_end`` reads usage from ONE place: the first generation's
  ``message.usage_metadata``, else ``llm_output["token_usage"]``. Streamed
  runs arrive merged, usage summed; they are billed here, never per token.
- The model is ``response_metadata["model_name"]``, else
  ``llm_output["model_name"]``, else the start's ``ls_model_name``, else
  ``invocation_params["model"]``, else ``"unknown"``; its prices come from
  the handler's flat prices, else the model table, else the client's.
- The event id is derived from the run id, so a callback delivered twice
  (or two handlers on one run) bills once.
- Errors and cache hits bill nothing unless asked; a fault in the handler
  is logged, never raised into the chain.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar, Token
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.outputs import LLMResult
from langchain_core.tracers.context import register_configure_hook

from ..capture.attribution import current_attribution
from ..capture.charge import environment_client, metering_errors, tracker_of
from ..core.ids import derived_event_id
from ..errors import AgentMeterValidationError
from ..pricing import model_price_table, price_for_model, to_money
from .langchain_usage import read_usage

__all__ = ["LangChainAgentMeterCallback", "meter_langchain", "read_usage"]
logger = logging.getLogger("agentmeter")
_EVICT_EVERY = 256
# Run metadata LangChain and LangGraph add themselves: not the user's, not billed data.
_FRAMEWORK_KEYS = ("ls_", "lc_", "langgraph_", "checkpoint_")
_stream_warning = threading.Event()
_STREAM_WARNING = (
    "agentmeter: a streamed chat model run reported no token usage, so it was not "
    "billed; ask the model to stream usage (e.g. ChatOpenAI(stream_usage=True))"
)


@dataclass
class _Run:
    started: float
    user_id: str | None
    model_hint: str | None
    parent_run_id: str | None
    tags: list[str]
    metadata: dict[str, Any]
    chat: bool
    streamed: bool = False
    deferred: bool = False  # an inner meter_langchain() block's handler bills it


@dataclass
class _Runs:
    """Start-time context of runs in flight, keyed by run id."""

    ttl: float
    lock: threading.Lock = field(default_factory=threading.Lock)
    runs: dict[UUID, _Run] = field(default_factory=dict)
    starts: int = 0
    next_sweep: float = 0.0

    def add(self, run_id: UUID, run: _Run) -> None:
        with self.lock:
            self.runs[run_id] = run
            self.starts += 1
            # Every _EVICT_EVERY starts (bounds memory under load), and at the
            # first start a ttl after the last sweep (bounds time when quiet).
            if self.starts % _EVICT_EVERY == 0 or run.started >= self.next_sweep:
                oldest = run.started - self.ttl
                for stale in [key for key, value in self.runs.items() if value.started < oldest]:
                    del self.runs[stale]
                self.next_sweep = run.started + self.ttl

    def get(self, run_id: UUID) -> _Run | None:
        with self.lock:
            return self.runs.get(run_id)

    def pop(self, run_id: UUID) -> _Run | None:
        with self.lock:
            return self.runs.pop(run_id, None)


class LangChainAgentMeterCallback(BaseCallbackHandler):
    """A LangChain callback handler that records one token event per model call."""

    raise_error = False
    run_inline = True  # it only queues events: no need for an executor thread

    def __init__(
        self,
        client: Any,
        project_id: str | None = None,
        agent_id: str | None = None,
        user_id: str | None = None,
        input_token_price: Any = None,
        output_token_price: Any = None,
        prices: Mapping[str, Any] | None = None,
        *,
        bill_errors: bool = False,
        bill_cache_hits: bool = False,
        metadata: Mapping[str, Any] | None = None,
        run_ttl: float = 3600.0,
        user_id_key: str = "user_id",
    ) -> None:
        super().__init__()
        tracker_of(client)  # a client or a tracker, checked now
        self.client = client
        self.project_id = project_id
        self.agent_id = agent_id
        self.user_id = user_id
        flat = (input_token_price, output_token_price)
        self.flat_prices = (
            None
            if flat == (None, None)
            else (
                _money(input_token_price, "input_token_price"),
                _money(output_token_price, "output_token_price"),
            )
        )
        self.prices = model_price_table(prices)
        self.bill_errors = bill_errors
        self.bill_cache_hits = bill_cache_hits
        self.metadata = dict(metadata or {})
        self.user_id_key = user_id_key
        if run_ttl <= 0:
            raise AgentMeterValidationError.for_field("run_ttl", "must be positive (seconds)")
        self._runs = _Runs(run_ttl)
        self._model_prices: dict[str, tuple[Decimal | None, Decimal | None]] = {}
        self._scoped = False  # made by meter_langchain(): yields to an inner block's handler

    # ------------------------------------------------------------ starts

    def on_chat_model_start(
        self,
        serialized: dict[str, Any],
        messages: list[list[Any]],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        self._start(run_id, parent_run_id, tags, metadata, kwargs, chat=True)

    def on_llm_start(
        self,
        serialized: dict[str, Any],
        prompts: list[str],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        self._start(run_id, parent_run_id, tags, metadata, kwargs, chat=False)

    def _start(
        self,
        run_id: UUID,
        parent_run_id: UUID | None,
        tags: list[str] | None,
        metadata: dict[str, Any] | None,
        kwargs: dict[str, Any],
        chat: bool,
    ) -> None:
        try:
            if self._scoped:
                inner = _current_handler.get()
                if inner is not None and inner is not self:
                    # Started inside an inner meter_langchain() block: LangChain
                    # attached that block's handler to this run too, and the
                    # innermost block wins (both would derive the same event id).
                    self._runs.add(run_id, _deferred_run())
                    return
            metadata = metadata or {}
            params = kwargs.get("invocation_params") or {}
            hint = metadata.get("ls_model_name") or params.get("model") or params.get("model_name")
            user = metadata.get(self.user_id_key)
            self._runs.add(
                run_id,
                _Run(
                    started=time.monotonic(),
                    user_id=None if user is None else str(user),
                    model_hint=None if hint is None else str(hint),
                    parent_run_id=None if parent_run_id is None else str(parent_run_id),
                    tags=list(tags or []),
                    metadata=_users_metadata(metadata, self.user_id_key),
                    chat=chat,
                ),
            )
        except Exception:
            _fault("at a run's start")

    def on_llm_new_token(self, token: Any, *, run_id: UUID, **kwargs: Any) -> None:
        run = self._runs.get(run_id)
        if run is not None and not run.streamed:
            run.streamed = True

    # -------------------------------------------------------------- ends

    def on_llm_end(self, response: LLMResult, *, run_id: UUID, **kwargs: Any) -> None:
        try:
            run = self._runs.pop(run_id)
            if run is not None and run.deferred:
                return
            self._bill(response, run_id, run, error=None)
        except Exception:
            _fault(f"to bill run {run_id}")

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        run = self._runs.pop(run_id)
        partial = kwargs.get("response")
        if not self.bill_errors or not isinstance(partial, LLMResult):
            return
        if run is not None and run.deferred:
            return
        try:
            self._bill(partial, run_id, run, error=error)
        except Exception:
            _fault(f"to bill run {run_id}")

    def _bill(
        self, response: LLMResult, run_id: UUID, run: _Run | None, error: BaseException | None
    ) -> None:
        usage = read_usage(response)
        if usage is None:
            if run is not None and run.chat and run.streamed and not _stream_warning.is_set():
                _stream_warning.set()  # once per process, not per handler or block
                logger.warning(_STREAM_WARNING)
            return
        if usage.cache_hit and not self.bill_cache_hits:
            return
        model = usage.model or (run.model_hint if run else None) or "unknown"
        price_in, price_out = self._prices_for(model)
        metadata = {
            **self.metadata,
            **(run.metadata if run else {}),
            "model": model,
            "run_id": str(run_id),
            "source": "langchain",
        }
        if run is not None:
            metadata.update(parent_run_id=run.parent_run_id, tags=run.tags)
        if error is not None:
            metadata.update(status="error", error=type(error).__name__)
        tracker_of(self.client).track_token_based_pay(
            usage.tokens_in,
            usage.tokens_out,
            price_in,
            price_out,
            (run.user_id if run else None) or _attributed_user() or self.user_id,
            metadata,
            project_id=self.project_id,
            agent_id=self.agent_id,
            event_id=derived_event_id("langchain-run", str(run_id)),
            on_unknown_model="record",
            cached_tokens_in=usage.cached_tokens_in,
            cache_write_tokens=usage.cache_write_tokens,
        )

    def _prices_for(self, model: str) -> tuple[Decimal | None, Decimal | None]:
        if self.flat_prices is not None:
            return self.flat_prices
        cached = self._model_prices.get(model)
        if cached is None:
            found = price_for_model(model, self.prices)
            # None: the tracker prices it (the catalog, else the client's defaults).
            cached = found if found is not None else (None, None)
            if len(self._model_prices) < 1024:
                self._model_prices[model] = cached
        return cached


def _deferred_run() -> _Run:
    return _Run(
        started=time.monotonic(),
        user_id=None,
        model_hint=None,
        parent_run_id=None,
        tags=[],
        metadata={},
        chat=False,
        deferred=True,
    )


def _fault(what: str) -> None:
    """A handler fault: logged and counted, never raised into the user's chain."""
    metering_errors.add()
    logger.exception("agentmeter LangChain handler failed %s", what)


def _money(value: Any, field: str) -> Decimal | None:
    return None if value is None else to_money(value, field)


def _users_metadata(metadata: Mapping[str, Any], user_key: str) -> dict[str, Any]:
    """The run metadata the user set (LangChain's own ``ls_*``/``lc_*`` keys left out)."""
    return {
        key: value
        for key, value in metadata.items()
        if key != user_key and not key.startswith(_FRAMEWORK_KEYS)
    }


# ------------------------------------------------------ meter_langchain()

_current_handler: ContextVar[LangChainAgentMeterCallback | None] = ContextVar(
    "agentmeter_langchain_handler", default=None
)
# LangChain adds the handler in this variable to every run started in its context.
register_configure_hook(_current_handler, inheritable=True)


def _attributed_user() -> str | None:
    attributed = current_attribution()
    return None if attributed is None else attributed.user_id


@contextmanager
def meter_langchain(
    client: Any = None, *, user_id: str | None = None, **options: Any
) -> Iterator[LangChainAgentMeterCallback]:
    """Bill every LangChain model call made inside the block, to ``user_id``.

    Without ``client``, a client configured from ``AGENTMETER_*`` is used.
    Blocks nest; the innermost wins.
    """
    handler = LangChainAgentMeterCallback(
        client if client is not None else environment_client(), user_id=user_id, **options
    )
    handler._scoped = True
    token = _current_handler.set(handler)
    try:
        yield handler
    finally:
        try:
            _current_handler.reset(token)
        except ValueError:
            # The block ends in another context than it began in: a generator
            # resumed by a thread pool (as Starlette streams a response). Put
            # back what the block replaced, in this context, rather than raise.
            previous = token.old_value
            _current_handler.set(None if previous is Token.MISSING else previous)
