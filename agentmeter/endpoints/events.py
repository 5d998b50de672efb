"""The client's event endpoints: build, record one, record many.

``send_batch`` is the path the tracker uses: events already in their wire
form, 1000 per request, falling back to one request per event on a server
without the batch endpoint (remembered: later batches go one by one at once).
Each sending method is a plan (:mod:`agentmeter.endpoints.plan`); the
``build_*`` methods send nothing and stay plain methods.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from ..core.token_prices import Given, TokenPricer
from ..errors import AgentMeterAPIError, NotFoundError
from ..models import (
    APIRequestPayEvent,
    BatchResult,
    ErrorInfo,
    InstantPayEvent,
    MeterEvent,
    MeterEventResponse,
    RejectedEvent,
    TokenBasedPayEvent,
)
from .connection import Connection
from .plan import Blocking, Call, Plan, endpoint, run_sending_nothing

logger = logging.getLogger("agentmeter")
MAX_BATCH = 1000
# 4xx answers to a single event that mean "this event is invalid": final.
_REJECTING_STATUSES = frozenset({400, 409, 413, 422})


class EventEndpoints:
    """Record events: one at a time, many at once, or built first and sent later."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        # Set when the server answered 404 to the batch endpoint (an old server).
        self.batch_endpoint_missing = False

    @endpoint
    def record_event(self, event: MeterEvent) -> Plan[MeterEventResponse]:
        """Send one event. Its id makes resending it safe: it is stored once."""
        return (yield from self._send(event))

    def _send(self, event: MeterEvent) -> Plan[MeterEventResponse]:
        if not isinstance(event, MeterEvent):
            raise TypeError(
                "record_event() takes an APIRequestPayEvent, TokenBasedPayEvent or InstantPayEvent"
            )
        answer = yield Call("POST", "/api/meter/event", body=event.to_dict())
        return MeterEventResponse.from_dict(answer)

    @endpoint
    def record_events(self, events: Iterable[MeterEvent]) -> Plan[BatchResult]:
        """Send many events through the batch endpoint, 1000 per request.

        Invalid events come back in ``rejected``; the others are stored. On a
        server without the batch endpoint (404) events are sent one by one.
        """
        return (yield from self._send_batch([event.to_dict() for event in events], None))

    @endpoint
    def send_batch(
        self,
        events: Sequence[Mapping[str, Any]],
        *,
        sleep: Callable[[float], None] | None = None,
    ) -> Plan[BatchResult]:
        """Send events already in their wire form (the tracker's path); see record_events.

        ``sleep`` replaces the retry policy's sleep (the tracker's can be cut
        short by shutdown).
        """
        return (yield from self._send_batch(events, sleep))

    def _send_batch(
        self, events: Sequence[Mapping[str, Any]], sleep: Callable[[float], None] | None
    ) -> Plan[BatchResult]:
        total = BatchResult()
        for start in range(0, len(events), MAX_BATCH):
            part = yield from self._send_chunk(events[start : start + MAX_BATCH], sleep)
            total.accepted += part.accepted
            total.duplicates += part.duplicates
            total.rejected.extend(
                rejected.model_copy(update={"index": rejected.index + start})
                for rejected in part.rejected
            )
        self._connection.events_delivered(events)
        return total

    def _send_chunk(
        self, events: Sequence[Mapping[str, Any]], sleep: Callable[[float], None] | None
    ) -> Plan[BatchResult]:
        if not events:
            return BatchResult()
        if not self.batch_endpoint_missing:
            body = {"events": list(events)}
            try:
                answer = yield Call("POST", "/api/meter/events/batch", body=body, sleep=sleep)
                return BatchResult.from_dict(answer)
            except NotFoundError:
                logger.info("server has no batch endpoint; sending events one by one")
                self.batch_endpoint_missing = True
        return (yield from self._send_one_by_one(events, sleep))

    def _send_one_by_one(
        self, events: Sequence[Mapping[str, Any]], sleep: Callable[[float], None] | None
    ) -> Plan[BatchResult]:
        result = BatchResult()
        for index, event in enumerate(events):
            try:
                answer = MeterEventResponse.from_dict(
                    (yield Call("POST", "/api/meter/event", body=event, sleep=sleep))
                )
            except AgentMeterAPIError as exc:
                if exc.status_code not in _REJECTING_STATUSES:
                    raise
                error = ErrorInfo(
                    code=exc.code or "rejected", message=exc.message, details=exc.details
                )
                result.rejected.append(RejectedEvent(index=index, id=event.get("id"), error=error))
                continue
            if answer.duplicate:
                result.duplicates += 1
            else:
                result.accepted += 1
        return result

    def build_api_request_pay(
        self,
        api_calls: int = 1,
        unit_price: Decimal | float | str | None = None,
        project_id: str | None = None,
        agent_id: str | None = None,
        user_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> APIRequestPayEvent:
        """Build (and validate) an API-request event with the client's defaults."""
        default_price = self._connection.config.api_request_unit_price
        return APIRequestPayEvent(
            api_calls=api_calls,
            unit_price=default_price if unit_price is None else unit_price,
            **self._common(project_id, agent_id, user_id, metadata),
        )

    def build_token_based_pay(
        self,
        tokens_in: int = 0,
        tokens_out: int = 0,
        input_token_price: Decimal | float | str | None = None,
        output_token_price: Decimal | float | str | None = None,
        project_id: str | None = None,
        agent_id: str | None = None,
        user_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        *,
        model: str | None = None,
        cached_tokens_in: int = 0,
        cache_write_tokens: int = 0,
        cached_input_token_price: Decimal | float | str | None = None,
        cache_write_token_price: Decimal | float | str | None = None,
    ) -> TokenBasedPayEvent:
        """Build (and validate) a token event.

        Prices not given are the model's (``model=``, else ``metadata["model"]``):
        the project's own price, else the catalog's plus the project's markup
        (the project's table is read at most once per ``price_cache_ttl``);
        a charge naming no model uses the client's defaults. A model no price
        is known for raises, unless the client was given default token prices.
        ``cached_tokens_in`` (part of ``tokens_in``) and ``cache_write_tokens``
        (on top of it) are billed at the model's cache prices when it has them."""
        return run_sending_nothing(
            self._token_event(
                tokens_in,
                tokens_out,
                (
                    input_token_price,
                    output_token_price,
                    cached_input_token_price,
                    cache_write_token_price,
                ),
                (project_id, agent_id, user_id, metadata),
                model,
                cached_tokens_in,
                cache_write_tokens,
            )
        )

    def _token_event(
        self,
        tokens_in: int,
        tokens_out: int,
        given: Given,
        who: tuple[str | None, str | None, str | None, Mapping[str, Any] | None],
        model: str | None,
        cached_tokens_in: int,
        cache_write_tokens: int,
    ) -> Plan[TokenBasedPayEvent]:
        """build_token_based_pay's work; reading the project's price table
        (when stale) is its one Blocking step."""
        config = self._connection.config
        pricer = TokenPricer(
            (config.input_token_price, config.output_token_price),
            bool({"input_token_price", "output_token_price"} & config.model_fields_set),
            self._connection.price_book,
        )
        common = self._common(*who)
        table = None
        book = pricer.book
        if book is not None and pricer.needs_table(model, common["metadata"], given):
            table = yield Blocking(
                functools.partial(book.current, common["project_id"], strict=True)
            )
        priced = pricer.price_with(model, common["metadata"], tokens_in, given, table)
        common["metadata"] = priced[4]
        return TokenBasedPayEvent(
            tokens_in=tokens_in,
            tokens_out=tokens_out,
            input_token_price=priced[0],
            output_token_price=priced[1],
            cached_tokens_in=cached_tokens_in,
            cache_write_tokens=cache_write_tokens,
            cached_input_token_price=priced[2] if cached_tokens_in else None,
            cache_write_token_price=priced[3] if cache_write_tokens else None,
            **common,
        )

    def build_instant_pay(
        self,
        amount: Decimal | float | str,
        description: str = "",
        project_id: str | None = None,
        agent_id: str | None = None,
        user_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> InstantPayEvent:
        """Build (and validate) an instant charge with the client's defaults."""
        return InstantPayEvent(
            amount=amount,
            description=description or "",
            **self._common(project_id, agent_id, user_id, metadata),
        )

    def _common(
        self,
        project_id: str | None,
        agent_id: str | None,
        user_id: str | None,
        metadata: Mapping[str, Any] | None,
    ) -> dict[str, Any]:
        return {
            "project_id": self._connection.resolve_project(project_id),
            "agent_id": self._connection.resolve_agent(agent_id),
            "user_id": self._connection.resolve_user(user_id),
            "metadata": {} if metadata is None else metadata,  # the model checks and copies it
        }

    @endpoint
    def record_api_request_pay(
        self,
        api_calls: int = 1,
        unit_price: Decimal | float | str | None = None,
        project_id: str | None = None,
        agent_id: str | None = None,
        user_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> Plan[MeterEventResponse]:
        """Charge ``api_calls x unit_price`` now (the default price is the config's)."""
        event = self.build_api_request_pay(
            api_calls, unit_price, project_id, agent_id, user_id, metadata
        )
        return (yield from self._send(event))

    @endpoint
    def record_token_based_pay(
        self,
        tokens_in: int = 0,
        tokens_out: int = 0,
        input_token_price: Decimal | float | str | None = None,
        output_token_price: Decimal | float | str | None = None,
        project_id: str | None = None,
        agent_id: str | None = None,
        user_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        *,
        model: str | None = None,
        cached_tokens_in: int = 0,
        cache_write_tokens: int = 0,
        cached_input_token_price: Decimal | float | str | None = None,
        cache_write_token_price: Decimal | float | str | None = None,
    ) -> Plan[MeterEventResponse]:
        """Charge for tokens now: ``tokens_in x input price + tokens_out x output price``
        (prices as :meth:`build_token_based_pay` finds them)."""
        event = yield from self._token_event(
            tokens_in,
            tokens_out,
            (
                input_token_price,
                output_token_price,
                cached_input_token_price,
                cache_write_token_price,
            ),
            (project_id, agent_id, user_id, metadata),
            model,
            cached_tokens_in,
            cache_write_tokens,
        )
        return (yield from self._send(event))

    @endpoint
    def record_instant_pay(
        self,
        amount: Decimal | float | str,
        description: str = "",
        project_id: str | None = None,
        agent_id: str | None = None,
        user_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> Plan[MeterEventResponse]:
        """Charge ``amount`` now."""
        event = self.build_instant_pay(amount, description, project_id, agent_id, user_id, metadata)
        return (yield from self._send(event))
