"""The dashboard's forms (POST): sign in and out, and the three kinds of change.

Each change goes through the same :class:`~agentmeter.ledger.api.LedgerAPI`
call as its wire endpoint, so it is checked the same way (access, fields,
exact money); an invalid field comes back as a page naming it.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from ...ledger import price_api
from ...ledger.errors import WireError
from .auth import (
    check_csrf,
    check_origin,
    clear_session_cookie,
    read_form,
    set_session_cookie,
)
from .render import link, render, secured
from .site import ROOT, SIGN_IN, Dashboard, Handler, PageContext
from .views import day_range


def routes(dashboard: Dashboard) -> list[tuple[str, str, Handler]]:
    forms = Forms(dashboard)
    return [
        ("GET", SIGN_IN, forms.sign_in_page),
        ("POST", SIGN_IN, forms.sign_in),
        ("POST", f"{ROOT}/sign-out", forms.sign_out),
        ("POST", f"{ROOT}/meter", forms.set_threshold),
        ("POST", f"{ROOT}/billing", forms.create_record),
        ("POST", f"{ROOT}/billing/status", forms.change_status),
        ("POST", f"{ROOT}/prices", forms.set_price),
    ]


class Forms:
    def __init__(self, dashboard: Dashboard) -> None:
        self.dashboard = dashboard
        self.api = dashboard.api

    async def sign_in_page(self, request: Request) -> Response:
        return render("sign_in.html", root=ROOT, failed=False)

    async def sign_in(self, request: Request) -> Response:
        check_origin(request)
        form = await read_form(request)
        token = await self.dashboard.sessions.sign_in(form.get("key", ""))
        if token is None:
            return render("sign_in.html", 401, root=ROOT, failed=True)
        response = RedirectResponse(f"{ROOT}/", status_code=303)
        set_session_cookie(response, request, token)
        return secured(response)

    async def sign_out(self, request: Request) -> Response:
        viewer = await self.dashboard.viewer(request)
        check_csrf(request, viewer, await read_form(request))
        await self.dashboard.sessions.sign_out(request)
        response = RedirectResponse(SIGN_IN, status_code=303)
        clear_session_cookie(response, request)
        return secured(response)

    async def set_threshold(self, request: Request) -> Response:
        context, form = await self._change(request)
        body = {"user_id": form.get("user_id", ""), "threshold_amount": form.get("threshold", "")}
        await self._call(self.api.set_meter, context, body)
        return _back(f"{ROOT}/user", context, id=form.get("user_id"), done="threshold")

    async def create_record(self, request: Request) -> Response:
        context, form = await self._change(request)
        start, end = day_range(form.get("start", ""), form.get("end", ""))
        body = {"period_start": start.isoformat(), "period_end": end.isoformat()}
        await self._call(self.api.create_billing_record, context, body)
        return _back(f"{ROOT}/billing", context, done="record")

    async def change_status(self, request: Request) -> Response:
        context, form = await self._change(request)
        record_id = form.get("record_id", "")
        records = await run_in_threadpool(
            self.dashboard.ledger.list_billing_records, context.project
        )
        if record_id not in {record.id for record in records}:
            raise WireError(404, "not_found", "no such billing record in this project")
        body = {"status": form.get("status", "")}
        who = context.viewer.principal
        await run_in_threadpool(self.api.update_billing_record, who, record_id, body)
        return _back(f"{ROOT}/billing", context, done="status")

    async def set_price(self, request: Request) -> Response:
        context, form = await self._change(request)
        body = {
            field: form[field]
            for field in ("input", "output", "cached_input", "cache_write")
            if form.get(field, "").strip()
        }
        body["project_id"] = context.project
        model = form.get("model", "")
        who = context.viewer.principal
        await run_in_threadpool(price_api.set_price, self.api, who, model, body)
        return _back(f"{ROOT}/prices", context, q=model, done="price")

    async def _change(self, request: Request) -> tuple[PageContext, dict[str, str]]:
        """The page context of a change, once its session and CSRF token check out."""
        form = await read_form(request)
        viewer = await self.dashboard.viewer(request)
        check_csrf(request, viewer, form)
        return await self.dashboard.context(request, viewer), form

    async def _call(self, method: Any, context: PageContext, body: dict[str, Any]) -> None:
        body = {**body, "project_id": context.project}
        await run_in_threadpool(method, context.viewer.principal, body)


def _back(path: str, context: PageContext, **params: Any) -> Response:
    return secured(RedirectResponse(link(path, context.scope, **params), status_code=303))
