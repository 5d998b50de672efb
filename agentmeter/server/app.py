"""The reference AgentMeter server: every endpoint of the wire API over a ledger.

Routes are thin: read the body (exact decimals), check the key, and hand the
request to :class:`~agentmeter.ledger.api.LedgerAPI` in a worker thread.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import Response
from fastapi.security import HTTPBearer
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from .._version import __version__
from ..core.wire import (
    BillingCreateBody,
    BillingListQuery,
    BillingUpdateBody,
    EventQuery,
    IncrementMeterBody,
    MeterKey,
    ProjectCreateBody,
    ProjectUpdateBody,
    ReportQuery,
    SetMeterBody,
    StatsQuery,
)
from ..ledger import Ledger
from ..ledger.admission import DEFAULT_MAX_FUTURE_SKEW
from ..ledger.api import LedgerAPI, Principal, query_dict
from ..ledger.nowait import WouldWait
from ..models import (
    EVENT_ADAPTER,
    AnyEvent,
    BatchResult,
    BillingRecord,
    MeterEventResponse,
    MeterStats,
    Project,
    ReportRow,
    UserMeter,
)
from .cloudevent_routes import install_cloudevent_routes
from .dashboard.mount import install_dashboard
from .direct import serve_directly
from .http import KeyChecker, install_error_handlers, json_response, read_json
from .in_flight import CountRequests, InFlight
from .key_cache import KeyCache, configured_key_cache_seconds
from .openapi import install_openapi, query_parameters, request_body
from .prices import install_price_routes
from .summary_routes import install_summary_routes
from .webhook_routes import install_webhook_routes
from .workers import Workers


class ErrorDetail(BaseModel):
    code: str
    message: str
    details: list[dict[str, Any]] = []


class ErrorBody(BaseModel):
    error: ErrorDetail


class EventBatch(BaseModel):
    events: list[AnyEvent]


class CreatedProject(Project):
    api_key: str  # type: ignore[assignment]  # shown once, in clear


class Health(BaseModel):
    status: str
    version: str


_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": text}
    for status, text in [
        (400, "malformed request"),
        (401, "missing or invalid API key"),
        (403, "the key may not touch this project"),
        (404, "unknown path or object"),
        (413, "body too large"),
        (422, "invalid field (details name it)"),
    ]
}
_DESCRIPTION = (
    "Metering and billing for AI agents: events of three payment types, user "
    "meters, stats, reports, projects and billing records. Money is exact: "
    "send numbers or decimal strings; answers carry decimal strings."
)
Responder = Callable[..., Awaitable[Response]]


class _KeyAuth(HTTPBearer):
    """The API's security scheme (HTTP bearer, in the OpenAPI document) and the key
    check itself: one dependency for FastAPI to solve per request, not two."""

    async def __call__(self, request: Request) -> Principal:  # type: ignore[override]
        checker: KeyChecker = request.app.state.key_checker
        return await checker(request)


_principal = _KeyAuth(
    auto_error=False, scheme_name="HTTPBearer", description="a project key or the admin key"
)


# Module-level, so FastAPI can resolve it in the routes' (string) annotations.
Who = Annotated[Principal, Depends(_principal)]


def create_app(
    ledger: Ledger,
    *,
    admin_key: str | None = None,
    max_future_skew: timedelta | None = DEFAULT_MAX_FUTURE_SKEW,
    private_webhooks: bool = True,
    key_cache_seconds: float | None = None,
) -> FastAPI:
    """A FastAPI app serving ``ledger``. ``admin_key`` is accepted besides stored keys;
    an event stamped more than ``max_future_skew`` ahead of now is refused (None: never);
    webhook endpoints may be private addresses only with ``private_webhooks``; a key
    revoked elsewhere works here up to ``key_cache_seconds`` longer (None: from
    ``AGENTMETER_KEY_CACHE_SECONDS``, default 5; see :mod:`.key_cache`)."""
    app = FastAPI(title="AgentMeter", version=__version__, description=_DESCRIPTION)
    install_error_handlers(app)
    install_openapi(app)
    api = LedgerAPI(ledger, max_future_skew=max_future_skew, private_webhooks=private_webhooks)
    seconds = configured_key_cache_seconds() if key_cache_seconds is None else key_cache_seconds
    app.state.key_checker = KeyChecker(ledger, admin_key, KeyCache(seconds))

    def answer(status: int = 200) -> Responder:
        async def call(method: Callable[..., Any], *args: Any) -> Response:
            return json_response(await run_in_threadpool(method, *args), status)

        return call

    ok, created = answer(200), answer(201)

    @app.get("/health", response_model=Health, tags=["health"])
    async def health() -> Response:
        return json_response(api.health())

    serve_directly(app, health, app.state.key_checker)
    _event_routes(app, api, ok)
    _meter_routes(app, api, ok)
    _admin_routes(app, api, ok, created)
    install_dashboard(app, ledger, api, app.state.key_checker)
    return app


def _event_routes(app: FastAPI, api: LedgerAPI, ok: Responder) -> None:
    @app.post(
        "/api/meter/event",
        status_code=201,
        tags=["events"],
        response_model=MeterEventResponse,
        responses={
            **_ERRORS,
            409: {
                "model": ErrorBody,
                "description": "idempotency_conflict: the id was recorded with other content",
            },
        },
        openapi_extra=request_body("Event", EVENT_ADAPTER),
    )
    async def record_event(request: Request, who: Who) -> Response:
        body = await read_json(request)
        if in_flight.alone():  # no other request needs the loop meanwhile (in_flight.py)
            try:
                return json_response(api.record_event(who, body, now=True), 201)
            except WouldWait:
                pass
        return json_response(await writes.run(api.record_event, who, body), 201)

    writes = Workers(8)  # a cheaper hand-off than the thread pool (workers.py)
    in_flight = InFlight()
    app.add_middleware(CountRequests, counter=in_flight)
    serve_directly(app, record_event, app.state.key_checker)

    @app.post(
        "/api/meter/events/batch",
        tags=["events"],
        response_model=BatchResult,
        responses=_ERRORS,
        openapi_extra=request_body("EventBatch", EventBatch),
    )
    async def record_batch(request: Request, who: Who) -> Response:
        return await ok(api.record_batch, who, await read_json(request))

    @app.get(
        "/api/meter/events",
        tags=["events"],
        response_model=list[AnyEvent],
        responses=_ERRORS,
        openapi_extra=query_parameters(EventQuery),
    )
    async def list_events(request: Request, who: Who) -> Response:
        return await ok(api.list_events, who, _params(request))

    @app.get(
        "/api/meter/stats",
        tags=["events"],
        response_model=MeterStats,
        responses=_ERRORS,
        openapi_extra=query_parameters(StatsQuery),
    )
    async def stats(request: Request, who: Who) -> Response:
        return await ok(api.stats, who, _params(request))

    serve_directly(app, list_events, app.state.key_checker)
    serve_directly(app, stats, app.state.key_checker)

    @app.get(
        "/api/meter/report",
        tags=["events"],
        response_model=list[ReportRow],
        responses=_ERRORS,
        openapi_extra=query_parameters(ReportQuery),
    )
    async def report(request: Request, who: Who) -> Response:
        return await ok(api.report, who, _params(request))


def _meter_routes(app: FastAPI, api: LedgerAPI, ok: Responder) -> None:
    @app.get(
        "/api/meter/usage",
        tags=["user meters"],
        response_model=UserMeter,
        responses=_ERRORS,
        openapi_extra=query_parameters(MeterKey),
    )
    async def get_meter(request: Request, who: Who) -> Response:
        params = _params(request)
        try:  # one indexed row: on the loop when it needs no wait (ledger/nowait.py)
            return json_response(api.get_meter(who, params, now=True))
        except WouldWait:
            return await ok(api.get_meter, who, params)

    serve_directly(app, get_meter, app.state.key_checker)

    @app.put(
        "/api/meter",
        tags=["user meters"],
        response_model=UserMeter,
        responses=_ERRORS,
        openapi_extra=request_body("SetMeterBody", SetMeterBody),
    )
    async def set_meter(request: Request, who: Who) -> Response:
        return await ok(api.set_meter, who, await read_json(request))

    @app.post(
        "/api/meter/increment",
        tags=["user meters"],
        response_model=UserMeter,
        responses=_ERRORS,
        openapi_extra=request_body("IncrementMeterBody", IncrementMeterBody),
    )
    async def increment_meter(request: Request, who: Who) -> Response:
        return await ok(api.increment_meter, who, await read_json(request))

    @app.post(
        "/api/meter/reset",
        tags=["user meters"],
        response_model=UserMeter,
        responses=_ERRORS,
        openapi_extra=request_body("MeterKey", MeterKey),
    )
    async def reset_meter(request: Request, who: Who) -> Response:
        return await ok(api.reset_meter, who, await read_json(request))


def _admin_routes(app: FastAPI, api: LedgerAPI, ok: Responder, created: Responder) -> None:
    @app.post(
        "/projects",
        status_code=201,
        tags=["projects"],
        response_model=CreatedProject,
        responses={**_ERRORS, 409: {"model": ErrorBody, "description": "id already taken"}},
        openapi_extra=request_body("ProjectCreateBody", ProjectCreateBody),
    )
    async def create_project(request: Request, who: Who) -> Response:
        return await created(api.create_project, who, await read_json(request))

    @app.get("/projects", tags=["projects"], response_model=list[Project], responses=_ERRORS)
    async def list_projects(who: Who) -> Response:
        return await ok(api.list_projects, who)

    @app.get("/projects/{project_id}", tags=["projects"], response_model=Project, responses=_ERRORS)
    async def get_project(project_id: str, who: Who) -> Response:
        return await ok(api.get_project, who, project_id)

    @app.patch(
        "/projects/{project_id}",
        tags=["projects"],
        response_model=Project,
        responses=_ERRORS,
        openapi_extra=request_body("ProjectUpdateBody", ProjectUpdateBody),
    )
    async def update_project(project_id: str, request: Request, who: Who) -> Response:
        return await ok(api.update_project, who, project_id, await read_json(request))

    @app.delete("/projects/{project_id}", tags=["projects"], responses=_ERRORS)
    async def delete_project(project_id: str, request: Request, who: Who) -> Response:
        answer = await ok(api.delete_project, who, project_id)
        request.app.state.key_checker.cache.forget_project(project_id)  # its keys went with it
        return answer

    @app.post(
        "/billing-records",
        status_code=201,
        tags=["billing"],
        response_model=BillingRecord,
        responses=_ERRORS,
        openapi_extra=request_body("BillingCreateBody", BillingCreateBody),
    )
    async def create_billing(request: Request, who: Who) -> Response:
        return await created(api.create_billing_record, who, await read_json(request))

    @app.get(
        "/billing-records",
        tags=["billing"],
        response_model=list[BillingRecord],
        responses=_ERRORS,
        openapi_extra=query_parameters(BillingListQuery),
    )
    async def list_billing(request: Request, who: Who) -> Response:
        return await ok(api.list_billing_records, who, _params(request))

    @app.patch(
        "/billing-records/{record_id}",
        tags=["billing"],
        response_model=BillingRecord,
        responses=_ERRORS,
        openapi_extra=request_body("BillingUpdateBody", BillingUpdateBody),
    )
    async def update_billing(record_id: str, request: Request, who: Who) -> Response:
        return await ok(api.update_billing_record, who, record_id, await read_json(request))

    install_price_routes(app, api, ok, _principal, _ERRORS)
    install_webhook_routes(app, api, (ok, created), _principal, _ERRORS)
    install_summary_routes(app, api, ok, _principal, _ERRORS)
    install_cloudevent_routes(app, api, _principal, _ERRORS)


def _params(request: Request) -> dict[str, Any]:
    return query_dict(request.query_params.multi_items())
