"""The one error the ledger and its API raise: a wire error with status and code.

The server writes it as ``{"error": {"code", "message", "details"}}`` with its
status; the embedded transport turns it into the same
:class:`~agentmeter.errors.AgentMeterAPIError` subclass the HTTP client
would raise for that body.
"""

from __future__ import annotations

from typing import Any

from ..errors import AgentMeterValidationError


class WireError(Exception):
    def __init__(
        self, status: int, code: str, message: str, details: list[dict[str, Any]] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details or []

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}

    @classmethod
    def from_validation(cls, exc: AgentMeterValidationError) -> WireError:
        details = [
            {"field": item.get("field"), "message": item.get("message")} for item in exc.errors
        ]
        return cls(422, "validation_error", exc.message, details)


def not_found(what: str) -> WireError:
    return WireError(404, "not_found", f"{what} not found")


def forbidden(message: str) -> WireError:
    return WireError(403, "forbidden", message)


def conflict(message: str) -> WireError:
    return WireError(409, "conflict", message)


def idempotency_conflict(event_id: str, fields: tuple[str, ...]) -> WireError:
    """An event id sent again with other content (Stripe's answer to a reused key)."""
    return WireError(
        409,
        "idempotency_conflict",
        f"event id {event_id!r} was already recorded with other content "
        f"({', '.join(fields)} differ): a new event needs a new id",
        [
            {"field": field, "message": "differs from the event stored under this id"}
            for field in fields
        ],
    )
