"""Events, as typed, validated pydantic models; and, re-exported, the server's answers.

Events are immutable. Each gets its id at birth and its ``total_cost`` from
its own fields, exactly::

    >>> event = TokenBasedPayEvent(project_id="p", agent_id="a", user_id="u",
    ...     tokens_in=1000, tokens_out=500,
    ...     input_token_price=0.004, output_token_price=0.0001)
    >>> event.total_cost
    Decimal('4.0500')

The answers (user meters, stats, projects, bills, prices, reports) are
defined in :mod:`agentmeter.core.answers`; this module is their import path.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal
from enum import Enum
from typing import Annotated, Any, ClassVar, Literal, Union, cast

from pydantic import (
    ConfigDict,
    Field,
    PlainSerializer,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    computed_field,
)
from typing_extensions import Self

from .core import jsonio as _json
from .core.answers import (
    BatchResult,
    BillingRecord,
    BillingStatus,
    ErrorInfo,
    MeterEventResponse,
    MeterStats,
    MissingPrices,
    ModelPrice,
    Project,
    ProjectPrices,
    RejectedEvent,
    ReportRow,
    UnpricedModel,
    UserMeter,
)
from .core.base_model import AgentMeterModel, utc_now
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
from .core.webhook_models import (
    AlertSettings,
    DeliveryStatus,
    WebhookDelivery,
    WebhookEndpoint,
)
from .errors import AgentMeterValidationError
from .pricing import ZERO, api_request_cost, token_cost


class PaymentType(str, Enum):
    API_REQUEST_PAY = "api_request_pay"
    TOKEN_BASED_PAY = "token_based_pay"  # noqa: S105 (not a password)
    INSTANT_PAY = "instant_pay"


class EventType(str, Enum):
    API_CALL = "api_call"
    TOKEN_USAGE = "token_usage"  # noqa: S105 (not a password)
    INSTANT_PAYMENT = "instant_payment"


def _metadata_json(value: dict[str, Any]) -> dict[str, Any]:
    # Through the wire encoder: decimals as their text, times with Z, and a
    # user's own objects as their str() instead of a serialization error.
    return cast(dict[str, Any], json.loads(_json.dumps(value)))


Metadata = Annotated[MetadataDict, PlainSerializer(_metadata_json, when_used="json")]


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
    """Charge per token: ``tokens_in x input price + tokens_out x output price``.

    ``cached_tokens_in`` (a part of ``tokens_in``) and ``cache_write_tokens``
    (on top of it) are billed at their own prices; a class without one is
    billed at the input price. Left out, the cost is the formula above.
    """

    payment_type: Literal[PaymentType.TOKEN_BASED_PAY] = PaymentType.TOKEN_BASED_PAY  # type: ignore[misc]
    event_type: Literal[EventType.TOKEN_USAGE] = EventType.TOKEN_USAGE
    tokens_in: Count = 0
    tokens_out: Count = 0
    input_token_price: Money
    output_token_price: Money
    model: Annotated[Text, StringConstraints(min_length=1, max_length=200)] | None = None
    cached_tokens_in: Count = 0
    cache_write_tokens: Count = 0
    cached_input_token_price: Money | None = None
    cache_write_token_price: Money | None = None

    def model_post_init(self, context: Any, /) -> None:
        if self.cached_tokens_in > self.tokens_in:
            raise AgentMeterValidationError.for_field(
                "cached_tokens_in",
                f"must be at most tokens_in ({self.tokens_in}), got {self.cached_tokens_in}",
            )

    @property
    def total_tokens(self) -> int:
        return self.tokens_in + self.tokens_out

    def _compute_cost(self) -> Decimal:
        return token_cost(
            self.tokens_in,
            self.tokens_out,
            self.input_token_price,
            self.output_token_price,
            self.cached_tokens_in,
            self.cache_write_tokens,
            self.cached_input_token_price,
            self.cache_write_token_price,
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON form; a token class left out is left out here too, so such an
        event reads on the wire exactly as it did before classes (0.2 servers)."""
        answer = super().to_dict()
        for key in TOKEN_CLASS_FIELDS:
            if answer[key] is None or answer[key] == 0:  # a price of 0 is "0": kept
                del answer[key]
        return answer


# The token event's optional fields: absent from its JSON when None (a count: 0).
TOKEN_CLASS_FIELDS = (
    "model",
    "cached_tokens_in",
    "cache_write_tokens",
    "cached_input_token_price",
    "cache_write_token_price",
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


__all__ = [
    "EVENT_ADAPTER",
    "EVENT_CLASSES",
    "TOKEN_CLASS_FIELDS",
    "APIRequestPayEvent",
    "AgentMeterModel",
    "AlertSettings",
    "AnyEvent",
    "BatchResult",
    "BillingRecord",
    "BillingStatus",
    "DeliveryStatus",
    "ErrorInfo",
    "EventType",
    "InstantPayEvent",
    "Metadata",
    "MeterEvent",
    "MeterEventResponse",
    "MeterStats",
    "MissingPrices",
    "ModelPrice",
    "PaymentType",
    "Project",
    "ProjectPrices",
    "RejectedEvent",
    "ReportRow",
    "TokenBasedPayEvent",
    "UnpricedModel",
    "UserMeter",
    "WebhookDelivery",
    "WebhookEndpoint",
    "parse_event",
    "utc_now",
]
