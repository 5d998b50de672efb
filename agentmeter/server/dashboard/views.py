"""The dashboard's pages (GET): overview, users, one user, events, billing, prices."""

from __future__ import annotations

from datetime import datetime, time, timedelta, timezone
from typing import Any

from fastapi import Request
from fastapi.responses import Response, StreamingResponse
from starlette.concurrency import iterate_in_threadpool, run_in_threadpool

from ...core.wire import EventQuery, check_metadata_key
from ...errors import AgentMeterValidationError
from ...ledger.api import parse
from ...ledger.errors import WireError
from ...models import PaymentType
from ...pricing import round_to_cents
from . import exports, figures, prices
from .charts import line_chart
from .render import render, secured
from .site import PROJECTS, ROOT, Dashboard, Handler

EVENTS_PAGE = 50
EVENT_FILTERS = ("user_id", "agent_id", "payment_type", "model", "from", "to")


def routes(dashboard: Dashboard) -> list[tuple[str, str, Handler]]:
    pages = Pages(dashboard)
    return [
        ("GET", f"{ROOT}/", pages.overview),
        ("GET", f"{ROOT}/users", pages.users),
        ("GET", f"{ROOT}/user", pages.user),
        ("GET", f"{ROOT}/events", pages.events),
        ("GET", f"{ROOT}/events.csv", pages.export_csv),
        ("GET", f"{ROOT}/events.json", pages.export_json),
        ("GET", f"{ROOT}/billing", pages.billing),
        ("GET", f"{ROOT}/prices", pages.prices),
        ("GET", PROJECTS, pages.projects),
    ]


