"""The HTTP edges of the server: keys, bodies, and errors in the wire's shape."""

from __future__ import annotations

import hmac
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from sqlalchemy.exc import OperationalError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..core import jsonio as _json
from ..ledger import Ledger, hash_key
from ..ledger.api import ADMIN, MAX_BODY_BYTES, Principal
from ..ledger.errors import WireError
from .key_cache import KeyCache

logger = logging.getLogger("agentmeter.server")


def json_response(content: Any, status_code: int = 200) -> Response:
    try:
        body = _json.dumps_bytes(content)
    except UnicodeEncodeError:
        # A lone surrogate no input check let through: "\ud800" is a valid JSON
        # escape, and surrogates only occur inside strings. Never a 500.
        body = _json.dumps(content).encode("utf-8", "backslashreplace")
    return Response(body, status_code, media_type="application/json")


def error_response(error: WireError, headers: dict[str, str] | None = None) -> Response:
    response = json_response(error.body(), error.status)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


class KeyChecker:
    """Turns ``Authorization: Bearer <key>`` into a :class:`Principal`, or 401.

    Stored keys found valid are remembered in ``cache`` for its few seconds
    (:mod:`.key_cache`: the bound on a revocation made elsewhere).
    """

    def __init__(
        self, ledger: Ledger, admin_key: str | None, cache: KeyCache | None = None
    ) -> None:
        self.ledger = ledger
        self._admin_hash = hash_key(admin_key) if admin_key else None
        self.cache = cache if cache is not None else KeyCache(0)

    async def __call__(self, request: Request) -> Principal:
        header = request.headers.get("authorization", "")
        scheme, _, key = header.partition(" ")
        key = key.strip()
        if scheme.lower() != "bearer" or not key:
            raise WireError(
                401, "unauthorized", "send the API key as 'Authorization: Bearer <key>'"
            )
        principal = await self.principal_of(hash_key(key))
        if principal is None:
            raise WireError(401, "unauthorized", "the API key is not valid")
        return principal

    async def principal_of(self, key_hash: str) -> Principal | None:
        """Who holds the key with this hash now (None: no such key, or revoked)."""
        if self._admin_hash and hmac.compare_digest(key_hash, self._admin_hash):
            return ADMIN
        cached = self.cache.get(key_hash)
        if cached is not None:
            return cached
        looked_up_at = self.cache.clock()
        record = await run_in_threadpool(self.ledger.find_key_hash, key_hash)
        if record is None:
            return None
        principal = ADMIN if record.kind == "admin" else Principal("project", record.project_id)
        self.cache.put(key_hash, principal, looked_up_at)
        return principal


async def read_json(request: Request) -> Any:
    """The body as JSON with exact decimals; 413 when too large, 400 when not JSON."""
    too_large = WireError(413, "payload_too_large", f"the body is over {MAX_BODY_BYTES} bytes")
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise too_large
        chunks.append(chunk)
    try:
        return _json.loads(b"".join(chunks))
    except (ValueError, UnicodeDecodeError):
        raise WireError(400, "bad_request", "the body is not valid JSON") from None
    except RecursionError:  # json's C parser guards its own depth: no stack is at risk
        raise WireError(400, "bad_request", "the body's JSON is nested too deeply") from None


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(WireError)
    async def _wire(_: Request, exc: WireError) -> Response:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> Response:
        details = [
            {"field": _field(item.get("loc", ())), "message": str(item.get("msg", "invalid"))}
            for item in exc.errors()
        ]
        first = details[0] if details else {"field": None, "message": "invalid request"}
        message = f"{first['field']}: {first['message']}"
        return error_response(WireError(422, "validation_error", message, details))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        return error_response(http_error(exc.status_code, request.method, request.url.path, exc))

    @app.exception_handler(OperationalError)
    async def _database(_: Request, exc: OperationalError) -> Response:
        logger.warning("ledger unavailable: %s", exc.orig)
        error = WireError(503, "unavailable", "the ledger is busy or unreachable; retry")
        return error_response(error, {"Retry-After": "1"})

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        logger.exception("unexpected error in %s %s", request.method, request.url.path)
        return error_response(WireError(500, "internal_error", "internal server error"))


def http_error(status: int, method: str, path: str, exc: Exception | None = None) -> WireError:
    """A routing error in the words the embedded transport uses too."""
    if status == 404:
        return WireError(404, "not_found", f"no endpoint {method} {path}")
    if status == 405:
        return WireError(405, "method_not_allowed", f"{method} is not allowed on {path}")
    return WireError(status, "http_error", str(getattr(exc, "detail", "")) or "error")


def _field(location: Any) -> str:
    parts = [str(part) for part in location if part not in ("body", "query", "path", "header")]
    return ".".join(parts) or "request"
