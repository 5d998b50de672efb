"""agentmeter: charge your AI agent's users for what they use.

Three payment models (per API request, per token, instant charges), exact
decimal money, delivery that never blocks the app, and a reference server.
The public names are those of AgentMeter 0.2, so its users' code runs as is.
"""

import importlib
from typing import Any

from ._version import __version__
from .capture.attribution import attribute
from .capture.blocks import (
    UsageContext,
    track_api_request_pay,
    track_instant_pay,
    track_token_based_pay,
    track_usage,
)
from .client import (
    AgentMeterClient,
    create_client,
    quick_api_request_pay,
    quick_instant_pay,
    quick_token_based_pay,
)
from .config import AgentMeterConfig
from .decorators import (
    meter_agent,
    meter_api_request_pay,
    meter_function,
    meter_instant_pay,
    meter_token_based_pay,
)
from .delivery.counters import TrackerStats
from .delivery.outbox import Outbox
from .delivery.overflow import QueueFullError
from .errors import (
    AgentMeterAPIError,
    AgentMeterConfigurationError,
    AgentMeterConnectionError,
    AgentMeterError,
    AgentMeterValidationError,
    AuthenticationError,
    BadRequestError,
    BudgetExceededError,
    ConflictError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    UnprocessableEntityError,
)
from .models import (
    APIRequestPayEvent,
    BatchResult,
    BillingRecord,
    BillingStatus,
    EventType,
    InstantPayEvent,
    MeterEvent,
    MeterEventResponse,
    MeterStats,
    PaymentType,
    Project,
    RejectedEvent,
    ReportRow,
    TokenBasedPayEvent,
    UserMeter,
)
from .integrations.wrap import wrap
from .tracker import AgentMeterTracker

_LAZY = {
    "LangChainAgentMeterCallback": "agentmeter.integrations.langchain",
    "meter_langchain": "agentmeter.integrations.langchain",
}


def __getattr__(name: str) -> Any:
    """LangChain names load on first use (they need the ``langchain`` extra)."""
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'agentmeter' has no attribute {name!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ImportError(
            f"{name} needs langchain-core ({exc.name} is missing): "
            "pip install 'agentmeter[langchain]'"
        ) from exc
    return getattr(module, name)


__all__ = [
    "APIRequestPayEvent",
    "AgentMeterAPIError",
    "AgentMeterClient",
    "AgentMeterConfig",
    "AgentMeterConfigurationError",
    "AgentMeterConnectionError",
    "AgentMeterError",
    "AgentMeterTracker",
    "AgentMeterValidationError",
    "AuthenticationError",
    "BadRequestError",
    "BatchResult",
    "BillingRecord",
    "BillingStatus",
    "BudgetExceededError",
    "ConflictError",
    "EventType",
    "InstantPayEvent",
    "LangChainAgentMeterCallback",
    "MeterEvent",
    "MeterEventResponse",
    "MeterStats",
    "NotFoundError",
    "Outbox",
    "PayloadTooLargeError",
    "PaymentType",
    "PermissionDeniedError",
    "Project",
    "QueueFullError",
    "RateLimitError",
    "RejectedEvent",
    "ReportRow",
    "ServerError",
    "TokenBasedPayEvent",
    "TrackerStats",
    "UnprocessableEntityError",
    "UsageContext",
    "UserMeter",
    "__version__",
    "attribute",
    "create_client",
    "meter_agent",
    "meter_api_request_pay",
    "meter_function",
    "meter_instant_pay",
    "meter_langchain",
    "meter_token_based_pay",
    "quick_api_request_pay",
    "quick_instant_pay",
    "quick_token_based_pay",
    "track_api_request_pay",
    "track_instant_pay",
    "track_token_based_pay",
    "track_usage",
    "wrap",
]
