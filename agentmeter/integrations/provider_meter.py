"""What every provider wrapper shares: who pays, one event per call, streams billed once.

A wrapper (:func:`agentmeter.wrap`) hands each finished model call to its
:class:`ProviderMeter` as a :class:`ModelCall`: the model, the tokens by
class, the provider's response id. The meter picks the payer (the
innermost ``attribute()`` block, else the wrap-time defaults), names the
event after the response id (so a call reported twice is stored once) and
queues it on the client's tracker: no I/O on the caller's thread, and never
an exception into the caller's code (a billing fault is logged).

Streams are wrapped in :class:`MeteredStream` / :class:`AsyncMeteredStream`:
the chunks pass through unchanged (but for the ones ``hide`` says the user did
not ask for), a per-provider ``observe`` reads usage from them, and the call is
billed once, when the stream ends or is closed. A stream closed before its
usage arrived bills nothing and logs one warning per provider.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..capture.attribution import Attribution, current_attribution
from ..capture.charge import environment_client, tracker_of
from ..capture.usage import TokenUsage
from ..client import AgentMeterClient
from ..core.build import EVENT_ID, check_name
from ..core.checks import check_metadata
from ..core.ids import derived_event_id

logger = logging.getLogger("agentmeter")
_warned: set[str] = set()
_warned_lock = threading.Lock()


@dataclass
class ModelCall:
    """One provider call, as much of it as is known so far (streams fill it in).

    The payer is taken when the call is made: a stream opened inside an
    ``attribute()`` block and read to its end outside it is still billed
    to the block's user."""

    requested_model: str | None = None
    model: str | None = None  # the model the response names
    usage: TokenUsage | None = None
    response_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # more metadata for the event
    attribution: Attribution | None = field(default_factory=current_attribution)


