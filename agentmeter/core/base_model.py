"""The base of every pydantic model: invalid input raises AgentMeterValidationError.

Here, below :mod:`agentmeter.models` and :mod:`agentmeter.core.answers`, so
both can build on it without importing each other.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError
from typing_extensions import Self

from .fields import validation_error_from


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


class AgentMeterModel(BaseModel):
    """Base of every model: invalid input raises AgentMeterValidationError."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    def __init__(self, /, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise validation_error_from(exc) from None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        return cls(**dict(data))

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: money as decimal text, times as RFC 3339."""
        return self.model_dump(mode="json")
