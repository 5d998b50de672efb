"""Dashboard sign-in sessions, kept server-side so signing out or revoking a key ends them.

The browser holds a random token; the ledger holds only its SHA-256, so a
copy of the database does not let anyone in. A token is looked up by its
hash, which is why no constant-time comparison is needed. Expired sessions
are never returned, and are deleted whenever a new one is made.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, delete, select

from .base import LedgerBase, from_micros, now_micros
from .schema import dashboard_sessions

# Ours are 43 characters; anything much longer is not one of ours (and not worth hashing).
MAX_TOKEN_CHARS = 200
KINDS = ("admin", "project")


@dataclass(frozen=True, repr=False)
class DashboardSession:
    """A signed-in viewer: whose key it was, and the CSRF token of their forms."""

    kind: str  # "admin" | "project"
    project_id: str | None
    key_hash: str  # as admin.hash_key makes it
    csrf_token: str
    expires_at: datetime  # aware UTC

    def __repr__(self) -> str:
        # Logs and tracebacks show sessions; the CSRF token and key hash stay out of them.
        return (
            f"DashboardSession(kind={self.kind!r}, project_id={self.project_id!r}, "
            f"expires_at={self.expires_at.isoformat()})"
        )


def hash_token(token: str) -> str:
    """The stored form of a session token (surrogates kept, so no text can fail here)."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def _check_kind(kind: str, project_id: str | None) -> None:
    """An admin session sees every project; a project session exactly one."""
    if kind not in KINDS:
        raise ValueError(f"a session's kind is 'admin' or 'project', not {kind!r}")
    if kind == "admin" and project_id is not None:
        raise ValueError("an admin session has no project_id")
    if kind == "project" and not project_id:
        raise ValueError("a project session needs its project_id")


class SessionStore(LedgerBase):
    def create_session(
        self, *, kind: str, project_id: str | None, key_hash: str, lifetime: timedelta
    ) -> tuple[str, DashboardSession]:
        """A new session; its clear token is returned here once and never stored.

        Expired sessions are purged in the same transaction, so the table
        stays as small as the number of live sign-ins without a timer."""
        _check_kind(kind, project_id)
        token = secrets.token_urlsafe(32)
        now = now_micros()
        expires = now + lifetime // timedelta(microseconds=1)  # exact, no float
        session = DashboardSession(
            kind=kind,
            project_id=project_id,
            key_hash=key_hash,
            csrf_token=secrets.token_urlsafe(32),
            expires_at=from_micros(expires),
        )
        with self.writing() as connection:
            connection.execute(delete(dashboard_sessions).where(_expired(now)))
            connection.execute(
                dashboard_sessions.insert().values(
                    token_hash=hash_token(token),
                    kind=kind,
                    project_id=project_id,
                    key_hash=key_hash,
                    csrf_token=session.csrf_token,
                    created_at=now,
                    expires_at=expires,
                )
            )
        return token, session

    def find_session(self, token: str) -> DashboardSession | None:
        """The live session of a cookie's token; None for anything else, never an error."""
        if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_CHARS:
            return None
        table = dashboard_sessions.c
        with self.reading() as connection:
            row = connection.execute(
                select(
                    table.kind, table.project_id, table.key_hash, table.csrf_token, table.expires_at
                ).where(table.token_hash == hash_token(token), table.expires_at > now_micros())
            ).first()
        if row is None:
            return None
        return DashboardSession(
            kind=row.kind,
            project_id=row.project_id,
            key_hash=row.key_hash,
            csrf_token=row.csrf_token,
            expires_at=from_micros(row.expires_at),
        )

    def delete_session(self, token: str) -> None:
        """Sign out: the token stops working at once (an unknown one is ignored)."""
        if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_CHARS:
            return
        with self.writing() as connection:
            connection.execute(
                delete(dashboard_sessions).where(
                    dashboard_sessions.c.token_hash == hash_token(token)
                )
            )

    def delete_sessions_of_key(self, key_hash: str) -> int:
        """End every session a key signed in, e.g. as it is revoked; how many ended."""
        with self.writing() as connection:
            result = connection.execute(
                delete(dashboard_sessions).where(dashboard_sessions.c.key_hash == key_hash)
            )
        return result.rowcount

    def purge_sessions(self) -> int:
        """Delete the expired sessions (they are dead already); how many went."""
        with self.writing() as connection:
            result = connection.execute(delete(dashboard_sessions).where(_expired(now_micros())))
        return result.rowcount


def _expired(now: int) -> ColumnElement[bool]:
    return dashboard_sessions.c.expires_at <= now
