"""The server's answers, as typed, validated pydantic models.

Every answer of the wire API but the events themselves: built by the
ledger, parsed by the client. :mod:`agentmeter.models` exports them all
beside the events (``from agentmeter.models import UserMeter`` is the path
users write); they live here to keep that module about events.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Context, Decimal
from enum import Enum
from typing import Any

from pydantic import (
    Field,
    SecretStr,
    TypeAdapter,
    ValidationError,
    computed_field,
    field_serializer,
    model_validator,
)

from ..pricing import MONEY_CONTEXT, ZERO, money_text
from . import jsonio as _json
from .base_model import AgentMeterModel, utc_now
from .fields import Money, MoneyTotal, UtcDatetime, validation_error_from
from .report_totals import ReportTotals as ReportTotals  # its home before report_totals.py


class BillingStatus(str, Enum):
    PENDING = "pending"
    INVOICED = "invoiced"
    PAID = "paid"
    VOID = "void"


class MeterEventResponse(AgentMeterModel):
    """The answer to recording one event."""

    success: bool = True
    event_id: str
    cost: MoneyTotal = ZERO
    message: str | None = None
    timestamp: UtcDatetime = Field(default_factory=utc_now)
    duplicate: bool = False


class ErrorInfo(AgentMeterModel):
    code: str
    message: str
    details: list[dict[str, Any]] = Field(default_factory=list)


class RejectedEvent(AgentMeterModel):
    """One event of a batch that the server refused as invalid (final, not retried)."""

    index: int
    id: str | None = None
    error: ErrorInfo


class BatchResult(AgentMeterModel):
    """The answer to a batch: valid events are stored even when others are rejected."""

    accepted: int = 0
    duplicates: int = 0
    rejected: list[RejectedEvent] = Field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.rejected


class UserMeter(AgentMeterModel):
    """A user's running usage and budget (``threshold_amount``; None when unset).

    On the wire an unset threshold is ``"threshold_amount": "0"`` with
    ``"threshold_set": false``: AgentMeter 0.2 clients need a number there.
    Likewise a meter never reset (``last_reset_at`` None) carries its
    ``updated_at`` as ``last_reset_at`` with ``"was_reset": false``.
    """

    project_id: str
    user_id: str
    threshold_amount: Money | None = None
    current_usage: MoneyTotal = ZERO
    last_reset_at: UtcDatetime | None = None
    updated_at: UtcDatetime | None = None

    @model_validator(mode="before")
    @classmethod
    def _unset_threshold(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and data.get("threshold_set") is False:
            data = {**data, "threshold_amount": None}
        if isinstance(data, Mapping) and data.get("was_reset") is False:
            data = {**data, "last_reset_at": None}
        return data

    @field_serializer("last_reset_at", when_used="json")
    def _last_reset_on_the_wire(self, value: datetime | None) -> str | None:
        moment = value if value is not None else self.updated_at  # 0.2 needs a time
        return _json.format_time(moment) if moment is not None else None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def was_reset(self) -> bool:
        """Whether the meter was ever reset (False: ``last_reset_at`` is None)."""
        return self.last_reset_at is not None

    @field_serializer("threshold_amount", when_used="json")
    def _threshold_on_the_wire(self, value: Decimal | None) -> str:
        return "0" if value is None else money_text(value)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def threshold_set(self) -> bool:
        """Whether a budget was set (False: ``threshold_amount`` is None)."""
        return self.threshold_amount is not None

    @property
    def remaining_budget(self) -> Decimal | None:
        if self.threshold_amount is None:
            return None
        return max(ZERO, MONEY_CONTEXT.subtract(self.threshold_amount, self.current_usage))

    @property
    def usage_percentage(self) -> Decimal:
        """Usage as a percentage of the threshold, to two places (0 when unset)."""
        if not self.threshold_amount:
            return ZERO
        # A context wide enough for any two money values: never InvalidOperation.
        wide = Context(prec=100)
        ratio = wide.divide(wide.multiply(self.current_usage, 100), self.threshold_amount)
        return ratio.quantize(Decimal("0.01"), context=wide)

    @property
    def is_over_limit(self) -> bool:
        return self.threshold_amount is not None and self.current_usage > self.threshold_amount


class ProjectStats(AgentMeterModel):
    """One project's totals in the stats of every project (``all_projects``)."""

    project_id: str
    total_api_calls: int = 0
    total_tokens_in: int = 0
    total_tokens_out: int = 0
    total_cost: MoneyTotal = ZERO
    total_events: int = 0


