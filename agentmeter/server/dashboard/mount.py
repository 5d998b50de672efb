"""``install_dashboard``: the pages (:mod:`.views`), the forms that change things
(:mod:`.actions`) and the stylesheet, added to the server's app."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from starlette.staticfiles import StaticFiles

from ...ledger import Ledger
from ...ledger.api import LedgerAPI
from ..http import KeyChecker
from . import actions, views
from .auth import Sessions
from .render import HERE, secured
from .site import ROOT, Dashboard, html_errors


def install_dashboard(app: FastAPI, ledger: Ledger, api: LedgerAPI, keys: KeyChecker) -> None:
    dashboard = Dashboard(ledger, api, Sessions(ledger, keys))
    routes = [*views.routes(dashboard), *actions.routes(dashboard)]
    for method, path, handler in routes:
        app.add_api_route(path, html_errors(handler), methods=[method], include_in_schema=False)
    app.mount(f"{ROOT}/static", StaticFiles(directory=HERE / "static"), name="dashboard-static")

    async def home(_: Request) -> Response:
        return secured(RedirectResponse(f"{ROOT}/", status_code=307))

    app.add_api_route("/", home, methods=["GET"], include_in_schema=False)
