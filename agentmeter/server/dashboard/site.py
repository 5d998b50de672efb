"""What every dashboard page shares: who is looking, which project, which period."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from ...ledger import Ledger
from ...ledger.api import LedgerAPI
from ...ledger.errors import WireError
from .auth import Sessions, Viewer
from .periods import Period, PeriodError, period_of
from .render import render, secured

ROOT = "/dashboard"
SIGN_IN = f"{ROOT}/sign-in"
PROJECTS = f"{ROOT}/projects"
Handler = Callable[[Request], Awaitable[Response]]
# What a page says after a change sent the browser back to it (fixed texts only).
DONE = {
    "threshold": "The threshold is saved.",
    "record": "The billing record is created.",
    "status": "The record's status is changed.",
    "price": "The price is saved.",
}


class Redirect(Exception):
    """Leave the page for another (sign-in, the project picker)."""

    def __init__(self, location: str) -> None:
        super().__init__(location)
        self.location = location


@dataclass
class Dashboard:
    """The parts every page uses: the ledger, the wire API's rules, the sessions."""

    ledger: Ledger
    api: LedgerAPI
    sessions: Sessions

    async def viewer(self, request: Request) -> Viewer:
        viewer = await self.sessions.viewer(request)
        if viewer is None:
            raise Redirect(SIGN_IN)
        return viewer

    async def project(self, viewer: Viewer, requested: str | None) -> str:
        """The project a page shows: the key's own, or the one an admin picked."""
        principal = viewer.principal
        if not principal.is_admin:
            assert principal.project_id is not None
            if requested and requested != principal.project_id:
                raise WireError(403, "forbidden", "this key cannot see that project")
            return principal.project_id
        if not requested:
            raise Redirect(PROJECTS)
        await run_in_threadpool(self.ledger.get_project, requested)  # 404 for none
        return requested

    async def context(self, request: Request, viewer: Viewer | None = None) -> PageContext:
        """The viewer, project and period of a page (or of a form's action URL)."""
        viewer = viewer or await self.viewer(request)
        params = request.query_params
        project = await self.project(viewer, params.get("project"))
        notice = DONE.get(params.get("done", ""))
        try:
            period = period_of(params)
        except PeriodError as exc:
            period, notice = period_of({}), str(exc)
        return PageContext(viewer, project, period, notice=notice)


@dataclass
class PageContext:
    viewer: Viewer
    project: str
    period: Period
    notice: str | None = None

    @property
    def scope(self) -> dict[str, str]:
        """The query parameters that keep the project and period from page to page."""
        return {"project": self.project, **self.period.params()}

    def page(self, template: str, nav: str, status: int = 200, **values: Any) -> Response:
        return render(
            template,
            status,
            viewer=self.viewer,
            is_admin=self.viewer.principal.is_admin,
            project=self.project,
            period=self.period,
            scope=self.scope,
            csrf=self.viewer.csrf_token,
            notice=self.notice,
            nav=nav,
            root=ROOT,
            **values,
        )


def html_errors(handler: Handler) -> Handler:
    """A page's errors as HTML pages (the API's are JSON), redirects as 303s."""

    @functools.wraps(handler)
    async def page(request: Request) -> Response:
        try:
            return await handler(request)
        except Redirect as move:
            return secured(RedirectResponse(move.location, status_code=303))
        except WireError as error:
            return render("error.html", error.status, error=error, root=ROOT)

    return page
