"""AgentMeterClient: one synchronous method per endpoint of the wire API.

Every method validates its input first (``AgentMeterValidationError``,
nothing sent), sends through the transport (HTTP or the embedded ledger)
and returns typed models. Project, agent and user default to the client's.

The endpoint methods are written once, in one object per concern under
:mod:`agentmeter.endpoints`; the client holds those objects and forwards to
them (``_delegate`` keeps each method's real signature for ``help()`` and mypy).
Each endpoint is a sans-I/O plan (:mod:`agentmeter.endpoints.plan`) that
this client carries out in place and :class:`~agentmeter.async_client.AsyncAgentMeterClient`
awaits: one definition per endpoint, two thin executors.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar

from .capture.budget import BudgetGuard, ThresholdCallback, threshold_shares_of
from .config import AgentMeterConfig
from .core.price_book import PriceBook
from .endpoints.admin import AdminEndpoints
from .endpoints.cloudevents import CloudEventEndpoints
from .endpoints.connection import Connection
from .endpoints.events import EventEndpoints
from .endpoints.meters import MeterEndpoints
from .endpoints.prices import PriceEndpoints
from .endpoints.queries import QueryEndpoints
from .endpoints.webhooks import WebhookEndpoints
from .models import MeterEventResponse
from .pricing import to_money
from .transport import Transport
from .transport.factory import make_transport

if TYPE_CHECKING:
    from .tracker import AgentMeterTracker

logger = logging.getLogger("agentmeter")

P = ParamSpec("P")
R = TypeVar("R")


def _delegate(
    method: Callable[Concatenate[Any, P], R], part: str
) -> Callable[Concatenate[Any, P], R]:
    """A client method that calls ``method`` on the client's ``part`` (an endpoint group).

    It keeps the method's name, docstring and signature (``help()``,
    ``inspect.signature``), and mypy sees the same parameters.
    """

    def call(self: Any, /, *args: P.args, **kwargs: P.kwargs) -> R:
        return method(getattr(self, part), *args, **kwargs)

    functools.update_wrapper(call, method)
    return call


class AgentMeterClient:
    """Talks to an AgentMeter server, or to an embedded ledger file.

    >>> client = AgentMeterClient(base_url="sqlite:///ledger.db",
    ...                           project_id="proj_1", agent_id="agent_1")  # doctest: +SKIP
    >>> client.record_api_request_pay(api_calls=1, unit_price="0.3").cost  # doctest: +SKIP
    Decimal('0.3')

    The endpoint methods live in one object per concern under
    :mod:`agentmeter.endpoints` (events, queries, meters, admin, prices,
    webhooks), all sending through one
    :class:`~agentmeter.endpoints.connection.Connection`; the client holds
    them, forwards each call, and owns the tracker and budget.
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
        on_threshold: ThresholdCallback | None = None,
        threshold_shares: Iterable[Decimal | int | str] | None = None,
        **settings: Any,
    ) -> None:
        # Budget alerts seen in this process, passed to the budget guard
        # (docs/decorators.md, "Budget guards"); the shares are checked now.
        self._on_threshold = on_threshold
        self._threshold_shares = threshold_shares_of(threshold_shares)
        config = AgentMeterConfig.from_env(
            api_key=api_key,
            project_id=project_id,
            agent_id=agent_id,
            user_id=user_id,
            base_url=base_url,
            **settings,
        )
        self._connection = Connection(
            config,
            transport or make_transport(config),
            settle_before_meter_change=self._settle_before_meter_change,
            meter_changed=self._meter_changed,
            events_delivered=self._events_delivered,
        )
        self._events = EventEndpoints(self._connection)
        self._queries = QueryEndpoints(self._connection)
        self._meters = MeterEndpoints(self._connection)
        self._admin = AdminEndpoints(self._connection)
        self._prices = PriceEndpoints(self._connection)
        self._webhooks = WebhookEndpoints(self._connection)
        self._cloudevents = CloudEventEndpoints(self._connection)
        self._connection.price_book = PriceBook(self._prices, ttl=config.price_cache_ttl)
        self._lock = threading.Lock()
        self._tracker: AgentMeterTracker | None = None
        self._budget: BudgetGuard | None = None

    # ------------------------------------------------------------ events

    record_event = _delegate(EventEndpoints.record_event, "_events")
    record_events = _delegate(EventEndpoints.record_events, "_events")
    send_batch = _delegate(EventEndpoints.send_batch, "_events")
    build_api_request_pay = _delegate(EventEndpoints.build_api_request_pay, "_events")
    build_token_based_pay = _delegate(EventEndpoints.build_token_based_pay, "_events")
    build_instant_pay = _delegate(EventEndpoints.build_instant_pay, "_events")
    record_api_request_pay = _delegate(EventEndpoints.record_api_request_pay, "_events")
    record_token_based_pay = _delegate(EventEndpoints.record_token_based_pay, "_events")
    record_instant_pay = _delegate(EventEndpoints.record_instant_pay, "_events")
    record_cloudevents = _delegate(CloudEventEndpoints.record_cloudevents, "_cloudevents")

    # ----------------------------------------------------------- queries

    get_events = _delegate(QueryEndpoints.get_events, "_queries")
    get_meter_stats = _delegate(QueryEndpoints.get_meter_stats, "_queries")
    get_report = _delegate(QueryEndpoints.get_report, "_queries")
    get_usage_summary = _delegate(QueryEndpoints.get_usage_summary, "_queries")

    # ------------------------------------------------------- user meters

    get_user_meter = _delegate(MeterEndpoints.get_user_meter, "_meters")
    set_user_meter = _delegate(MeterEndpoints.set_user_meter, "_meters")
    increment_user_meter = _delegate(MeterEndpoints.increment_user_meter, "_meters")
    reset_user_meter = _delegate(MeterEndpoints.reset_user_meter, "_meters")

    # -------------------------------------------- projects and billing

    create_project = _delegate(AdminEndpoints.create_project, "_admin")
    get_project = _delegate(AdminEndpoints.get_project, "_admin")
    list_projects = _delegate(AdminEndpoints.list_projects, "_admin")
    update_project = _delegate(AdminEndpoints.update_project, "_admin")
    delete_project = _delegate(AdminEndpoints.delete_project, "_admin")
    create_billing_record = _delegate(AdminEndpoints.create_billing_record, "_admin")
    list_billing_records = _delegate(AdminEndpoints.list_billing_records, "_admin")
    update_billing_record = _delegate(AdminEndpoints.update_billing_record, "_admin")
    get_prices = _delegate(PriceEndpoints.get_prices, "_prices")
    set_price = _delegate(PriceEndpoints.set_price, "_prices")
    delete_price = _delegate(PriceEndpoints.delete_price, "_prices")
    set_markup = _delegate(PriceEndpoints.set_markup, "_prices")
    get_missing_prices = _delegate(PriceEndpoints.get_missing_prices, "_prices")

    # ------------------------------------------------ alerts and webhooks

    create_webhook_endpoint = _delegate(WebhookEndpoints.create_webhook_endpoint, "_webhooks")
    list_webhook_endpoints = _delegate(WebhookEndpoints.list_webhook_endpoints, "_webhooks")
    delete_webhook_endpoint = _delegate(WebhookEndpoints.delete_webhook_endpoint, "_webhooks")
    send_test_webhook = _delegate(WebhookEndpoints.send_test_webhook, "_webhooks")
    list_webhook_deliveries = _delegate(WebhookEndpoints.list_webhook_deliveries, "_webhooks")
    redeliver_webhook = _delegate(WebhookEndpoints.redeliver_webhook, "_webhooks")
    get_alert_settings = _delegate(WebhookEndpoints.get_alert_settings, "_webhooks")
    set_alert_settings = _delegate(WebhookEndpoints.set_alert_settings, "_webhooks")

    # ------------------------------------------------------------ health

    health_check = _delegate(QueryEndpoints.health_check, "_queries")

    # ---------------------------------------------------------- plumbing

    @property
    def config(self) -> AgentMeterConfig:
        return self._connection.config

    @config.setter
    def config(self, config: AgentMeterConfig) -> None:
        self._connection.config = config

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
        return self._connection.transport.describe

    @property
    def transport(self) -> Transport:
        return self._connection.transport

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
    def price_book(self) -> PriceBook:
        """Each project's price table (its own prices and markup), cached for
        ``price_cache_ttl`` seconds; token charges naming a model are priced by it."""
        assert self._connection.price_book is not None
        return self._connection.price_book

    @property
    def budget(self) -> BudgetGuard:
        """The budget guard behind ``enforce_budget=True`` and :meth:`check_budget`."""
        if self._budget is None:
            with self._lock:
                if self._budget is None:
                    self._budget = BudgetGuard(
                        self,
                        ttl=self.config.budget_cache_ttl,
                        on_threshold=self._on_threshold,
                        threshold_shares=self._threshold_shares,
                    )
        return self._budget

    def check_budget(
        self, user_id: str | None = None, cost: Any = 0, project_id: str | None = None
    ) -> None:
        """Raise :class:`BudgetExceededError` if ``cost`` does not fit the user's budget.

        Reads the meter at most once per ``budget_cache_ttl`` seconds; costs
        tracked here since are counted too. Reserves nothing.
        """
        guard = self.budget
        project = self._connection.resolve_project(project_id)
        user = self._connection.resolve_user(user_id)
        reservation = guard.reserve(project, user, to_money(cost, "cost"), strict=True)
        guard.release(reservation)

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
        self._connection.transport.close()

    # ------------------------------------- hooks the endpoint groups call

    def _settle_before_meter_change(self) -> None:
        if self._tracker is not None and not self._tracker.flush():
            logger.warning("agentmeter: not every tracked event was delivered before a meter reset")

    def _meter_changed(self, project_id: str, user_id: str) -> None:
        if self._budget is not None:
            self._budget.forget(project_id, user_id)

    def _events_delivered(self, events: Sequence[Mapping[str, Any]]) -> None:
        if self._budget is not None:  # these costs are in the server's meters now
            self._budget.delivered([str(event["id"]) for event in events])


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
