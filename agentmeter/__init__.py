"""agentmeter: charge your AI agent's users for what they use.

Three payment models (per API request, per token, instant charges), exact
decimal money, delivery that never blocks the app, and a reference server.
The public names are those of AgentMeter 0.2, so its users' code runs as is.

Every public name loads on first use (PEP 562): ``import agentmeter`` costs
almost nothing, and ``from agentmeter import X`` imports only what ``X``
needs (the ``agentmeter`` command starts fast, the server loads no client).
"""

import importlib
from typing import TYPE_CHECKING, Any

from ._version import __version__

if TYPE_CHECKING:
    from .async_client import AsyncAgentMeterClient
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
    from .integrations.langchain import LangChainAgentMeterCallback, meter_langchain
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

# Each public name and the module (under agentmeter) that defines it.
_HOMES = {
    "attribute": "capture.attribution",
    "UsageContext": "capture.blocks",
    "track_api_request_pay": "capture.blocks",
    "track_instant_pay": "capture.blocks",
    "track_token_based_pay": "capture.blocks",
    "track_usage": "capture.blocks",
    "AgentMeterClient": "client",
    "create_client": "client",
    "quick_api_request_pay": "client",
    "quick_instant_pay": "client",
    "quick_token_based_pay": "client",
    "AgentMeterConfig": "config",
    "meter_agent": "decorators",
    "meter_api_request_pay": "decorators",
    "meter_function": "decorators",
    "meter_instant_pay": "decorators",
    "meter_token_based_pay": "decorators",
    "TrackerStats": "delivery.counters",
    "Outbox": "delivery.outbox",
    "QueueFullError": "delivery.overflow",
    "AgentMeterAPIError": "errors",
    "AgentMeterConfigurationError": "errors",
    "AgentMeterConnectionError": "errors",
    "AgentMeterError": "errors",
    "AgentMeterValidationError": "errors",
    "AuthenticationError": "errors",
    "BadRequestError": "errors",
    "BudgetExceededError": "errors",
    "ConflictError": "errors",
    "NotFoundError": "errors",
    "PayloadTooLargeError": "errors",
    "PermissionDeniedError": "errors",
    "RateLimitError": "errors",
    "ServerError": "errors",
    "UnprocessableEntityError": "errors",
    "wrap": "integrations.wrap",
    "APIRequestPayEvent": "models",
    "BatchResult": "models",
    "BillingRecord": "models",
    "BillingStatus": "models",
    "EventType": "models",
    "InstantPayEvent": "models",
    "MeterEvent": "models",
    "MeterEventResponse": "models",
    "MeterStats": "models",
    "PaymentType": "models",
    "Project": "models",
    "RejectedEvent": "models",
    "ReportRow": "models",
    "TokenBasedPayEvent": "models",
    "UserMeter": "models",
    "AgentMeterTracker": "tracker",
}
# Names that need an extra: (their module, the extra, what it installs).
_EXTRAS = {
    "AsyncAgentMeterClient": ("async_client", "async", "httpx"),
    "LangChainAgentMeterCallback": ("integrations.langchain", "langchain", "langchain-core"),
    "meter_langchain": ("integrations.langchain", "langchain", "langchain-core"),
}


def __getattr__(name: str) -> Any:
    """Import a public name's module on first use, and keep the name here after."""
    home = _HOMES.get(name)
    if home is not None:
        value = getattr(importlib.import_module(f"agentmeter.{home}"), name)
    elif name in _EXTRAS:
        value = _load_extra(name, *_EXTRAS[name])
    else:
        raise AttributeError(f"module 'agentmeter' has no attribute {name!r}")
    globals()[name] = value
    return value


def _load_extra(name: str, home: str, extra: str, package: str) -> Any:
    try:
        module = importlib.import_module(f"agentmeter.{home}")
    except ImportError as exc:
        raise ImportError(
            f"{name} needs {package} ({exc.name} is missing): pip install 'agentmeter[{extra}]'"
        ) from exc
    return getattr(module, name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


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
