"""HTML out: Jinja2 templates with autoescaping, and the headers every page carries.

Autoescaping is on for every template, so a user id such as
``<img src=x onerror=alert(1)>`` is shown as text. The Content-Security-Policy
allows no script at all (the dashboard has none), styles and images from
this origin only, and forms posting back to it only.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from ...pricing import money_text

HERE = Path(__file__).parent
CSP = (
    "default-src 'none'; script-src 'none'; style-src 'self'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


@lru_cache(maxsize=1)
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["money"] = money
    env.filters["count"] = lambda number: f"{number:,}"
    env.globals["link"] = link
    return env


def render(template: str, status: int = 200, **context: Any) -> Response:
    html = environment().get_template(template).render(**context)
    return secured(HTMLResponse(html, status))


def secured(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers[name] = value
    return response


def money(amount: Decimal | None) -> str:
    """The exact amount, as the API gives it: no rounding on a billing page."""
    return "" if amount is None else "$" + money_text(amount)


def link(path: str, params: Mapping[str, Any] | None = None, **more: Any) -> str:
    """``path`` with its query string; empty values are left out."""
    merged = {**(params or {}), **more}
    query = urlencode({key: value for key, value in merged.items() if value not in (None, "")})
    return f"{path}?{query}" if query else path