class Pages:
    def __init__(self, dashboard: Dashboard) -> None:
        self.dashboard = dashboard
        self.ledger = dashboard.ledger

    async def overview(self, request: Request) -> Response:
        context = await self.dashboard.context(request)
        key = _metadata_key(request)
        data = await run_in_threadpool(
            figures.overview, self.ledger, context.project, context.period, key
        )
        chart = line_chart([(label, sums.cost) for label, sums in data.series])
        return context.page(
            "overview.html", "overview", data=data, chart=chart, metadata_key=key or ""
        )

    async def users(self, request: Request) -> Response:
        context = await self.dashboard.context(request)
        search = request.query_params.get("q", "")[:200]
        page = _page_number(request)
        data = await run_in_threadpool(
            figures.users_page, self.ledger, context.project, context.period, search, page
        )
        pages = -(-data.total // figures.PAGE)
        return context.page("users.html", "users", data=data, search=search, page=page, pages=pages)

    async def user(self, request: Request) -> Response:
        context = await self.dashboard.context(request)
        user_id = request.query_params.get("id", "")
        if not user_id:
            raise WireError(422, "validation_error", "id: name a user")
        page = _page_number(request)
        query = _event_query(context.project, {"user_id": user_id}, EVENTS_PAGE, page)
        meter = await run_in_threadpool(self.ledger.get_meter, context.project, user_id)
        series = await run_in_threadpool(
            figures.cost_over_time, self.ledger, context.project, context.period, user_id
        )
        listed = await run_in_threadpool(self.ledger.list_events, query)
        chart = line_chart([(label, sums.cost) for label, sums in series])
        return context.page(
            "user.html", "users", user_id=user_id, meter=meter, chart=chart,
            events=listed, page=page, more=len(listed) == EVENTS_PAGE,
        )  # fmt: skip

    async def events(self, request: Request) -> Response:
        context = await self.dashboard.context(request)
        filters = _filters(request)
        page = _page_number(request)
        query = _event_query(context.project, filters, EVENTS_PAGE, page)
        listed = await run_in_threadpool(self.ledger.list_events, query)
        return context.page(
            "events.html", "events", events=listed, filters=filters, page=page,
            more=len(listed) == EVENTS_PAGE, payment_types=[kind.value for kind in PaymentType],
        )  # fmt: skip

    async def export_csv(self, request: Request) -> Response:
        return await self._export(request, exports.csv_rows, "csv", "text/csv; charset=utf-8")

    async def export_json(self, request: Request) -> Response:
        return await self._export(request, exports.json_chunks, "json", "application/json")

    async def _export(self, request: Request, make: Any, suffix: str, media: str) -> Response:
        context = await self.dashboard.context(request)
        query = _event_query(context.project, _filters(request), 1000, 0)
        body = iterate_in_threadpool(make(self.ledger, query))
        response = StreamingResponse(body, media_type=media)
        name = f"agentmeter-events-{context.project}.{suffix}"
        response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
        return secured(response)

    async def billing(self, request: Request) -> Response:
        context = await self.dashboard.context(request)
        records = await run_in_threadpool(self.ledger.list_billing_records, context.project)
        preview = await run_in_threadpool(self._preview, context.project, request)
        return context.page("billing.html", "billing", records=records, preview=preview)

    def _preview(self, project_id: str, request: Request) -> dict[str, Any] | None:
        first, last = request.query_params.get("start"), request.query_params.get("end")
        if not first or not last:
            return None
        start, end = day_range(first, last)
        cost = self.ledger.period_cost(project_id, start, end)
        return {"start": first, "end": last, "cost": cost, "amount": round_to_cents(cost)}

    async def prices(self, request: Request) -> Response:
        context = await self.dashboard.context(request)
        search = request.query_params.get("q", "")[:200]
        page = _page_number(request)
        table = await run_in_threadpool(
            prices.price_page, self.ledger, context.project, search, page
        )
        return context.page("prices.html", "prices", table=table, search=search, page=page)

    async def projects(self, request: Request) -> Response:
        viewer = await self.dashboard.viewer(request)
        only = None if viewer.principal.is_admin else viewer.principal.project_id
        listed = await run_in_threadpool(self.ledger.list_projects, only)
        return render(
            "projects.html", projects=listed, csrf=viewer.csrf_token, root=ROOT,
            is_admin=viewer.principal.is_admin,
        )  # fmt: skip


def day_range(first: str, last: str) -> tuple[datetime, datetime]:
    """Two dates (YYYY-MM-DD, both included) as a half-open UTC range; 422 otherwise."""
    try:
        start_day = datetime.fromisoformat(first.strip()).date()
        end_day = datetime.fromisoformat(last.strip()).date()
    except ValueError:
        raise WireError(422, "validation_error", "start, end: give dates as YYYY-MM-DD") from None
    if end_day < start_day:
        raise WireError(422, "validation_error", "end: the period ends before it starts")
    start = datetime.combine(start_day, time(), timezone.utc)
    return start, datetime.combine(end_day + timedelta(days=1), time(), timezone.utc)


def _filters(request: Request) -> dict[str, str]:
    params = request.query_params
    return {name: params.get(name, "")[:200] for name in EVENT_FILTERS if params.get(name)}


def _event_query(project: str, filters: dict[str, str], limit: int, page: int) -> EventQuery:
    """The events query of a page's filters: the wire API's own model, so a bad
    filter is refused in the API's words (422, with the field named)."""
    fields: dict[str, Any] = {
        "project_id": project,
        "limit": limit,
        "offset": page * limit,
        **{key: value for key, value in filters.items() if key not in ("from", "to")},
    }
    if filters.get("from") or filters.get("to"):
        start, end = day_range(
            filters.get("from") or "1970-01-01", filters.get("to") or "9998-12-30"
        )
        fields["start_date"], fields["end_date"] = start, end
    return parse(EventQuery, fields)


def _metadata_key(request: Request) -> str | None:
    """The metadata key the overview breaks cost down by (``?by=provider``), checked
    as the report API checks it (422 naming ``by``); None when not given."""
    key = request.query_params.get("by", "").strip()
    if not key:
        return None
    try:
        return check_metadata_key(key, "by")
    except AgentMeterValidationError as exc:
        raise WireError.from_validation(exc) from None


def _page_number(request: Request) -> int:
    text = request.query_params.get("page", "0")
    return min(int(text), 100_000) if text.isdigit() else 0
