"""agentmeter: charge your AI agent's users for what they use.

Three payment models (per API request, per token, instant charges), exact
decimal money, delivery that never blocks the app, and a reference server.
The public names are those of AgentMeter 0.2, so its users' code runs as is.
"""

import importlib
from typing import TYPE_CHECKING, Any

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
from .integrations.wrap import wrap
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
from .tracker import AgentMeterTracker

if TYPE_CHECKING:
    from .async_client import AsyncAgentMeterClient

# Names that load on first use: (their module, the extra they need, what it installs).
_LAZY = {
    "AsyncAgentMeterClient": ("agentmeter.async_client", "async", "httpx"),
    "LangChainAgentMeterCallback": (
        "agentmeter.integrations.langchain",
        "langchain",
        "langchain-core",
    ),
    "meter_langchain": ("agentmeter.integrations.langchain", "langchain", "langchain-core"),
}


def __getattr__(name: str) -> Any:
    """The async client and the LangChain names load on first use (each needs an extra)."""
    lazy = _LAZY.get(name)
    if lazy is None:
        raise AttributeError(f"module 'agentmeter' has no attribute {name!r}")
    module_name, extra, package = lazy
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ImportError(
            f"{name} needs {package} ({exc.name} is missing): pip install 'agentmeter[{extra}]'"
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
    "AsyncAgentMeterClient",
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
