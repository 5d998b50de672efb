"""Request bodies and query parameters of the wire API, validated once for both sides.

The client builds these before sending (so bad input fails at the call
site, with the field named); the server and the embedded transport parse
incoming requests with the very same models.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, ValidationInfo, WithJsonSchema
from pydantic_core import PydanticCustomError

from ..errors import AgentMeterValidationError
from ..models import AgentMeterModel, BillingStatus, EventType, PaymentType
from .fields import Identifier, Money, Text, UtcDatetime

# Re-exported ("as"): where they were before core/groups.py, and others import them from here.
from .groups import GROUP_COLUMNS as GROUP_COLUMNS
from .groups import GROUP_PATTERN
from .groups import check_metadata_key as check_metadata_key
from .groups import group_column as group_column
from .groups import metadata_key_of as metadata_key_of
from .groups import metadata_key_problem as metadata_key_problem
from .timeframes import TIMEFRAMES as TIMEFRAMES
from .timeframes import parse_timeframe as parse_timeframe

Granularity = Literal["hour", "day", "month"]
GroupKey = Literal["user", "agent", "payment_type", "model"]


def _check_group(group: str) -> str:
    # A pydantic error, so the error names the item: group_by.0
    key = metadata_key_of(group)
    problem = None if key is None else metadata_key_problem(key)
    if problem is not None:
        raise PydanticCustomError("report_group", problem)
    if key is None and group not in GROUP_COLUMNS:
        message = f"must be one of {', '.join(GROUP_COLUMNS)} or metadata.<key>, got {group[:40]!r}"
        raise PydanticCustomError("report_group", message)
    return group


ReportGroup = Annotated[
    str,
    AfterValidator(_check_group),
    WithJsonSchema({"type": "string", "pattern": GROUP_PATTERN}),
]


def _check_timeframe(text: str) -> str:
    parse_timeframe(text)
    return text.strip()


Timeframe = Annotated[str, AfterValidator(_check_timeframe)]


class WireModel(AgentMeterModel):
    def to_params(self) -> dict[str, Any]:
        """The JSON form without unset values: a query string or a request body."""
        return {key: value for key, value in self.to_dict().items() if value is not None}


class EventQuery(WireModel):
    project_id: Identifier
    agent_id: Text | None = None
    user_id: Text | None = None
    event_type: EventType | None = None
    payment_type: PaymentType | None = None
    model: Text | None = None
    start_date: UtcDatetime | None = None
    end_date: UtcDatetime | None = None
    limit: int = Field(default=100, ge=1, le=1000)
    offset: int = Field(default=0, ge=0)


class AcrossProjects(WireModel):
    """A read of one project, or (``all_projects``, admin key only) of every project,
    grouped by project; then ``project_id`` is not needed and is ignored."""

    project_id: Identifier | None = None
    all_projects: bool | None = None

    def model_post_init(self, context: Any, /) -> None:
        if self.project_id is None and not self.all_projects:
            raise AgentMeterValidationError.for_field("project_id", "Field required")


class StatsQuery(AcrossProjects):
    timeframe: Timeframe = "30 days"


class ReportQuery(AcrossProjects):
    granularity: Granularity = "day"
    group_by: list[ReportGroup] = Field(default_factory=list)
    start_date: UtcDatetime | None = None
    end_date: UtcDatetime | None = None
    user_id: Text | None = None
    agent_id: Text | None = None


class SummaryQuery(AcrossProjects):
    """``GET /api/meter/summary``: per user (per project with ``all_projects``), half-open."""

    start_date: UtcDatetime | None = None
    end_date: UtcDatetime | None = None
    user_id: Text | None = None


class MeterKey(WireModel):
    project_id: Identifier
    user_id: Identifier


class SetMeterBody(MeterKey):
    threshold_amount: Money


class IncrementMeterBody(MeterKey):
    amount: Money


class ProjectCreateBody(WireModel):
    name: Annotated[Text, Field(min_length=1, max_length=200)]
    description: Annotated[Text, Field(max_length=2000)] | None = None
    id: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_\-]+$")] | None = (
        None
    )


class ProjectUpdateBody(WireModel):
    name: Annotated[Text, Field(min_length=1, max_length=200)] | None = None
    description: Annotated[Text, Field(max_length=2000)] | None = None


class BillingCreateBody(WireModel):
    project_id: Identifier
    period_start: UtcDatetime
    period_end: UtcDatetime
    amount: Money | None = None
    status: BillingStatus = BillingStatus.PENDING

    def model_post_init(self, context: Any, /) -> None:
        if self.period_end <= self.period_start:
            raise AgentMeterValidationError.for_field("period_end", "must be after period_start")


class BillingUpdateBody(WireModel):
    status: BillingStatus | None = None
    amount: Money | None = None


class BillingListQuery(WireModel):
    project_id: Identifier


# ------------------------------------------------------------------ prices

ModelName = Annotated[Text, Field(min_length=1, max_length=200)]


class PricesQuery(WireModel):
    project_id: Identifier


def _at_most_places(places: int) -> AfterValidator:
    """Money with at most ``places`` decimal places (trailing zeros aside)."""

    def check(value: Decimal, info: ValidationInfo) -> Decimal:
        if value and -value.normalize().as_tuple().exponent > places:  # type: ignore[operator]
            raise AgentMeterValidationError.for_field(
                info.field_name or "value",
                f"must have at most {places} decimal places, got {value}",
            )
        return value

    return AfterValidator(check)


# Per 1,000,000 tokens: 12 places, so one token's price fits the 18 a ledger stores.
PerMillion = Annotated[Money, _at_most_places(12)]


class PriceBody(WireModel):
    """``PUT /api/prices/{model}``: prices per 1,000,000 tokens."""

    project_id: Identifier
    model: ModelName
    input: PerMillion
    output: PerMillion
    cached_input: PerMillion | None = None
    cache_write: PerMillion | None = None


class MarkupBody(WireModel):
    """``PUT /api/prices``: 4 decimal places at most, so a marked-up catalog
    price stays within the 18 places a ledger stores exactly."""

    project_id: Identifier
    markup_percent: Annotated[Money, Field(le=10_000), _at_most_places(4)]


class PriceKey(WireModel):
    project_id: Identifier
    model: ModelName


class MissingPricesQuery(WireModel):
    """``GET /api/prices/missing``: the unpriced events of a period (half-open)."""

    project_id: Identifier
    start_date: UtcDatetime | None = None
    end_date: UtcDatetime | None = None
