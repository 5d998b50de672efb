"""AgentMeterClient: one synchronous method per endpoint of the wire API.

Every method validates its input first (``AgentMeterValidationError``,
nothing sent), sends through the transport (HTTP or the embedded ledger)
and returns typed models. Project, agent and user default to the client's.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from .capture.budget import BudgetGuard
from .config import AgentMeterConfig
from .endpoints.events import EventEndpointsMixin
from .endpoints.queries import AdminEndpointsMixin, QueryEndpointsMixin
from .errors import AgentMeterConfigurationError
from .models import BatchResult, MeterEventResponse
from .pricing import to_money
from .transport import Transport
from .transport.factory import make_transport

if TYPE_CHECKING:
    from .tracker import AgentMeterTracker

logger = logging.getLogger("agentmeter")


class AgentMeterClient(EventEndpointsMixin, QueryEndpointsMixin, AdminEndpointsMixin):
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
        self._budget: BudgetGuard | None = None

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

    @property
    def budget(self) -> BudgetGuard:
        """The budget guard behind ``enforce_budget=True`` and :meth:`check_budget`."""
        if self._budget is None:
            with self._lock:
                if self._budget is None:
                    self._budget = BudgetGuard(self, ttl=self.config.budget_cache_ttl)
        return self._budget

    def check_budget(
        self, user_id: str | None = None, cost: Any = 0, project_id: str | None = None
    ) -> None:
        """Raise :class:`BudgetExceededError` if ``cost`` does not fit the user's budget.

        Reads the meter at most once per ``budget_cache_ttl`` seconds; costs
        tracked here since are counted too. Reserves nothing.
        """
        guard = self.budget
        reservation = guard.reserve(
            self._project(project_id), self._user(user_id), to_money(cost, "cost"), strict=True
        )
        guard.release(reservation)

    def send_batch(
        self,
        events: Sequence[Mapping[str, Any]],
        *,
        sleep: Callable[[float], None] | None = None,
    ) -> BatchResult:
        result = super().send_batch(events, sleep=sleep)
        if self._budget is not None:  # these costs are in the server's meters now
            self._budget.delivered([str(event["id"]) for event in events])
        return result

    def _settle_before_meter_change(self) -> None:
        if self._tracker is not None and not self._tracker.flush():
            logger.warning("agentmeter: not every tracked event was delivered before a meter reset")

    def _meter_changed(self, project_id: str, user_id: str) -> None:
        if self._budget is not None:
            self._budget.forget(project_id, user_id)

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
