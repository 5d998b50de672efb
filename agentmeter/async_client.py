"""AsyncAgentMeterClient: every endpoint of the client as a coroutine, for asyncio apps.

The same names, arguments, validation, errors and return models as
:class:`~agentmeter.client.AgentMeterClient`, because it runs the very same
endpoint code: each endpoint is a sans-I/O plan
(:mod:`agentmeter.endpoints.plan`) that the sync client carries out in
place and this one awaits. Only the transport differs: ``httpx`` for a
server (:mod:`agentmeter.transport.async_http`, the same retry policy), a
worker thread for the embedded ledger (:mod:`agentmeter.transport.threaded`).

The decision worth knowing: this client is an async face on a sync
``AgentMeterClient`` it builds from the same arguments and holds (its *sync
twin*). The twin owns the state both share: the config, the endpoint groups
(and what they remember), the budget guard, the price book, and the
tracker, which stays the sync background one (its worker thread sends with
the twin's transport; ``client.tracker`` is the twin's). So a meter set or
reset here drops the guard's cached reading, delivered events settle their
budget reservations, and a price changed here is seen by the tracker. What
may block and is no request (flushing the tracker before a meter reset,
reading a stale price table, a budget check) runs on a worker thread.

Use one client per event loop (an ``httpx`` pool belongs to its loop).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar

from .client import AgentMeterClient
from .config import AgentMeterConfig
from .core.price_book import PriceBook
from .endpoints.admin import AdminEndpoints
from .endpoints.cloudevents import CloudEventEndpoints
from .endpoints.events import EventEndpoints
from .endpoints.meters import MeterEndpoints
from .endpoints.plan import Plan, arun, plan_of
from .endpoints.prices import PriceEndpoints
from .endpoints.queries import QueryEndpoints
from .endpoints.webhooks import WebhookEndpoints
from .transport import AsyncTransport, Transport
from .transport.async_factory import async_transport_for

if TYPE_CHECKING:
    from .capture.budget import BudgetGuard
    from .tracker import AgentMeterTracker

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")


def _awaited(
    method: Callable[Concatenate[Any, P], R], part: str
) -> Callable[Concatenate[Any, P], Coroutine[Any, Any, R]]:
    """The coroutine twin of an endpoint method of the group ``part``: it runs
    the same plan, awaited. Name, docstring and signature are the method's."""
    plan = plan_of(method)

    async def call(self: AsyncAgentMeterClient, /, *args: P.args, **kwargs: P.kwargs) -> R:
        return await self._run(plan(getattr(self._sync, part), *args, **kwargs))

    functools.update_wrapper(call, method)
    return call


def _built(method: Callable[Concatenate[Any, P], R]) -> Callable[Concatenate[Any, P], R]:
    """A sync builder of the twin (``build_*``: nothing is sent), as it is."""

    def call(self: AsyncAgentMeterClient, /, *args: P.args, **kwargs: P.kwargs) -> R:
        return method(self._sync, *args, **kwargs)

    functools.update_wrapper(call, method)
    return call