class ProviderMeter:
    """Bills the calls of one wrapped provider client. Thread-safe."""

    def __init__(
        self,
        provider: str,
        meter: AgentMeterClient | None = None,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        if meter is not None and not isinstance(meter, AgentMeterClient):
            raise TypeError(f"meter must be an AgentMeterClient, got {type(meter).__name__}")
        self.provider = provider
        self.client = meter if meter is not None else environment_client()
        self.user_id = None if user_id is None else check_name(user_id, "user_id")
        self.agent_id = None if agent_id is None else check_name(agent_id, "agent_id")
        self.metadata = check_metadata(metadata)

    def __repr__(self) -> str:
        return f"ProviderMeter(provider={self.provider!r}, user_id={self.user_id!r})"

    def bill(self, call: ModelCall) -> str | None:
        """Queue the call's token event; its id, or None if nothing was billed.

        Never raises: a fault in metering must not fail the user's call."""
        try:
            return self._bill(call)
        except Exception:
            logger.exception("agentmeter: could not bill a %s call", self.provider)
            return None

    def _bill(self, call: ModelCall) -> str | None:
        if call.usage is None:
            warn_once(self.provider, f"{self.provider}: a call reported no token usage; not billed")
            return None
        attributed = call.attribution
        model = call.model or call.requested_model
        metadata: dict[str, Any] = {**self.metadata}
        if attributed is not None:
            metadata.update(attributed.metadata)
        metadata.update(call.extra, provider=self.provider)
        if model:
            metadata["model"] = model
        if call.response_id:
            metadata["response_id"] = call.response_id
        usage = call.usage
        return tracker_of(self.client).track_token_based_pay(
            usage.tokens_in,
            usage.tokens_out,
            user_id=(attributed and attributed.user_id) or self.user_id,
            metadata=metadata,
            agent_id=(attributed and attributed.agent_id) or self.agent_id,
            event_id=self._event_id(call),
            on_unknown_model="record",
            cached_tokens_in=usage.cached_tokens_in,
            cache_write_tokens=usage.cache_write_tokens,
        )

    def _event_id(self, call: ModelCall) -> str | None:
        """Named after the response: an SDK's retry or a replay bills once.

        ``openai:chatcmpl-...`` when the response id is a valid event id (the
        common case: cheap, and readable in the ledger), else a uuid5 of it."""
        response_id = call.response_id
        if not response_id:
            return None
        readable = f"{self.provider}:{response_id}"
        if EVENT_ID.match(readable):
            return readable
        return derived_event_id(f"{self.provider}-response", response_id)

    def stream(
        self,
        chunks: Any,
        call: ModelCall,
        observe: Callable[[Any, ModelCall], None],
        hide: Callable[[Any], bool] | None = None,
    ) -> MeteredStream:
        """Wrap a provider's sync stream: chunks pass through, billed once at the end."""
        return MeteredStream(chunks, _StreamBilling(self, call, observe), hide)

    def astream(
        self,
        chunks: Any,
        call: ModelCall,
        observe: Callable[[Any, ModelCall], None],
        hide: Callable[[Any], bool] | None = None,
    ) -> AsyncMeteredStream:
        """Wrap a provider's async stream: chunks pass through, billed once at the end."""
        return AsyncMeteredStream(chunks, _StreamBilling(self, call, observe), hide)


def warn_once(key: str, message: str) -> None:
    with _warned_lock:
        first = key not in _warned
        _warned.add(key)
    if first:
        logger.warning("agentmeter: %s (logged once per process)", message)


class _StreamBilling:
    """A stream's usage as it arrives, and the one bill at its end."""

    def __init__(
        self, meter: ProviderMeter, call: ModelCall, observe: Callable[[Any, ModelCall], None]
    ) -> None:
        self.meter = meter
        self.call = call
        self.observe = observe
        self._done = False
        self._lock = threading.Lock()

    def saw(self, chunk: Any) -> None:
        try:
            self.observe(chunk, self.call)
        except Exception:
            logger.exception(
                "agentmeter: could not read usage from a %s chunk", self.meter.provider
            )

    def finish(self, *, complete: bool, failed: bool = False) -> None:
        """Bill once. ``failed``: the provider's stream raised (the error is the
        user's to see): bill what arrived, warn about nothing."""
        with self._lock:
            if self._done:
                return
            self._done = True
        if failed and self.call.usage is None:
            return
        if self.call.usage is None and not complete:
            warn_once(
                f"{self.meter.provider}-abandoned",
                f"{self.meter.provider}: a stream was closed before its usage arrived; not billed",
            )
            return
        self.meter.bill(self.call)


def _finish_dropped(stream: Any) -> None:
    """A stream garbage-collected unfinished: bill it if its usage arrived."""
    billing = stream.__dict__.get("_billing")
    if billing is not None:
        with contextlib.suppress(Exception):  # nothing may escape a finalizer
            billing.finish(complete=False)


class MeteredStream:
    """A provider's stream, unchanged to its reader, billed once when it ends or closes.

    Anything else (``response``, ``close()``, the SDK's helpers) is the
    stream's own, reached through this object."""

    def __init__(self, stream: Any, billing: _StreamBilling, hide: Callable[[Any], bool] | None):
        self._stream = stream
        self._chunks: Iterator[Any] = iter(stream)
        self._billing = billing
        self._hide = hide

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        while True:
            try:
                chunk = next(self._chunks)
            except StopIteration:
                self._billing.finish(complete=True)
                raise
            except BaseException:
                self._billing.finish(complete=False, failed=True)
                raise
            self._billing.saw(chunk)
            if self._hide is None or not self._hide(chunk):
                return chunk

    def close(self) -> None:
        try:
            close = getattr(self._stream, "close", None)
            if close is not None:
                close()
        finally:
            self._billing.finish(complete=False)

    def __enter__(self) -> MeteredStream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __del__(self) -> None:  # dropped unfinished: bill what arrived (no I/O here)
        _finish_dropped(self)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


class AsyncMeteredStream:
    """The async twin of :class:`MeteredStream`."""

    def __init__(self, stream: Any, billing: _StreamBilling, hide: Callable[[Any], bool] | None):
        self._stream = stream
        self._chunks: AsyncIterator[Any] = stream.__aiter__()
        self._billing = billing
        self._hide = hide

    def __aiter__(self) -> AsyncIterator[Any]:
        return self

    async def __anext__(self) -> Any:
        while True:
            try:
                chunk = await self._chunks.__anext__()
            except StopAsyncIteration:
                self._billing.finish(complete=True)
                raise
            except BaseException:
                self._billing.finish(complete=False, failed=True)
                raise
            self._billing.saw(chunk)
            if self._hide is None or not self._hide(chunk):
                return chunk

    async def close(self) -> None:
        try:  # an SDK stream's close(), or an async generator's aclose()
            close = getattr(self._stream, "close", None) or getattr(self._stream, "aclose", None)
            if close is not None:
                await close()
        finally:
            self._billing.finish(complete=False)

    async def __aenter__(self) -> AsyncMeteredStream:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def __del__(self) -> None:
        _finish_dropped(self)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)
