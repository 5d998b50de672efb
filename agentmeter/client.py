"""AgentMeterClient: one synchronous method per endpoint of the wire API.

Every method validates its input first (``AgentMeterValidationError``,
nothing sent), sends through the transport (HTTP or the embedded ledger)
and returns typed models. Project, agent and user default to the client's.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeVar

from ._endpoints import AdminEndpointsMixin, QueryEndpointsMixin
from .config import AgentMeterConfig
from .errors import AgentMeterAPIError, AgentMeterConfigurationError, NotFoundError
from .models import (
    APIRequestPayEvent,
    BatchResult,
    ErrorInfo,
    InstantPayEvent,
    MeterEvent,
    MeterEventResponse,
    RejectedEvent,
    TokenBasedPayEvent,
)
from .pricing import to_money
from .transport import Transport
from .transport.factory import make_transport

if TYPE_CHECKING:
    from .tracker import AgentMeterTracker

logger = logging.getLogger("agentmeter")
E = TypeVar("E", bound=MeterEvent)

MAX_BATCH = 1000
# 4xx answers to a single event that mean "this event is invalid": final.
_REJECTING_STATUSES = frozenset({400, 409, 413, 422})


class AgentMeterClient(QueryEndpointsMixin, AdminEndpointsMixin):
    """Talks to an AgentMeter server, or to an embedded ledger file.

    >>> client = AgentMeterClient(base_url="sqlite:///ledger.db",
    ...                           project_id="proj_1", agent_id="agent_1")  # doctest: +SKIP
    >>> client.record_api_request_pay(api_calls=1, unit_price="0.3").cost  # doctest: +SKIP
    Decimal('0.3')
    """

    def __init__(
        self,
        api_key: str | None = None,
        project_id: str | None = None,
        agent_id: str | None = None,
        user_id: str | None = None,
        base_url: str | None = None,
        *,
        transport: Transport | None = None,
        **settings: Any,
    ) -> None:
        self.config = AgentMeterConfig.from_env(
            api_key=api_key,
            project_id=project_id,
            agent_id=agent_id,
            user_id=user_id,
            base_url=base_url,
            **settings,
        )
        self._transport = transport or make_transport(self.config)
        self._batch_endpoint_missing = False
        self._lock = threading.Lock()
        self._tracker: AgentMeterTracker | None = None

    # ---------------------------------------------------------- plumbing

    @property
    def project_id(self) -> str | None:
        return self.config.project_id

    @property
    def agent_id(self) -> str | None:
        return self.config.agent_id

    @property
    def user_id(self) -> str | None:
        return self.config.user_id

    @property
    def base_url(self) -> str:
        return self._transport.describe

    @property
    def transport(self) -> Transport:
        return self._transport

    def __repr__(self) -> str:
        return (
            f"AgentMeterClient(base_url={self.base_url!r}, project_id={self.project_id!r}, "
            f"agent_id={self.agent_id!r}, user_id={self.user_id!r})"
        )

    def __enter__(self) -> AgentMeterClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def tracker(self) -> AgentMeterTracker:
        """The client's default tracker (made on first use), where the
        decorators, with-blocks and LangChain handler send events."""
        if self._tracker is None:
            with self._lock:
                if self._tracker is None:
                    from .tracker import AgentMeterTracker

                    self._tracker = AgentMeterTracker(self, batch_size=self.config.batch_size)
        return self._tracker

    def flush(self, timeout: float | None = None) -> bool:
        """Deliver what the default tracker holds; True when all of it arrived.

        Call it before a short-lived process ends (serverless handlers,
        Celery tasks, cron jobs); it waits at most ``timeout`` seconds.
        """
        return self._tracker.flush(timeout) if self._tracker is not None else True

    def close(self, timeout: float | None = None) -> None:
        """Flush and stop the default tracker (bounded), then release connections
        and the embedded ledger. Safe to call twice."""
        if self._tracker is not None:
            self._tracker.close(timeout)
        self._transport.close()

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        idempotent: bool = True,
    ) -> Any:
        return self._transport.request(
            method, path, params=params, body=body, idempotent=idempotent
        )

    def _project(self, project_id: str | None) -> str:
        chosen = project_id or self.config.project_id or self._transport.default_project_id
        if not chosen:
            raise AgentMeterConfigurationError(
                "project_id is not set: pass project_id=..., or set AGENTMETER_PROJECT_ID"
            )
        return chosen

    def _agent(self, agent_id: str | None) -> str:
        return agent_id or self.config.agent_id or "default"

    def _user(self, user_id: str | None) -> str:
        return user_id or self.config.user_id or "anonymous"

    # ------------------------------------------------------------ health

    def health_check(self) -> dict[str, Any]:
        """``GET /health``: ``{"status": "healthy", "version": ...}``."""
        answer = self._request("GET", "/health")
        return dict(answer) if isinstance(answer, Mapping) else {"status": answer}

    # ------------------------------------------------------------ events

    def record_event(self, event: MeterEvent) -> MeterEventResponse:
        """Send one event. Its id makes resending it safe: it is stored once."""
        if not isinstance(event, MeterEvent):
            raise TypeError(
                "record_event() takes an APIRequestPayEvent, TokenBasedPayEvent or InstantPayEvent"
            )
        answer = self._request("POST", "/api/meter/event", body=event.to_dict())
        return MeterEventResponse.from_dict(answer)

    def record_events(self, events: Iterable[MeterEvent]) -> BatchResult:
        """Send many events through the batch endpoint, 1000 per request.

        Invalid events come back in ``rejected``; the others are stored. On a
        server without the batch endpoint (404) events are sent one by one.
        """
        return self.send_batch([event.to_dict() for event in events])

    def send_batch(
        self,
        events: Sequence[Mapping[str, Any]],
        *,
        sleep: Callable[[float], None] | None = None,
    ) -> BatchResult:
        """Send events already in their wire form (the tracker's path); see record_events.

        ``sleep`` replaces the retry policy's sleep (the tracker's can be cut
        short by shutdown).
        """
        total = BatchResult()
        for start in range(0, len(events), MAX_BATCH):
            part = self._send_chunk(events[start : start + MAX_BATCH], sleep)
            total.accepted += part.accepted
            total.duplicates += part.duplicates
            total.rejected.extend(
                rejected.model_copy(update={"index": rejected.index + start})
                for rejected in part.rejected
            )
        return total

    def _send_chunk(
        self, events: Sequence[Mapping[str, Any]], sleep: Callable[[float], None] | None
    ) -> BatchResult:
        if not events:
            return BatchResult()
        if not self._batch_endpoint_missing:
            body = {"events": list(events)}
            try:
                answer = self._transport.request(
                    "POST", "/api/meter/events/batch", body=body, sleep=sleep
                )
                return BatchResult.from_dict(answer)
            except NotFoundError:
                logger.info("server has no batch endpoint; sending events one by one")
                self._batch_endpoint_missing = True
        return self._send_one_by_one(events, sleep)

    def _send_one_by_one(
        self, events: Sequence[Mapping[str, Any]], sleep: Callable[[float], None] | None
    ) -> BatchResult:
        result = BatchResult()
        for index, event in enumerate(events):
            try:
                answer = MeterEventResponse.from_dict(
                    self._transport.request("POST", "/api/meter/event", body=event, sleep=sleep)
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
        return APIRequestPayEvent(
            api_calls=api_calls,
            unit_price=self.config.api_request_unit_price if unit_price is None else unit_price,
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
    ) -> TokenBasedPayEvent:
        """Build (and validate) a token event with the client's defaults."""
        config = self.config
        return TokenBasedPayEvent(
            tokens_in=tokens_in,
            tokens_out=tokens_out,
            input_token_price=(
                config.input_token_price if input_token_price is None else input_token_price
            ),
            output_token_price=(
                config.output_token_price if output_token_price is None else output_token_price
            ),
            **self._common(project_id, agent_id, user_id, metadata),
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
            amount=to_money(amount, "amount"),
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
            "project_id": self._project(project_id),
            "agent_id": self._agent(agent_id),
            "user_id": self._user(user_id),
            "metadata": dict(metadata) if metadata else {},
        }

    def record_api_request_pay(
        self,
        api_calls: int = 1,
        unit_price: Decimal | float | str | None = None,
        project_id: str | None = None,
        agent_id: str | None = None,
        user_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> MeterEventResponse:
        """Charge ``api_calls x unit_price`` now (the default price is the config's)."""
        return self.record_event(
            self.build_api_request_pay(
                api_calls, unit_price, project_id, agent_id, user_id, metadata
            )
        )

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
    ) -> MeterEventResponse:
        """Charge for tokens now: ``tokens_in x input price + tokens_out x output price``."""
        return self.record_event(
            self.build_token_based_pay(
                tokens_in,
                tokens_out,
                input_token_price,
                output_token_price,
                project_id,
                agent_id,
                user_id,
                metadata,
            )
        )

    def record_instant_pay(
        self,
        amount: Decimal | float | str,
        description: str = "",
        project_id: str | None = None,
        agent_id: str | None = None,
        user_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> MeterEventResponse:
        """Charge ``amount`` now."""
        return self.record_event(
            self.build_instant_pay(amount, description, project_id, agent_id, user_id, metadata)
        )


def create_client(
    api_key: str | None = None,
    project_id: str | None = None,
    agent_id: str | None = None,
    user_id: str | None = None,
    base_url: str | None = None,
    **settings: Any,
) -> AgentMeterClient:
    """Make a client (the 0.2 helper); arguments not given come from ``AGENTMETER_*``.

    Without a user id from either, events are charged to ``"anonymous"``.
    """
    return AgentMeterClient(
        api_key=api_key,
        project_id=project_id,
        agent_id=agent_id,
        user_id=user_id,
        base_url=base_url,
        **settings,
    )


def quick_api_request_pay(
    client: AgentMeterClient,
    project_id: str | None = None,
    agent_id: str | None = None,
    user_id: str | None = None,
    api_calls: int = 1,
    unit_price: Decimal | float | str | None = None,
) -> MeterEventResponse:
    """Record one API-request charge in a single call (the 0.2 helper)."""
    return client.record_api_request_pay(
        api_calls=api_calls,
        unit_price=unit_price,
        project_id=project_id,
        agent_id=agent_id,
        user_id=user_id,
    )


def quick_token_based_pay(
    client: AgentMeterClient,
    project_id: str | None = None,
    agent_id: str | None = None,
    user_id: str | None = None,
    tokens_in: int = 0,
    tokens_out: int = 0,
    input_token_price: Decimal | float | str | None = None,
    output_token_price: Decimal | float | str | None = None,
) -> MeterEventResponse:
    """Record one token charge in a single call (the 0.2 helper)."""
    return client.record_token_based_pay(
        tokens_in=tokens_in,
        tokens_out=tokens_out,
        input_token_price=input_token_price,
        output_token_price=output_token_price,
        project_id=project_id,
        agent_id=agent_id,
        user_id=user_id,
    )


def quick_instant_pay(
    client: AgentMeterClient,
    project_id: str | None = None,
    agent_id: str | None = None,
    user_id: str | None = None,
    amount: Decimal | float | str = 0,
    description: str = "Instant payment",
) -> MeterEventResponse:
    """Record one instant charge in a single call (the 0.2 helper)."""
    return client.record_instant_pay(
        amount=amount,
        description=description,
        project_id=project_id,
        agent_id=agent_id,
        user_id=user_id,
    )
