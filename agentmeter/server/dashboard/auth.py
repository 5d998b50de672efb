"""Signing in to the dashboard: a key exchanged once for a session cookie, and CSRF checks.

The key travels once, in a POST body; the browser then holds only a random
session token in an ``HttpOnly``, ``SameSite=Strict`` cookie (``Secure`` and
``__Host-`` over HTTPS). The ledger stores the token's hash, so sessions hold
across restarts and across servers sharing a database. Each request checks
that the key which signed in is still valid: revoking it ends its sessions.
Every change is a POST carrying the session's CSRF token, from our own origin.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import parse_qsl, urlsplit

from fastapi import Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from ...ledger import Ledger, hash_key
from ...ledger.api import Principal
from ...ledger.errors import WireError
from ..http import KeyChecker

COOKIE = "agentmeter_session"
SECURE_COOKIE = "__Host-agentmeter_session"  # the browser sends it only to this origin, over TLS
LIFETIME = timedelta(hours=12)
MAX_FORM_BYTES = 64 * 1024
MAX_KEY_CHARS = 200


@dataclass(frozen=True)
class Viewer:
    """Who is looking at a page: their access, and their session's CSRF token."""

    principal: Principal
    csrf_token: str

    def __repr__(self) -> str:
        return f"Viewer({self.principal!r})"


class Sessions:
    def __init__(self, ledger: Ledger, keys: KeyChecker) -> None:
        self.ledger = ledger
        self.keys = keys

    async def sign_in(self, key: str) -> str | None:
        """A new session's token for a valid key; None for any other text."""
        key = key.strip()
        if not key or len(key) > MAX_KEY_CHARS:
            return None
        key_hash = hash_key(key)
        principal = await self.keys.principal_of(key_hash)
        if principal is None:
            return None
        token, _ = await run_in_threadpool(
            lambda: self.ledger.create_session(
                kind=principal.kind,
                project_id=principal.project_id,
                key_hash=key_hash,
                lifetime=LIFETIME,
            )
        )
        return token

    async def viewer(self, request: Request) -> Viewer | None:
        """The signed-in viewer of this request, or None."""
        token = session_token(request)
        if not token:
            return None
        session = await run_in_threadpool(self.ledger.find_session, token)
        if session is None:
            return None
        principal = await self.keys.principal_of(session.key_hash)
        if principal is None:  # the key was revoked since
            return None
        return Viewer(principal, session.csrf_token)

    async def sign_out(self, request: Request) -> None:
        token = session_token(request)
        if token:
            await run_in_threadpool(self.ledger.delete_session, token)


def session_token(request: Request) -> str | None:
    return request.cookies.get(SECURE_COOKIE) or request.cookies.get(COOKIE)


def is_https(request: Request) -> bool:
    return request.url.scheme == "https"


def set_session_cookie(response: Response, request: Request, token: str) -> None:
    secure = is_https(request)
    response.set_cookie(
        SECURE_COOKIE if secure else COOKIE,
        token,
        max_age=int(LIFETIME.total_seconds()),
        path="/",
        secure=secure,
        httponly=True,
        samesite="strict",
    )


def clear_session_cookie(response: Response, request: Request) -> None:
    secure = is_https(request)
    response.delete_cookie(
        SECURE_COOKIE if secure else COOKIE,
        path="/",
        secure=secure,
        httponly=True,
        samesite="strict",
    )


async def read_form(request: Request) -> dict[str, str]:
    """A urlencoded form body (the last value of a repeated field); 413 when too large."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise WireError(413, "payload_too_large", f"the form is over {MAX_FORM_BYTES} bytes")
    try:
        return dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=100))
    except (UnicodeDecodeError, ValueError):
        raise WireError(400, "bad_request", "the form could not be read") from None


def check_origin(request: Request) -> None:
    """Refuse a form posted from another site (403)."""
    site = request.headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        raise _forbidden("this form came from another site")
    origin = request.headers.get("origin") or request.headers.get("referer")
    if origin is None or origin == "null":
        if site is None:  # neither header: not a browser we can vouch for
            raise _forbidden("the form's origin is unknown")
        return
    sent = urlsplit(origin)
    if (sent.scheme, sent.netloc) != (request.url.scheme, request.url.netloc):
        raise _forbidden("this form came from another origin")


def check_csrf(request: Request, viewer: Viewer, form: dict[str, str]) -> None:
    """A change needs our origin and the session's CSRF token (403 otherwise)."""
    check_origin(request)
    if not hmac.compare_digest(form.get("csrf", "").encode(), viewer.csrf_token.encode()):
        raise _forbidden("the form's CSRF token is missing or stale; reload the page")


def _forbidden(message: str) -> WireError:
    return WireError(403, "forbidden", message)