class AsyncAgentMeterClient:
    """Talks to an AgentMeter server, or to an embedded ledger file, without
    blocking the event loop.

    >>> async with AsyncAgentMeterClient(
    ...     base_url="http://127.0.0.1:8787", api_key=key, project_id="proj_1"
    ... ) as client:                                                    # doctest: +SKIP
    ...     meter = await client.get_user_meter("user_42")
    ...     await client.record_api_request_pay(unit_price="0.3", user_id="user_42")

    Built with the arguments of :class:`AgentMeterClient` (``transport=``
    too: a sync transport, whose async twin is made with the same settings).
    Calls beyond what the transport carries at once (its connection pool,
    or its worker threads) wait their turn without doing any work, so a
    burst of thousands of calls never holds the loop for long.
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
        self._sync = AgentMeterClient(
            api_key, project_id, agent_id, user_id, base_url, transport=transport, **settings
        )
        self._transport = async_transport_for(self._sync.transport)
        self._gate: asyncio.Semaphore | None = None
        self._gate_loop: asyncio.AbstractEventLoop | None = None

    # ------------------------------------------------------------ events

    record_event = _awaited(EventEndpoints.record_event, "_events")
    record_events = _awaited(EventEndpoints.record_events, "_events")
    send_batch = _awaited(EventEndpoints.send_batch, "_events")
    build_api_request_pay = _built(AgentMeterClient.build_api_request_pay)
    build_token_based_pay = _built(AgentMeterClient.build_token_based_pay)
    build_instant_pay = _built(AgentMeterClient.build_instant_pay)
    record_api_request_pay = _awaited(EventEndpoints.record_api_request_pay, "_events")
    record_token_based_pay = _awaited(EventEndpoints.record_token_based_pay, "_events")
    record_instant_pay = _awaited(EventEndpoints.record_instant_pay, "_events")
    record_cloudevents = _awaited(CloudEventEndpoints.record_cloudevents, "_cloudevents")

    # ----------------------------------------------------------- queries

    get_events = _awaited(QueryEndpoints.get_events, "_queries")
    get_meter_stats = _awaited(QueryEndpoints.get_meter_stats, "_queries")
    get_report = _awaited(QueryEndpoints.get_report, "_queries")
    get_usage_summary = _awaited(QueryEndpoints.get_usage_summary, "_queries")
    health_check = _awaited(QueryEndpoints.health_check, "_queries")

    # ------------------------------------------------------- user meters

    get_user_meter = _awaited(MeterEndpoints.get_user_meter, "_meters")
    set_user_meter = _awaited(MeterEndpoints.set_user_meter, "_meters")
    increment_user_meter = _awaited(MeterEndpoints.increment_user_meter, "_meters")
    reset_user_meter = _awaited(MeterEndpoints.reset_user_meter, "_meters")

    # -------------------------------------------- projects and billing

    create_project = _awaited(AdminEndpoints.create_project, "_admin")
    get_project = _awaited(AdminEndpoints.get_project, "_admin")
    list_projects = _awaited(AdminEndpoints.list_projects, "_admin")
    update_project = _awaited(AdminEndpoints.update_project, "_admin")
    delete_project = _awaited(AdminEndpoints.delete_project, "_admin")
    create_billing_record = _awaited(AdminEndpoints.create_billing_record, "_admin")
    list_billing_records = _awaited(AdminEndpoints.list_billing_records, "_admin")
    update_billing_record = _awaited(AdminEndpoints.update_billing_record, "_admin")
    get_prices = _awaited(PriceEndpoints.get_prices, "_prices")
    set_price = _awaited(PriceEndpoints.set_price, "_prices")
    delete_price = _awaited(PriceEndpoints.delete_price, "_prices")
    set_markup = _awaited(PriceEndpoints.set_markup, "_prices")
    get_missing_prices = _awaited(PriceEndpoints.get_missing_prices, "_prices")

    # ------------------------------------------------ alerts and webhooks

    create_webhook_endpoint = _awaited(WebhookEndpoints.create_webhook_endpoint, "_webhooks")
    list_webhook_endpoints = _awaited(WebhookEndpoints.list_webhook_endpoints, "_webhooks")
    delete_webhook_endpoint = _awaited(WebhookEndpoints.delete_webhook_endpoint, "_webhooks")
    send_test_webhook = _awaited(WebhookEndpoints.send_test_webhook, "_webhooks")
    list_webhook_deliveries = _awaited(WebhookEndpoints.list_webhook_deliveries, "_webhooks")
    redeliver_webhook = _awaited(WebhookEndpoints.redeliver_webhook, "_webhooks")
    get_alert_settings = _awaited(WebhookEndpoints.get_alert_settings, "_webhooks")
    set_alert_settings = _awaited(WebhookEndpoints.set_alert_settings, "_webhooks")

    # ------------------------------------------------- budget, tracker

    async def check_budget(
        self, user_id: str | None = None, cost: Any = 0, project_id: str | None = None
    ) -> None:
        """Raise :class:`BudgetExceededError` if ``cost`` does not fit the user's budget.

        Reads the meter at most once per ``budget_cache_ttl`` seconds; costs
        tracked here since are counted too. Reserves nothing. (The shared
        budget guard is a sync object: the check runs on a worker thread.)
        """
        await asyncio.to_thread(self._sync.check_budget, user_id, cost, project_id)

    async def aflush(self, timeout: float | None = None) -> bool:
        """Deliver what the default tracker holds; True when all of it arrived.

        The tracker's own bounded ``flush()``, awaited on a worker thread;
        it waits at most ``timeout`` seconds.
        """
        return await asyncio.to_thread(self._sync.flush, timeout)

    async def aclose(self, timeout: float | None = None) -> None:
        """Flush and stop the default tracker (bounded), then release connections
        and the embedded ledger. Safe to call twice.

        The async transport goes first (the embedded ledger's worker threads
        finish the calls under way); the sync twin then closes the tracker,
        which sends through its own transport, and the ledger."""
        await self._transport.aclose()
        await asyncio.to_thread(self._sync.close, timeout)

    async def __aenter__(self) -> AsyncAgentMeterClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # ---------------------------------------------------------- plumbing

    async def _run(self, plan: Plan[T]) -> T:
        async with self._admission():
            return await arun(plan, self._transport)

    def _admission(self) -> asyncio.Semaphore:
        """The gate in front of the transport: ``concurrency`` calls at a time
        (one gate per event loop: a semaphore belongs to its loop)."""
        loop = asyncio.get_running_loop()
        if self._gate is None or self._gate_loop is not loop:
            self._gate = asyncio.Semaphore(self._transport.concurrency)
            self._gate_loop = loop
        return self._gate

    @property
    def config(self) -> AgentMeterConfig:
        return self._sync.config

    @config.setter
    def config(self, config: AgentMeterConfig) -> None:
        self._sync.config = config

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
    def transport(self) -> AsyncTransport:
        return self._transport

    @property
    def tracker(self) -> AgentMeterTracker:
        """The default tracker (the sync background one, made on first use):
        hand it to the decorators, with-blocks and LangChain handler."""
        return self._sync.tracker

    @property
    def price_book(self) -> PriceBook:
        """Each project's price table, cached; shared with the tracker."""
        return self._sync.price_book

    @property
    def budget(self) -> BudgetGuard:
        """The budget guard behind ``enforce_budget=True`` and :meth:`check_budget`."""
        return self._sync.budget

    def __repr__(self) -> str:
        return (
            f"AsyncAgentMeterClient(base_url={self.base_url!r}, project_id={self.project_id!r}, "
            f"agent_id={self.agent_id!r}, user_id={self.user_id!r})"
        )