class MeterStats(AgentMeterModel):
    total_api_calls: int = 0
    total_tokens_in: int = 0
    total_tokens_out: int = 0
    total_cost: MoneyTotal = ZERO
    total_events: int = 0
    timeframe: str = "30 days"
    # Only in the stats of every project (admin key, ``all_projects``): one per project.
    projects: list[ProjectStats] | None = None

    def to_dict(self) -> dict[str, Any]:
        answer = super().to_dict()
        if self.projects is None:
            del answer["projects"]
        return answer

    @property
    def total_tokens(self) -> int:
        return self.total_tokens_in + self.total_tokens_out

    @property
    def average_cost_per_call(self) -> Decimal:
        if self.total_api_calls == 0:
            return ZERO
        return self.total_cost / self.total_api_calls


class Project(AgentMeterModel):
    """A project. ``api_key`` is only present in the answer that created it."""

    id: str
    name: str
    description: str | None = None
    created_at: UtcDatetime | None = None
    updated_at: UtcDatetime | None = None
    api_key: SecretStr | None = None

    def to_dict(self) -> dict[str, Any]:
        answer = super().to_dict()
        if self.api_key is None:
            del answer["api_key"]
        return answer


class BillingRecord(AgentMeterModel):
    id: str
    project_id: str
    period_start: UtcDatetime
    period_end: UtcDatetime
    amount: MoneyTotal
    status: BillingStatus = BillingStatus.PENDING
    created_at: UtcDatetime | None = None
    updated_at: UtcDatetime | None = None


class ModelPrice(AgentMeterModel):
    """A project's own price of a model, per 1,000,000 tokens of each class."""

    model: str
    input: Money
    output: Money
    cached_input: Money | None = None  # None: cached input is billed as input
    cache_write: Money | None = None
    updated_at: UtcDatetime | None = None


class ProjectPrices(AgentMeterModel):
    markup_percent: Money = ZERO  # on catalog prices, not on the project's own
    prices: list[ModelPrice] = Field(default_factory=list)


class ReportRow(AgentMeterModel):
    """One period (and group) of a usage report; absent group keys are None.

    ``project_id`` is set in reports across all projects. ``metadata`` holds the
    row's values of the ``metadata.<key>`` groups (``""`` for events without the
    key); on the wire each is a field of its own, ``"metadata.<key>": value``.
    """

    period: str
    project_id: str | None = None
    user_id: str | None = None
    agent_id: str | None = None
    payment_type: str | None = None
    model: str | None = None
    metadata: dict[str, str] = Field(default_factory=dict)
    events: int = 0
    api_calls: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    cost: MoneyTotal = ZERO

    @model_validator(mode="before")
    @classmethod
    def _gather_metadata(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            return data
        prefix = "metadata."
        found = {
            key[len(prefix) :]: value
            for key, value in data.items()
            if isinstance(key, str) and key.startswith(prefix)
        }
        if not found:
            return data
        rest = {
            key: value
            for key, value in data.items()
            if not (isinstance(key, str) and key.startswith(prefix))
        }
        return {**rest, "metadata": {**dict(data.get("metadata") or {}), **found}}

    def group_value(self, column: str) -> str | None:
        """The row's value of a group column (``user_id``, ``metadata.provider``...)."""
        if column.startswith("metadata."):
            return self.metadata.get(column[len("metadata.") :], "")
        value = getattr(self, column)
        return None if value is None else str(value)

    def to_dict(self) -> dict[str, Any]:
        answer = super().to_dict()
        if self.project_id is None:
            del answer["project_id"]
        groups = answer.pop("metadata")
        answer.update({f"metadata.{key}": value for key, value in groups.items()})
        return answer


@functools.cache
def _report_rows_adapter() -> TypeAdapter[list[ReportRow]]:
    return TypeAdapter(list[ReportRow])  # built on first use: not at import


def report_rows_from(rows: Sequence[Mapping[str, Any]]) -> list[ReportRow]:
    """Report rows in their wire form as models, checked in one call (a
    report can hold tens of thousands of rows)."""
    try:
        return _report_rows_adapter().validate_python(rows)
    except ValidationError as exc:
        raise validation_error_from(exc) from None


class UnpricedModel(AgentMeterModel):
    """A model whose events were recorded at cost 0 (``metadata["unpriced"]``),
    for want of a price: give it one with ``agentmeter prices set MODEL``."""

    model: str | None = None  # None: unpriced events that name no model
    events: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    first_seen: UtcDatetime | None = None
    last_seen: UtcDatetime | None = None


class MissingPrices(AgentMeterModel):
    """The answer of ``GET /api/prices/missing``: unpriced events by model."""

    models: list[UnpricedModel] = Field(default_factory=list)
