"""Embedded mode: the wire API answered in process by a local ledger file.

``AgentMeterClient(base_url="sqlite:///path.db")`` sends each request here
instead of over HTTP. The request goes through the same parsing, access
rules and ledger code as on the reference server, and an error comes back
as the same exception the HTTP client raises for the server's answer.

With neither key nor URL configured the client uses :data:`DEFAULT_LEDGER`
(``~/.agentmeter/ledger.db``) and logs one warning naming it.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from sqlalchemy.exc import OperationalError

from ..core import jsonio as _json
from ..core.lifecycle import register_fork_reset
from ..errors import api_error
from ..ledger import Ledger, price_api, summary_api
from ..ledger import webhook_api as hooks
from ..ledger.api import ADMIN, MAX_BODY_BYTES, LedgerAPI, query_dict
from ..ledger.cloudevent_api import CLOUDEVENTS_PATH, record_cloudevents
from ..ledger.errors import WireError
from .defaults import DEFAULT_PROJECT_ID
from .http_wire import query_pairs

logger = logging.getLogger("agentmeter")
DEFAULT_LEDGER = Path.home() / ".agentmeter" / "ledger.db"

Handler = Callable[[LedgerAPI, "re.Match[str]", dict[str, Any], Any], Any]
WEBHOOK_ROUTES: list[tuple[str, str, Handler]] = [
    ("POST", "/api/webhooks", lambda api, m, q, b: hooks.create_endpoint(api, ADMIN, b)),
    ("GET", "/api/webhooks", lambda api, m, q, b: hooks.list_endpoints(api, ADMIN, q)),
    ("GET", "/api/webhooks/deliveries", lambda api, m, q, b: hooks.list_deliveries(api, ADMIN, q)),
    (
        "POST",
        "/api/webhooks/deliveries/([^/]+)/redeliver",
        lambda api, m, q, b: hooks.redeliver(api, ADMIN, _arg(m), b),
    ),
    (
        "DELETE",
        "/api/webhooks/([^/]+)",
        lambda api, m, q, b: hooks.delete_endpoint(api, ADMIN, _arg(m), q),
    ),
    (
        "POST",
        "/api/webhooks/([^/]+)/test",
        lambda api, m, q, b: hooks.send_test(api, ADMIN, _arg(m), b),
    ),
    ("GET", "/api/alerts", lambda api, m, q, b: hooks.get_alerts(api, ADMIN, q)),
    ("PUT", "/api/alerts", lambda api, m, q, b: hooks.set_alerts(api, ADMIN, b)),
]
_ROUTES: list[tuple[str, re.Pattern[str], Handler]] = [
    (method, re.compile(f"^{pattern}$"), handler)
    for method, pattern, handler in [
        ("GET", "/health", lambda api, m, q, b: api.health()),
        ("POST", "/api/meter/event", lambda api, m, q, b: api.record_event(ADMIN, b)),
        ("POST", "/api/meter/events/batch", lambda api, m, q, b: api.record_batch(ADMIN, b)),
        ("GET", "/api/meter/events", lambda api, m, q, b: api.list_events(ADMIN, q)),
        ("GET", "/api/meter/stats", lambda api, m, q, b: api.stats(ADMIN, q)),
        ("GET", "/api/meter/report", lambda api, m, q, b: api.report(ADMIN, q)),
        ("GET", "/api/meter/summary", lambda api, m, q, b: summary_api.summary(api, ADMIN, q)),
        ("GET", "/api/meter/usage", lambda api, m, q, b: api.get_meter(ADMIN, q)),
        ("PUT", "/api/meter", lambda api, m, q, b: api.set_meter(ADMIN, b)),
        ("POST", "/api/meter/increment", lambda api, m, q, b: api.increment_meter(ADMIN, b)),
        ("POST", "/api/meter/reset", lambda api, m, q, b: api.reset_meter(ADMIN, b)),
        ("POST", "/projects", lambda api, m, q, b: api.create_project(ADMIN, b)),
        ("GET", "/projects", lambda api, m, q, b: api.list_projects(ADMIN)),
        ("GET", "/projects/([^/]+)", lambda api, m, q, b: api.get_project(ADMIN, _arg(m))),
        ("PATCH", "/projects/([^/]+)", lambda api, m, q, b: api.update_project(ADMIN, _arg(m), b)),
        ("DELETE", "/projects/([^/]+)", lambda api, m, q, b: api.delete_project(ADMIN, _arg(m))),
        ("POST", "/billing-records", lambda api, m, q, b: api.create_billing_record(ADMIN, b)),
        ("GET", "/billing-records", lambda api, m, q, b: api.list_billing_records(ADMIN, q)),
        (
            "PATCH",
            "/billing-records/([^/]+)",
            lambda api, m, q, b: api.update_billing_record(ADMIN, _arg(m), b),
        ),
        ("GET", "/api/prices", lambda api, m, q, b: price_api.get_prices(api, ADMIN, q)),
        ("PUT", "/api/prices", lambda api, m, q, b: price_api.set_markup(api, ADMIN, b)),
        (
            "GET",
            "/api/prices/missing",
            lambda api, m, q, b: price_api.get_missing_prices(api, ADMIN, q),
        ),
        (
            "PUT",
            "/api/prices/(.+)",
            lambda api, m, q, b: price_api.set_price(api, ADMIN, _arg(m), b),
        ),
        (
            "DELETE",
            "/api/prices/(.+)",
            lambda api, m, q, b: price_api.delete_price(api, ADMIN, _arg(m), q),
        ),
        *WEBHOOK_ROUTES,
    ]
]

_warned_default = threading.Event()


def _arg(match: re.Match[str]) -> str:
    return unquote(match[1])


def default_ledger_url() -> str:
    return f"sqlite:///{DEFAULT_LEDGER}"


class LocalTransport:
    """In-process transport over a :class:`~agentmeter.ledger.Ledger` (admin rights)."""

    default_project_id: str | None = DEFAULT_PROJECT_ID

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        # Embedded users never call POST /projects: a project is made on first use.
        self.api = LedgerAPI(ledger, create_projects=True)
        register_fork_reset(self)

    def before_fork(self) -> None:
        self.ledger.engine.dispose()  # idle SQLite connections must not cross fork()

    def after_fork_in_child(self) -> None:
        """Database connections belong to the parent; the child opens its own."""
        self.ledger.reset_after_fork()

    @classmethod
    def open(cls, url: str | None = None) -> LocalTransport:
        if url is None:
            DEFAULT_LEDGER.parent.mkdir(parents=True, exist_ok=True)
            url = default_ledger_url()
            if not _warned_default.is_set():
                _warned_default.set()
                logger.warning(
                    "no AGENTMETER_API_KEY or AGENTMETER_BASE_URL set: recording to the "
                    "embedded ledger file %s (set AGENTMETER_BASE_URL to use a server)",
                    DEFAULT_LEDGER,
                )
        elif url.startswith("sqlite:///") and ":memory:" not in url:
            Path(url.removeprefix("sqlite:///")).expanduser().parent.mkdir(
                parents=True, exist_ok=True
            )
        ledger = Ledger.open(url)
        ledger.ensure_project(DEFAULT_PROJECT_ID, "Default project")
        return cls(ledger)

    @property
    def describe(self) -> str:
        return self.ledger.url

    def __repr__(self) -> str:
        return f"LocalTransport({self.ledger.url!r})"

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        idempotent: bool = True,
        sleep: Callable[[float], None] | None = None,
        content_type: str | None = None,
    ) -> Any:
        """Answer one request as the server would, errors included."""
        encoded = _json.encode_body(body)
        # Errors are raised outside the except blocks: no __context__ keeps the
        # ledger's exception (its SQL and parameters) alive on ours.
        failure: Exception | None = None
        try:
            answer = self._dispatch(method, path, params, encoded, content_type)
        except WireError as exc:
            failure = api_error(exc.status, exc.message, code=exc.code, response_data=exc.body())
        except OperationalError as exc:  # locked or unreachable database: worth a retry
            failure = api_error(503, f"ledger unavailable: {exc.orig}", code="unavailable")
        if failure is not None:
            raise failure
        return _json.loads(_json.dumps_bytes(answer))

    def _dispatch(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any] | None,
        encoded: bytes | None,
        content_type: str | None = None,
    ) -> Any:
        if encoded is not None and len(encoded) > MAX_BODY_BYTES:
            raise WireError(413, "payload_too_large", f"the body is over {MAX_BODY_BYTES} bytes")
        query = query_dict(query_pairs(params) or [])
        body = _json.loads(encoded) if encoded is not None else None
        path = path.split("?")[0]
        if method == "POST" and path == CLOUDEVENTS_PATH:  # the one route that reads its media type
            return record_cloudevents(self.api, ADMIN, content_type, body)[1]
        path_known = False
        for route_method, pattern, handler in _ROUTES:
            match = pattern.match(path)
            if match and route_method == method:
                return handler(self.api, match, query, body)
            path_known = path_known or match is not None
        # The server's words: 405 for a known path, 404 for an unknown one.
        if path_known:
            raise WireError(405, "method_not_allowed", f"{method} is not allowed on {path}")
        raise WireError(404, "not_found", f"no endpoint {method} {path}")

    def close(self) -> None:
        self.ledger.close()
