"""Events and the server's answers, as typed, validated pydantic models.

Events are immutable. Each gets its id at birth and its ``total_cost`` from
its own fields, exactly::

    >>> event = TokenBasedPayEvent(project_id="p", agent_id="a", user_id="u",
    ...     tokens_in=1000, tokens_out=500,
    ...     input_token_price=0.004, output_token_price=0.0001)
    >>> event.total_cost
    Decimal('4.0500')
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timezone
from decimal import Context, Decimal
from enum import Enum
from typing import Annotated, Any, ClassVar, Literal, Union, cast

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    SecretStr,
    TypeAdapter,
    ValidationError,
    computed_field,
    field_serializer,
    model_validator,
)
from typing_extensions import Self

from .core import jsonio as _json
from .core.fields import (
    Count,
    EventId,
    Identifier,
    MetadataDict,
    Money,
    MoneyTotal,
    Text,
    UtcDatetime,
    validation_error_from,
)
from .core.ids import new_event_id
from .pricing import MONEY_CONTEXT, ZERO, api_request_cost, money_text, token_cost


class PaymentType(str, Enum):
    API_REQUEST_PAY = "api_request_pay"
    TOKEN_BASED_PAY = "token_based_pay"  # noqa: S105 (not a password)
    INSTANT_PAY = "instant_pay"


class EventType(str, Enum):
    API_CALL = "api_call"
    TOKEN_USAGE = "token_usage"  # noqa: S105 (not a password)
    INSTANT_PAYMENT = "instant_payment"


class BillingStatus(str, Enum):
    PENDING = "pending"
    INVOICED = "invoiced"
    PAID = "paid"
    VOID = "void"


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def _metadata_json(value: dict[str, Any]) -> dict[str, Any]:
    # Through the wire encoder: decimals as their text, times with Z, and a
    # user's own objects as their str() instead of a serialization error.
    return cast(dict[str, Any], json.loads(_json.dumps(value)))


Metadata = Annotated[MetadataDict, PlainSerializer(_metadata_json, when_used="json")]


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


# ---------------------------------------------------------------- events


class MeterEvent(AgentMeterModel):
    """Fields every event has. Build one of the three subclasses."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: EventId = Field(default_factory=new_event_id)
    project_id: Identifier
    agent_id: Identifier
    user_id: Identifier = "anonymous"
    timestamp: UtcDatetime = Field(default_factory=utc_now)
    metadata: Metadata = Field(default_factory=dict)

    payment_type: ClassVar[PaymentType]

    @computed_field  # type: ignore[prop-decorator]
    @property
    def total_cost(self) -> MoneyTotal:
        """The event's cost, computed from its own fields (never set by a caller)."""
        return self._compute_cost()

    def _compute_cost(self) -> Decimal:
        return ZERO

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """Build an event; on ``MeterEvent`` itself the payment_type picks the class."""
        if cls is MeterEvent:
            return cast(Self, parse_event(data))
        return cls(**dict(data))

    # 0.2 handed events out as dicts; ``event["user_id"]`` keeps working.
    def __getitem__(self, key: str) -> Any:
        try:
            return getattr(self, key)
        except AttributeError:
            raise KeyError(key) from None

    def get(self, key: str, default: Any = None) -> Any:
        return getattr(self, key, default)


class APIRequestPayEvent(MeterEvent):
    """Charge per API call: ``api_calls x unit_price``."""

    payment_type: Literal[PaymentType.API_REQUEST_PAY] = PaymentType.API_REQUEST_PAY  # type: ignore[misc]
    event_type: Literal[EventType.API_CALL] = EventType.API_CALL
    api_calls: Count = 1
    unit_price: Money

    def _compute_cost(self) -> Decimal:
        return api_request_cost(self.api_calls, self.unit_price)


class TokenBasedPayEvent(MeterEvent):
    """Charge per token: ``tokens_in x input price + tokens_out x output price``."""

    payment_type: Literal[PaymentType.TOKEN_BASED_PAY] = PaymentType.TOKEN_BASED_PAY  # type: ignore[misc]
    event_type: Literal[EventType.TOKEN_USAGE] = EventType.TOKEN_USAGE
    tokens_in: Count = 0
    tokens_out: Count = 0
    input_token_price: Money
    output_token_price: Money

    @property
    def total_tokens(self) -> int:
        return self.tokens_in + self.tokens_out

    def _compute_cost(self) -> Decimal:
        return token_cost(
            self.tokens_in, self.tokens_out, self.input_token_price, self.output_token_price
        )


class InstantPayEvent(MeterEvent):
    """Charge an amount at once."""

    payment_type: Literal[PaymentType.INSTANT_PAY] = PaymentType.INSTANT_PAY  # type: ignore[misc]
    event_type: Literal[EventType.INSTANT_PAYMENT] = EventType.INSTANT_PAYMENT
    amount: Money
    description: Annotated[Text, Field(max_length=1000)] = ""

    def _compute_cost(self) -> Decimal:
        return self.amount


AnyEvent = Annotated[
    Union[APIRequestPayEvent, TokenBasedPayEvent, InstantPayEvent],
    Field(discriminator="payment_type"),
]
EVENT_ADAPTER: TypeAdapter[AnyEvent] = TypeAdapter(AnyEvent)
EVENT_CLASSES: dict[PaymentType, type[MeterEvent]] = {
    PaymentType.API_REQUEST_PAY: APIRequestPayEvent,
    PaymentType.TOKEN_BASED_PAY: TokenBasedPayEvent,
    PaymentType.INSTANT_PAY: InstantPayEvent,
}


def parse_event(
    data: Mapping[str, Any],
) -> APIRequestPayEvent | TokenBasedPayEvent | InstantPayEvent:
    """Validate one event in its JSON form; the ``payment_type`` picks the class."""
    try:
        return EVENT_ADAPTER.validate_python(dict(data))
    except ValidationError as exc:
        raise validation_error_from(exc) from None


# --------------------------------------------------------------- answers


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


class MeterStats(AgentMeterModel):
    total_api_calls: int = 0
    total_tokens_in: int = 0
    total_tokens_out: int = 0
    total_cost: MoneyTotal = ZERO
    total_events: int = 0
    timeframe: str = "30 days"

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
    """One period (and group) of a usage report; absent group keys are None."""

    period: str
    user_id: str | None = None
    agent_id: str | None = None
    payment_type: str | None = None
    model: str | None = None
    events: int = 0
    api_calls: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    cost: MoneyTotal = ZERO
